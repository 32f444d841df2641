/**
 * The process's open-file budget, for the TCP transport's inbound socket limit. Every socket is a
 * file descriptor; a process that runs out of them (EMFILE) can neither accept peers nor answer
 * `/metrics`, and Node does not report it (libuv accepts and closes the connection silently). So
 * the transport keeps its inbound sockets below the limit, leaving room for outbound dials, the
 * HTTP endpoints and the peer store. Linux only (`/proc`); elsewhere the limit is unknown.
 *
 * @since 0.1.0
 */
import { readdirSync, readFileSync } from "node:fs"

/** The soft limit on open files (`ulimit -n`), if the platform tells. */
export const softLimit = (): number | undefined => {
  try {
    const line = readFileSync("/proc/self/limits", "utf8").split("\n").find((l) => l.startsWith("Max open files"))
    const soft = line?.slice("Max open files".length).trim().split(/\s+/)[0]
    return soft === undefined || soft === "unlimited" ? undefined : Number(soft)
  } catch {
    return undefined
  }
}

/** Descriptors open now, if the platform tells. */
export const openCount = (): number | undefined => {
  try {
    return readdirSync("/proc/self/fd").length
  } catch {
    return undefined
  }
}

/** Descriptors kept free of inbound sockets by default: outbound dials, HTTP, the peer store, logs. */
export const DEFAULT_RESERVE = 64

/** The inbound socket limit when none is configured: no more than this, however high the open-file limit. */
export const DEFAULT_MAX_INBOUND = 1024

/**
 * How many inbound sockets may be open at once: what the open-file limit leaves after the
 * descriptors in use and `reserve`, capped at `max`; `max` when the limit is unknown. At least 1.
 */
export const inboundBudget = (limit: number | undefined, inUse: number | undefined, reserve = DEFAULT_RESERVE, max = DEFAULT_MAX_INBOUND): number =>
  limit === undefined ? max : Math.max(1, Math.min(max, limit - (inUse ?? 0) - reserve))

/**
 * Inbound connections accepted but not yet handshaken, and who may join them. A silent or slow
 * peer holds a pending slot until its handshake deadline; so that such peers cannot lock
 * legitimate ones out, the set is bounded three ways:
 * - per IP and per network group (IPv4 /24, IPv6 /64): a connection over either cap is refused,
 *   so one machine, or one operator's block of addresses, holds a bounded share;
 * - in total: when every slot is taken, the connection that has waited longest is dropped to make
 *   room. A legitimate handshake finishes in milliseconds, a silent one never does, so the oldest
 *   entries are almost always the silent ones, and an attacker must open connections faster than
 *   `max` per handshake time to push a legitimate peer out.
 *
 * Connections without an IP (an in-process transport's) count only toward the total.
 *
 * Pure: the caller passes the time and keeps the returned state (as `ConnTracker`).
 *
 * @since 0.1.0
 */

/** Caps of the set. */
export interface Limits {
  /** Pending connections at most; the oldest goes when a new one needs room. */
  readonly max: number
  /** Pending connections from one IP at most. */
  readonly perIp: number
  /** Pending connections from one network group at most. */
  readonly perGroup: number
}

/** One pending connection. */
export interface Entry<K> {
  readonly key: K
  readonly ip: string
  readonly group: string
  readonly since: number
}

/** The set (immutable); entries in arrival order. */
export interface PendingHandshakes<K> {
  readonly limits: Limits
  readonly entries: ReadonlyMap<K, Entry<K>>
  readonly perIp: ReadonlyMap<string, number>
  readonly perGroup: ReadonlyMap<string, number>
}

/** Why a connection was not admitted. */
export type Rejection = "pending_ip_limit" | "pending_subnet_limit"

/** An empty set. */
export const make = <K>(limits: Limits): PendingHandshakes<K> => ({ limits, entries: new Map(), perIp: new Map(), perGroup: new Map() })

const bump = (m: ReadonlyMap<string, number>, k: string, by: number): ReadonlyMap<string, number> => {
  const next = new Map(m)
  const n = (next.get(k) ?? 0) + by
  if (n <= 0) next.delete(k)
  else next.set(k, n)
  return next
}

/** The set without `key` (unchanged if absent). */
export const remove = <K>(set: PendingHandshakes<K>, key: K): PendingHandshakes<K> => {
  const e = set.entries.get(key)
  if (e === undefined) return set
  const entries = new Map(set.entries)
  entries.delete(key)
  if (e.ip === "") return { ...set, entries }
  return { ...set, entries, perIp: bump(set.perIp, e.ip, -1), perGroup: bump(set.perGroup, e.group, -1) }
}

/**
 * Admits `entry`, or says why not. When the set is full, the oldest entry is dropped to make room
 * and returned as `evicted`: the caller closes its connection.
 */
export const admit = <K>(
  set: PendingHandshakes<K>,
  entry: Entry<K>
): { readonly set: PendingHandshakes<K>; readonly evicted: Entry<K> | undefined } | { readonly rejected: Rejection; readonly message: string } => {
  const { limits } = set
  const counted = entry.ip !== ""
  const fromIp = counted ? set.perIp.get(entry.ip) ?? 0 : 0
  if (fromIp >= limits.perIp) return { rejected: "pending_ip_limit", message: `${entry.ip} already has ${fromIp} handshakes in progress, the maximum` }
  const fromGroup = counted ? set.perGroup.get(entry.group) ?? 0 : 0
  if (fromGroup >= limits.perGroup) return { rejected: "pending_subnet_limit", message: `${entry.group} already has ${fromGroup} handshakes in progress, the maximum` }
  let next = set
  let evicted: Entry<K> | undefined
  if (set.entries.size >= limits.max) {
    evicted = set.entries.values().next().value
    if (evicted !== undefined) next = remove(next, evicted.key)
  }
  const entries = new Map(next.entries)
  entries.set(entry.key, entry)
  if (!counted) return { set: { ...next, entries }, evicted }
  return { set: { ...next, entries, perIp: bump(next.perIp, entry.ip, 1), perGroup: bump(next.perGroup, entry.group, 1) }, evicted }
}

/** Pending connections now. */
export const size = <K>(set: PendingHandshakes<K>): number => set.entries.size

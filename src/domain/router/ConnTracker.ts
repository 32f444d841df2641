/**
 * Per-IP admission of inbound connections (docs/ARCHITECTURE.md#admission `connTracker`): at most `max` concurrent
 * connections per IP and `maxPerGroup` per network group (IPv4 /24, IPv6 /64: what one operator
 * usually holds), and an IP with none open may connect at most once per `window`. Pure: the
 * caller passes the time and keeps the returned tracker.
 *
 * @since 0.1.0
 */
import * as Ip from "../Ip.ts"

interface Entry {
  readonly count: number
  readonly lastConnect: number
}

/** An immutable tracker. */
export interface ConnTracker {
  readonly max: number
  readonly maxPerGroup: number
  readonly window: number
  readonly entries: ReadonlyMap<string, Entry>
  /** Open connections per network group. */
  readonly groups: ReadonlyMap<string, number>
}

/** A tracker allowing `max` connections per IP, `maxPerGroup` per network group, and one reconnect per `window` ms. */
export const make = (max: number, window: number, maxPerGroup = Number.POSITIVE_INFINITY): ConnTracker => ({ max, maxPerGroup, window, entries: new Map(), groups: new Map() })

const withGroup = (groups: ReadonlyMap<string, number>, ip: string, by: number) => {
  const g = Ip.group(ip)
  const next = new Map(groups)
  const n = (next.get(g) ?? 0) + by
  if (n <= 0) next.delete(g)
  else next.set(g, n)
  return next
}

/** Number of IPs with state. */
export const size = (t: ConnTracker): number => t.entries.size

/** Why a connection was refused. */
export type Rejection = "ip_limit" | "subnet_limit" | "reconnect_too_soon"

/** Admits a connection from `ip` at `now`, or says why not. */
export const add = (t: ConnTracker, ip: string, now: number): { readonly tracker: ConnTracker } | { readonly rejected: string; readonly reason: Rejection } => {
  const e = t.entries.get(ip)
  if (e !== undefined && e.count >= t.max) return { rejected: `${ip || "(no IP)"} already has ${e.count} connections, the maximum`, reason: "ip_limit" }
  if (e !== undefined && e.count === 0 && now - e.lastConnect < t.window) {
    return { rejected: `${ip || "(no IP)"} reconnected within ${t.window} ms`, reason: "reconnect_too_soon" }
  }
  const inGroup = t.groups.get(Ip.group(ip)) ?? 0
  if (inGroup >= t.maxPerGroup) return { rejected: `${Ip.group(ip)} already has ${inGroup} connections, the maximum`, reason: "subnet_limit" }
  const entries = new Map(t.entries)
  entries.set(ip, { count: (e?.count ?? 0) + 1, lastConnect: now })
  return { tracker: { ...t, entries, groups: withGroup(t.groups, ip, 1) } }
}

/** Releases a connection from `ip`. The entry is kept (count 0) while its reconnect window runs. */
export const remove = (t: ConnTracker, ip: string, now: number): ConnTracker => {
  const e = t.entries.get(ip)
  if (e === undefined || e.count === 0) return t
  const entries = new Map(t.entries)
  const count = e.count - 1
  if (count === 0 && now - e.lastConnect >= t.window) entries.delete(ip)
  else entries.set(ip, { count, lastConnect: e.lastConnect })
  // Forget other idle IPs whose window has passed, so the map stays bounded by live connections.
  for (const [k, v] of entries) if (v.count === 0 && now - v.lastConnect >= t.window) entries.delete(k)
  return { ...t, entries, groups: withGroup(t.groups, ip, -1) }
}

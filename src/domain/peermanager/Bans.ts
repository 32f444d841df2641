/**
 * Bans and the misbehaviour that earns them (pure functions over {@link State}): node IDs banned
 * by an operator, a reactor (`PeerError.ban`) or repeated misbehaviour, and IP networks banned by
 * an operator or after repeated failed handshakes. A banned node is disconnected, not dialed,
 * refused at handshake and never advertised; a banned network is refused at accept, before any
 * handshake work. The table is bounded (`maxBans`): when full, the ban that ends soonest makes
 * room. Expired bans are inert and are dropped at the next change.
 *
 * @since 0.1.0
 */
import * as Ban from "../Ban.ts"
import type * as NodeId from "../NodeId.ts"
import { Draft, type Outcome, type State } from "./State.ts"

const prefixCache = new WeakMap<ReadonlyMap<string, Ban.Ban>, ReadonlyArray<readonly [number, boolean]>>()

/** The network prefix lengths in use (cached per ban map, which committed states never mutate). */
const prefixes = (state: State): ReadonlyArray<readonly [number, boolean]> => {
  const cached = prefixCache.get(state.bans)
  if (cached !== undefined) return cached
  const seen = new Map<string, readonly [number, boolean]>()
  for (const b of state.bans.values()) if (b.subject._tag === "Network") seen.set(`${b.subject.bits}/${b.subject.v4}`, [b.subject.bits, b.subject.v4])
  const list = [...seen.values()]
  prefixCache.set(state.bans, list)
  return list
}

/** The ban in force on a node at `now`, if any. */
export const nodeBan = (state: State, id: NodeId.NodeId, now: number): Ban.Ban | undefined => {
  if (state.bans.size === 0) return undefined
  const b = state.bans.get(Ban.key(Ban.node(id)))
  return b !== undefined && Ban.isActive(b, now) ? b : undefined
}

/** The ban in force on an IP address at `now` (on any network it falls in), if any. */
export const ipBan = (state: State, ip: string, now: number): Ban.Ban | undefined => {
  if (state.bans.size === 0 || ip === "") return undefined
  for (const key of Ban.networkKeys(ip, prefixes(state))) {
    const b = state.bans.get(key)
    if (b !== undefined && Ban.isActive(b, now)) return b
  }
  return undefined
}

/** Bans in force at `now`, the longest-lasting first. */
export const active = (state: State, now: number): ReadonlyArray<Ban.Ban> =>
  [...state.bans.values()].filter((b) => Ban.isActive(b, now)).sort((a, b) => b.until - a.until)

/**
 * Adds a ban to the draft: expired bans go first, then, when the table is full, the one that ends
 * soonest, if it ends before the new one or the new one is `forced` (an operator's or a reactor's
 * decision); otherwise the new ban is not kept. A banned node that is connected, or connected
 * peers inside a banned network, are marked for eviction. Returns whether the ban was kept.
 */
export const add = (draft: Draft, ban: Ban.Ban, now: number, forced = false): boolean => {
  const key = Ban.key(ban.subject)
  for (const [k, b] of draft.state.bans) if (!Ban.isActive(b, now)) draft.deleteBan(k)
  if (!draft.state.bans.has(key) && draft.state.bans.size >= draft.base.options.maxBans) {
    let soonest: [string, Ban.Ban] | undefined
    for (const entry of draft.state.bans) if (soonest === undefined || entry[1].until < soonest[1].until) soonest = entry
    if (soonest === undefined || (!forced && soonest[1].until >= ban.until)) return false
    draft.deleteBan(soonest[0])
  }
  draft.setBan(key, ban)
  draft.setStrike(key, undefined)
  // Connected peers it covers go: the node, or every peer connected from inside the network.
  const subject = ban.subject
  const covered = subject._tag === "Node"
    ? [subject.nodeId].filter((id) => draft.state.connected.has(id))
    : [...draft.state.connectedIps].filter(([, ip]) => Ban.networkKeys(ip, [[subject.bits, subject.v4] as const]).includes(key)).map(([id]) => id)
  for (const id of covered) draft.add("evict", id)
  if (covered.length > 0) draft.wakeEvict()
  return true
}

/** An operator's or a reactor's ban: always kept (the table makes room). */
export const ban = (state: State, b: Ban.Ban, now: number): Outcome => {
  const draft = new Draft(state)
  add(draft, b, now, true)
  return draft.done(undefined)
}

/** Lifts the ban of a subject; the value says whether there was one in force. */
export const unban = (state: State, subject: Ban.Subject, now: number): Outcome<boolean> => {
  const draft = new Draft(state)
  const key = Ban.key(subject)
  const existing = state.bans.get(key)
  draft.deleteBan(key)
  draft.wakeDial()
  return draft.done(existing !== undefined && Ban.isActive(existing, now))
}

/**
 * Counts one misbehaviour against `key` within the window; at `threshold` (0: never) the subject
 * is banned for `duration`. Returns the ban when one was made.
 */
export const strike = (
  draft: Draft,
  subject: Ban.Subject,
  now: number,
  threshold: number,
  duration: number,
  reason: string
): Ban.Ban | undefined => {
  if (threshold === 0) return undefined
  const key = Ban.key(subject)
  const o = draft.base.options
  const current = draft.state.strikes.get(key)
  const fresh = current === undefined || now - current.first >= o.misbehaviourWindow
  const next = fresh ? { count: 1, first: now } : { count: current.count + 1, first: current.first }
  if (next.count < threshold) {
    // Bounded like the bans: when full, the oldest strike record is forgotten.
    if (current === undefined && draft.state.strikes.size >= o.maxBans) {
      const oldest = draft.state.strikes.keys().next().value
      if (oldest !== undefined) draft.setStrike(oldest, undefined)
    }
    draft.setStrike(key, next)
    return undefined
  }
  const b: Ban.Ban = { subject, since: now, until: now + duration, reason: `${reason} (${next.count} times within ${Math.round(o.misbehaviourWindow / 1000)} s)` }
  return add(draft, b, now) ? b : undefined
}

/** Loads stored bans; expired ones are removed from the store. */
export const load = (state: State, bans: ReadonlyArray<Ban.Ban>, now: number): Outcome => {
  const draft = new Draft(state)
  for (const stored of bans) {
    const key = Ban.key(stored.subject)
    // A ban written by a clock that was ahead starts now and keeps its length (not longer by the skew).
    const b = stored.since > now ? { ...stored, since: now, until: now + (stored.until - stored.since) } : stored
    if (Ban.isActive(b, now)) draft.setBan(key, b, b === stored)
    else draft.deleteBan(key)
  }
  return draft.done(undefined)
}

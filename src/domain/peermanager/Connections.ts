/**
 * Decisions about connected peers (docs/ARCHITECTURE.md#lifecycle): admitting inbound connections, readiness,
 * disconnection, errors, reputation and eviction. Pure functions over {@link State}.
 *
 * @since 0.1.0
 */
import type * as NodeId from "../NodeId.ts"
import * as PeerRecord from "../PeerRecord.ts"
import * as PeerUpdate from "../PeerUpdate.ts"
import type { Rejection } from "./Policy.ts"
import * as Ban from "../Ban.ts"
import * as Bans from "./Bans.ts"
import { findUpgradeCandidate, recordFailure } from "./Dialing.ts"
import { newPeer } from "./Peers.ts"
import * as Index from "./Index.ts"
import { Draft, countedConnections, directionCount, indexOf, isDirectionExempt, isUncounted, isUnconditional, retryKey, type Outcome, type State } from "./State.ts"

/**
 * Whether every connection slot is taken (unconditional peers take none). "Unlimited"
 * (`maxConnected` 0) is never full (docs/ARCHITECTURE.md#fixed-problems-of-the-original).
 */
export const isFull = (state: State): boolean => state.options.maxConnected > 0 && countedConnections(state) >= state.options.maxConnected

/**
 * Admits an inbound connection from `id`, or says why not. Unknown peers are registered (without
 * addresses). Unconditional peers are always admitted; persistent ones are exempt from
 * `maxIncomingPeers` but not from `maxConnected`.
 */
export const accepted = (state: State, id: NodeId.NodeId, now: number, ip?: string): Outcome<Rejection | undefined> => {
  const o = state.options
  const draft = new Draft(state)
  // A peer refused for lack of room is admitted on grace instead while grace slots last: it can ask
  // for addresses, and is let go when its grace ends. Not when the node takes no inbound peers at
  // all (maxIncomingPeers 0): that is an operator saying nobody may connect.
  const graced = (reason: Rejection["reason"]) =>
    (reason === "full" || (reason === "inbound_full" && o.maxIncomingPeers !== 0)) && state.grace.size < o.maxGracePeers
  const reject = (reason: Rejection["reason"], message: string) =>
    graced(reason) ? admit(draft, id, now, now + o.gracePeriod, ip) : draft.done({ nodeId: id, reason, message })
  if (id === state.self) return reject("self", `rejecting connection from self (${id})`)
  const banned = Bans.nodeBan(state, id, now) ?? (ip === undefined ? undefined : Bans.ipBan(state, ip, now))
  if (banned !== undefined) return reject("banned", `peer ${id} is banned (${Ban.formatSubject(banned.subject)}: ${banned.reason})`)
  if (state.connected.has(id)) return reject("already_connected", `peer ${id} is already connected`)
  const unconditional = isUnconditional(state, id)
  if (!isDirectionExempt(state, id) && o.maxIncomingPeers !== undefined && directionCount(state, "incoming") >= o.maxIncomingPeers) {
    return reject("inbound_full", o.maxIncomingPeers === 0 ? `this node accepts no inbound peers, rejecting ${id}` : `already connected to the maximum of ${o.maxIncomingPeers} inbound peers, rejecting ${id}`)
  }
  if (!unconditional && o.maxConnected > 0 && countedConnections(state) >= o.maxConnected + o.maxConnectedUpgrade) {
    return reject("full", `already connected to the maximum of ${o.maxConnected + o.maxConnectedUpgrade} peers, rejecting ${id}`)
  }
  let upgradeFrom: NodeId.NodeId | undefined
  if (!unconditional && isFull(state)) {
    upgradeFrom = findUpgradeCandidate(state, id, PeerRecord.score(draft.peer(id) ?? newPeer(state, id)))
    if (upgradeFrom === undefined) return reject("full", `already connected to the maximum of ${o.maxConnected} peers and ${id} ranks no higher than any of them`)
  }
  if (upgradeFrom !== undefined) {
    draft.deleteUpgrade(upgradeFrom)
    draft.add("evict", upgradeFrom)
  }
  return admit(draft, id, now, undefined, ip)
}

/** Connects an inbound peer (on grace until `graceUntil`, if given), registering it if unknown. */
const admit = (draft: Draft, id: NodeId.NodeId, now: number, graceUntil: number | undefined, ip: string | undefined): Outcome<undefined> => {
  const known = draft.peer(id) ?? newPeer(draft.base, id)
  // Forgive past dial failures: the peer just proved reachable.
  const peer: PeerRecord.PeerRecord = { ...known, addresses: known.addresses.map((a) => ({ ...a, dialFailures: 0 })) }
  for (const a of peer.addresses) draft.setRetry(retryKey(id, a.address), undefined)
  draft.setPeer({ ...peer, inactive: false, lastConnected: now })
  draft.connect(id, "incoming", ip)
  if (graceUntil !== undefined) draft.setGrace(id, graceUntil)
  draft.wakeEvict()
  return draft.done(undefined)
}

/**
 * The router routes the connected peer: publish `up` with its channels. No-op for unconnected
 * peers, and for peers already ready (so subscribers never see two `up`s without a `down`).
 */
export const ready = (state: State, id: NodeId.NodeId, channels: Iterable<number>): Outcome => {
  if (!state.connected.has(id) || state.ready.has(id)) return new Draft(state).done(undefined)
  const draft = new Draft(state)
  draft.add("ready", id)
  draft.publish(PeerUpdate.up(id, channels))
  return draft.done(undefined)
}

/**
 * The peer's connection ended. `down` is published only if it was ready. A pending dial keeps its
 * slot. An outbound connection shorter than `minConnectionDuration` counts as a failed dial of the
 * address it used (`jitter` in [0, 1) samples the retry jitter).
 */
export const disconnected = (state: State, id: NodeId.NodeId, now: number, jitter = 0): Outcome => {
  const draft = new Draft(state)
  const wasReady = state.ready.has(id)
  const known = draft.peer(id)
  const o = state.options
  if (known !== undefined && o.minConnectionDuration > 0 && state.connected.get(id) === "outgoing" && known.lastConnected !== undefined) {
    const used = known.addresses.find((a) => a.lastDialSuccess === known.lastConnected)
    // In memory only: a disconnect must always apply, so it writes nothing that could fail.
    if (used !== undefined && now - known.lastConnected < o.minConnectionDuration) recordFailure(draft, known, used.address, now, jitter, true)
    // A connection that lasted proves the address: its past failures are forgiven now (not at the dial).
    else if (used !== undefined && used.dialFailures > 0) draft.setPeer(PeerRecord.updateAddress(known, used.address, (a) => ({ ...a, dialFailures: 0 })), true)
  }
  draft.setGrace(id, undefined)
  draft.disconnect(id)
  draft.deleteUpgrade(id)
  draft.delete("evict", id)
  draft.delete("evicting", id)
  draft.delete("ready", id)
  const peer = draft.peer(id)
  if (peer !== undefined) draft.setPeer({ ...peer, lastDisconnected: now }, true)
  if (wasReady) draft.publish(PeerUpdate.down(id))
  draft.wakeDial()
  return draft.done(undefined)
}

const bump = (peer: PeerRecord.PeerRecord, delta: number): PeerRecord.PeerRecord => ({
  ...peer,
  mutableScore: Math.max(-32768, Math.min(32767, peer.mutableScore + delta))
})

/**
 * A reactor reported the peer. A fatal error, or any error while the node is full, marks it for
 * eviction; otherwise its score drops by one. Unknown or unconnected peers: only the score changes.
 * Each report is a strike: `banAfterMisbehaviours` of them within `misbehaviourWindow` ban the
 * peer for `misbehaviourBanDuration` (`now` is the time of the report). A report that is not
 * misbehaviour (`misbehaviour` false: a seed letting a peer go once it answered) only disconnects,
 * when fatal: no strike, no score change.
 */
export const errored = (state: State, id: NodeId.NodeId, fatal: boolean, now = 0, misbehaviour = true): Outcome<Ban.Ban | undefined> => {
  const draft = new Draft(state)
  const o = state.options
  if (!misbehaviour) {
    if (fatal && state.connected.has(id)) {
      draft.add("evict", id)
      draft.wakeEvict()
    }
    return draft.done(undefined)
  }
  const banned = Bans.strike(draft, Ban.node(id), now, o.banAfterMisbehaviours, o.misbehaviourBanDuration, "repeated misbehaviour")
  // A full node sheds a misbehaving peer, unless evicting it would free no slot.
  if (state.connected.has(id) && (fatal || (isFull(state) && !isUncounted(state, id)))) {
    draft.add("evict", id)
    draft.wakeEvict()
    return draft.done(banned)
  }
  const peer = draft.peer(id)
  if (peer !== undefined) draft.setPeer(bump(peer, -1))
  return draft.done(banned)
}

/**
 * An inbound handshake from `ip` failed in a way a legitimate peer's does not (garbage, failed
 * authentication, silence): a strike against the address; `banAfterFailedHandshakes` within the
 * window ban it (its /32 or /128) for `failedHandshakeBanDuration`.
 */
export const handshakeFailed = (state: State, ip: string, now: number): Outcome<Ban.Ban | undefined> => {
  const draft = new Draft(state)
  const subject = Ban.parseSubject(ip)
  if (ip === "" || subject._tag === "Failure" || subject.success._tag !== "Network") return draft.done(undefined)
  const o = state.options
  return draft.done(Bans.strike(draft, subject.success, now, o.banAfterFailedHandshakes, o.failedHandshakeBanDuration, "failed handshakes"))
}

/** A good or bad event: the mutable score moves by one, saturating at the int16 bounds. Unknown peers are ignored. */
export const report = (state: State, id: NodeId.NodeId, status: "good" | "bad"): Outcome => {
  const draft = new Draft(state)
  const peer = draft.peer(id)
  if (peer !== undefined) draft.setPeer(bump(peer, status === "good" ? 1 : -1))
  return draft.done(undefined)
}

/** Marks a stored peer inactive (incompatible): `add` ignores its new addresses and it is not dialed. */
export const inactivate = (state: State, id: NodeId.NodeId): Outcome => {
  const draft = new Draft(state)
  const peer = draft.peer(id)
  if (peer !== undefined && !peer.inactive) draft.setPeer({ ...peer, inactive: true })
  return draft.done(undefined)
}

/**
 * The next peer to evict: first those marked (in marking order), then those whose grace has ended
 * at `now`, else — only when over capacity — the worst-ranked connected peer. Marks it evicting.
 */
export const tryEvictNext = (state: State, now: number): Outcome<NodeId.NodeId | undefined> => {
  const draft = new Draft(state)
  for (const id of state.evict) {
    draft.delete("evict", id)
    if (state.connected.has(id) && !state.evicting.has(id)) {
      draft.add("evicting", id)
      return draft.done(id)
    }
  }
  for (const [id, until] of state.grace) {
    if (until <= now && !state.evicting.has(id)) {
      draft.add("evicting", id)
      return draft.done(id)
    }
  }
  const o = state.options
  if (o.maxConnected === 0 || countedConnections(state) - state.evicting.size <= o.maxConnected) return draft.done(undefined)
  // Worst first over the connected peers only (the index skips the others).
  let worst: NodeId.NodeId | undefined
  Index.forEachReverse(indexOf(state).rank, (node) => {
    const id = node.id
    // Unconditional peers and peers on grace take no slot, so evicting one would not make room.
    if (state.connected.has(id) && !state.evicting.has(id) && !isUnconditional(state, id) && !state.grace.has(id)) worst = id
    return worst !== undefined
  }, "connected")
  if (worst !== undefined) draft.add("evicting", worst)
  return draft.done(worst)
}

/** When the earliest grace ends (the evictor's next deadline), if any peer is on grace. */
export const nextEvictAt = (state: State): number | undefined => {
  let earliest: number | undefined
  for (const until of state.grace.values()) if (earliest === undefined || until < earliest) earliest = until
  return earliest
}

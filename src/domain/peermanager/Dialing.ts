/**
 * Outbound decisions (docs/ARCHITECTURE.md#lifecycle): which address to dial next, upgrade reservations, recording
 * dial failures and admitting dialed connections. Pure functions over {@link State}.
 *
 * @since 0.1.0
 */
import type * as NodeAddress from "../NodeAddress.ts"
import type * as NodeId from "../NodeId.ts"
import * as Ban from "../Ban.ts"
import * as PeerRecord from "../PeerRecord.ts"
import * as Bans from "./Bans.ts"
import type { Rejection } from "./Policy.ts"
import * as Backoff from "./Backoff.ts"
import { Draft, addressKey, connectionCounts, countedConnections, countedDials, directionCount, isUncounted, isUnconditional, ranked, retryKey, scoreOf, type Outcome, type State } from "./State.ts"

/** When `address` of `peer` may be dialed again (`Infinity`: never; `0` or less: now). */
export const retryTime = (state: State, peer: PeerRecord.PeerRecord, info: PeerRecord.AddressInfo): number => {
  if (info.dialFailures === 0 || info.lastDialFailure === undefined) return 0
  const stored = state.retryAt.get(retryKey(peer.id, info.address))
  if (stored !== undefined) return stored
  // Loaded from disk: no jitter sample survives a restart, so use the delay without jitter.
  const delay = Backoff.retryDelay(state.options, info.dialFailures, peer.persistent, 0)
  return delay === undefined ? Number.POSITIVE_INFINITY : info.lastDialFailure + delay
}

const inCooldown = (state: State, peer: PeerRecord.PeerRecord, now: number) =>
  peer.lastDisconnected !== undefined && now - peer.lastDisconnected < state.options.disconnectCooldownPeriod

/**
 * Whether new dials of ordinary peers may start (connection and outgoing limits, docs/ARCHITECTURE.md#fixed-problems-of-the-original:
 * in-flight dials count). Unconditional peers are dialed regardless.
 */
const mayDial = (state: State): boolean => {
  const o = state.options
  if (o.maxConnected === 0 && o.maxOutgoingConnections === 0) return true
  const counts = connectionCounts(state)
  const dials = countedDials(state)
  if (o.maxConnected > 0 && counts.counted + dials >= o.maxConnected + o.maxConnectedUpgrade) return false
  if (o.maxOutgoingConnections > 0 && counts.outgoing + dials >= o.maxOutgoingConnections) return false
  return true
}

/**
 * The peers the limits let us dial now, best first: every peer; only the direction-exempt ones
 * (persistent and unconditional) once `maxOutgoingPeers` is reached; only unconditional ones once
 * the connection limits are; none at all. Narrowing the walk to the exempt peers (a handful of
 * configured ones) keeps a node that has all the peers it may dial from walking its whole address
 * book at every wake-up.
 */
const dialPool = (state: State): ReadonlyArray<PeerRecord.PeerRecord> => {
  const o = state.options
  const general = mayDial(state)
  if (!general && o.unconditionalPeers.size === 0) return []
  if (general && (o.maxOutgoingPeers === undefined || directionCount(state, "outgoing") < o.maxOutgoingPeers)) return ranked(state)
  const pool: Array<PeerRecord.PeerRecord> = []
  for (const id of o.unconditionalPeers) {
    const p = state.peers.get(id)
    if (p !== undefined) pool.push(p)
  }
  if (general) {
    for (const id of o.persistentPeers) {
      const p = state.peers.get(id)
      if (p !== undefined && !o.unconditionalPeers.has(id)) pool.push(p)
    }
  }
  return pool.length < 2 ? pool : pool.map((p) => [PeerRecord.score(p), p] as const).sort((x, y) => y[0] - x[0] || (x[1].id < y[1].id ? -1 : 1)).map(([, p]) => p)
}

/**
 * A connected peer scoring strictly below `score` that nobody has claimed yet, worst first; or the
 * peer already reserved for `id`.
 */
export const findUpgradeCandidate = (state: State, id: NodeId.NodeId, score: number): NodeId.NodeId | undefined => {
  for (const [from, to] of state.upgrading) if (to === id) return from
  const list = ranked(state)
  for (let i = list.length - 1; i >= 0; i--) {
    const candidate = list[i]!
    if (candidate.id === id) continue
    if (PeerRecord.score(candidate) >= score) return undefined
    if (!state.connected.has(candidate.id) || state.evict.has(candidate.id) || state.evicting.has(candidate.id) || state.upgrading.has(candidate.id)) continue
    // Replacing a peer that takes no slot would free nothing.
    if (isUncounted(state, candidate.id)) continue
    return candidate.id
  }
  return undefined
}

/**
 * The best dialable address now, marking its peer dialing (and reserving an upgrade when full).
 * Unconditional peers are dialed whatever the limits; persistent ones whatever `maxOutgoingPeers`.
 */
export const tryDialNext = (state: State, now: number): Outcome<NodeAddress.NodeAddress | undefined> => {
  const o = state.options
  for (const peer of dialPool(state)) {
    if (state.dialing.has(peer.id) || state.connected.has(peer.id) || peer.inactive || inCooldown(state, peer, now)) continue
    const unconditional = isUnconditional(state, peer.id)
    if (Bans.nodeBan(state, peer.id, now) !== undefined) continue
    for (const info of peer.addresses) {
      if (retryTime(state, peer, info) > now) continue
      if (Bans.ipBan(state, info.address.hostname, now) !== undefined) continue
      const owner = state.owners.get(addressKey(info.address))
      if (owner !== undefined && owner !== peer.id && (state.connected.has(owner) || state.dialing.has(owner))) continue
      const draft = new Draft(state)
      if (!unconditional && o.maxConnected > 0 && countedConnections(state) >= o.maxConnected) {
        const candidate = findUpgradeCandidate(state, peer.id, PeerRecord.score(peer))
        if (candidate === undefined) return draft.done(undefined) // no lower-ranked peer left to replace
        draft.setUpgrade(candidate, peer.id)
      }
      draft.add("dialing", peer.id)
      return draft.done(info.address)
    }
  }
  return new Draft(state).done(undefined)
}

/**
 * The earliest future time at which a frozen candidate the limits let us dial becomes dialable
 * (retry delay or cooldown). Candidates the limits hold back are not waited for: what frees a
 * slot (a disconnect, a failed or refused dial) wakes the dialer anyway.
 */
export const nextWakeAt = (state: State, now: number): number | undefined => {
  let earliest = Number.POSITIVE_INFINITY
  for (const peer of dialPool(state)) {
    if (state.dialing.has(peer.id) || state.connected.has(peer.id) || peer.inactive) continue
    const cooldownEnd = peer.lastDisconnected === undefined ? 0 : peer.lastDisconnected + state.options.disconnectCooldownPeriod
    for (const info of peer.addresses) {
      const at = Math.max(retryTime(state, peer, info), cooldownEnd)
      if (at > now && at < earliest) earliest = at
    }
  }
  return Number.isFinite(earliest) ? earliest : undefined
}

/**
 * Counts a failure against one known address of `peer`: one more dial failure, and its next retry
 * after the backoff. `jitter` in [0, 1) samples the retry jitter once. `ephemeral`: kept in memory
 * only, written with the peer's next change (for transitions that must not fail on a write).
 */
export const recordFailure = (draft: Draft, peer: PeerRecord.PeerRecord, address: NodeAddress.NodeAddress, now: number, jitter: number, ephemeral = false): void => {
  const info = PeerRecord.findAddress(peer, address)
  if (info === undefined) return
  const failures = info.dialFailures + 1
  draft.setPeer(PeerRecord.updateAddress(peer, address, (a) => ({ ...a, lastDialFailure: now, dialFailures: failures })), ephemeral)
  const delay = Backoff.retryDelay(draft.base.options, failures, peer.persistent, jitter)
  draft.setRetry(retryKey(peer.id, address), delay === undefined ? Number.POSITIVE_INFINITY : now + delay)
}

/** Records a failed dial of `address`; `jitter` in [0, 1) samples the retry jitter once. */
export const dialFailed = (state: State, address: NodeAddress.NodeAddress, now: number, jitter: number): Outcome => {
  const id = address.nodeId as NodeId.NodeId
  const draft = new Draft(state)
  draft.delete("dialing", id)
  for (const [from, to] of state.upgrading) if (to === id) draft.deleteUpgrade(from)
  draft.wakeDial()
  const peer = draft.peer(id)
  if (peer !== undefined) recordFailure(draft, peer, address, now, jitter)
  return draft.done(undefined)
}

const reject = (draft: Draft, id: NodeId.NodeId, reason: Rejection["reason"], message: string): Outcome<Rejection> => {
  draft.wakeDial()
  return draft.done({ nodeId: id, reason, message })
}

/**
 * Admits an outbound connection to `address`'s peer (reached at `ip`, when the router says), or says
 * why not (the dialing mark is cleared either way).
 */
export const dialed = (state: State, address: NodeAddress.NodeAddress, now: number, ip?: string): Outcome<Rejection | undefined> => {
  const id = address.nodeId as NodeId.NodeId
  const o = state.options
  const draft = new Draft(state)
  draft.delete("dialing", id)
  let upgradeFrom: NodeId.NodeId | undefined
  for (const [from, to] of state.upgrading) {
    if (to === id) {
      upgradeFrom = from
      draft.deleteUpgrade(from)
    }
  }
  if (id === state.self) return reject(draft, id, "self", `rejecting connection to self (${id})`)
  const banned = Bans.nodeBan(state, id, now) ?? (ip === undefined ? undefined : Bans.ipBan(state, ip, now))
  if (banned !== undefined) return reject(draft, id, "banned", `peer ${id} is banned (${Ban.formatSubject(banned.subject)}: ${banned.reason})`)
  if (state.connected.has(id)) return reject(draft, id, "already_connected", `peer ${id} is already connected`)
  const counted = countedConnections(state)
  if (!isUnconditional(state, id) && o.maxConnected > 0 && counted >= o.maxConnected) {
    if (upgradeFrom === undefined || counted >= o.maxConnected + o.maxConnectedUpgrade) {
      return reject(draft, id, "full", `already connected to the maximum of ${o.maxConnected} peers, rejecting ${id}`)
    }
  }
  const peer = draft.peer(id)
  if (peer === undefined) return reject(draft, id, "unknown_peer", `peer ${id} was removed while dialing`)
  let next: PeerRecord.PeerRecord = { ...peer, inactive: false, lastConnected: now }
  if (PeerRecord.findAddress(next, address) !== undefined) {
    next = PeerRecord.updateAddress(next, address, (a) => ({ ...a, dialFailures: 0, lastDialSuccess: now }))
    draft.setRetry(retryKey(id, address), undefined)
  }
  draft.setPeer(next)
  if (upgradeFrom !== undefined && o.maxConnected > 0 && counted >= o.maxConnected) {
    const lower = findUpgradeCandidate(draft.state, upgradeFrom, scoreOf(state, upgradeFrom))
    draft.add("evict", lower ?? upgradeFrom)
    draft.wakeEvict()
  }
  draft.connect(id, "outgoing", ip)
  return draft.done(undefined)
}

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
import * as Index from "./Index.ts"
import {
  Draft,
  addressKey,
  connectionCounts,
  countedConnections,
  countedDials,
  directionCount,
  findAddress,
  indexOf,
  isUncounted,
  isUnconditional,
  retryKey,
  scoreOf,
  unchanged,
  updateAddress,
  type Outcome,
  type State
} from "./State.ts"

/** When `address` of `peer` may be dialed again (`Infinity`: never; `0` or less: now). */
export const retryTime = (state: State, peer: PeerRecord.PeerRecord, info: PeerRecord.AddressInfo): number =>
  Index.retryTimeOf(state.retryAt, state.options, peer, info)

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
 * The peers the limits let us dial now: `"all"`; only the direction-exempt ones (persistent and
 * unconditional, best first) once `maxOutgoingPeers` is reached; only unconditional ones once the
 * connection limits are; none at all. Narrowing the walk to the exempt peers (a handful of
 * configured ones) keeps a node that has all the peers it may dial from looking at its address
 * book at every wake-up.
 */
const dialPool = (state: State): "all" | ReadonlyArray<PeerRecord.PeerRecord> => {
  const o = state.options
  const general = mayDial(state)
  if (!general && o.unconditionalPeers.size === 0) return []
  if (general && (o.maxOutgoingPeers === undefined || directionCount(state, "outgoing") < o.maxOutgoingPeers)) return "all"
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
 * peer already reserved for `id`. `index`: of `state`, or of a state with the same connected peers
 * and scores (a transition passes its base's).
 */
export const findUpgradeCandidate = (state: State, id: NodeId.NodeId, score: number, index: Index.Index = indexOf(state)): NodeId.NodeId | undefined => {
  for (const [from, to] of state.upgrading) if (to === id) return from
  let found: NodeId.NodeId | undefined
  // Worst first over the connected peers only: the ranking is by score, so the first one scoring
  // `score` or more ends the search as a walk over every peer would.
  Index.forEachReverse(index.rank, (node) => {
    const candidate = node.id
    if (candidate === id) return false
    if (node.score >= score) return true
    if (!state.connected.has(candidate) || state.evict.has(candidate) || state.evicting.has(candidate) || state.upgrading.has(candidate)) return false
    // Replacing a peer that takes no slot would free nothing.
    if (isUncounted(state, candidate)) return false
    found = candidate
    return true
  }, "connected")
  return found
}

/**
 * `peer`'s first dialable address now, marking it dialing (and reserving an upgrade when full): an
 * outcome, or `undefined` to try the next peer.
 */
const tryPeer = (state: State, peer: PeerRecord.PeerRecord, now: number): Outcome<NodeAddress.NodeAddress | undefined> | undefined => {
  const o = state.options
  if (state.dialing.has(peer.id) || state.connected.has(peer.id) || peer.inactive || inCooldown(state, peer, now)) return undefined
  const unconditional = isUnconditional(state, peer.id)
  if (Bans.nodeBan(state, peer.id, now) !== undefined) return undefined
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
  return undefined
}

/**
 * The best dialable address now, marking its peer dialing (and reserving an upgrade when full).
 * Unconditional peers are dialed whatever the limits; persistent ones whatever `maxOutgoingPeers`.
 * With every peer in the pool, the walk follows the index: best first, skipping whole subtrees of
 * peers that are connected, dialing, inactive or not dialable before `now`.
 */
export const tryDialNext = (state: State, now: number): Outcome<NodeAddress.NodeAddress | undefined> => {
  const pool = dialPool(state)
  let outcome: Outcome<NodeAddress.NodeAddress | undefined> | undefined
  if (pool === "all") Index.forEachReady(indexOf(state).rank, now, (node) => (outcome = tryPeer(state, node.record, now)) !== undefined)
  else for (const peer of pool) if ((outcome = tryPeer(state, peer, now)) !== undefined) break
  return outcome ?? unchanged(state, undefined)
}

/**
 * The earliest future time at which a frozen candidate the limits let us dial becomes dialable
 * (retry delay or cooldown). Candidates the limits hold back are not waited for: what frees a
 * slot (a disconnect, a failed or refused dial) wakes the dialer anyway.
 */
export const nextWakeAt = (state: State, now: number): number | undefined => {
  const pool = dialPool(state)
  if (pool === "all") return Index.nextTimeAfter(indexOf(state), now)
  let earliest = Number.POSITIVE_INFINITY
  for (const peer of pool) {
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
  const info = findAddress(peer, address)
  if (info === undefined) return
  const failures = info.dialFailures + 1
  draft.setPeer(updateAddress(peer, address, (a) => ({ ...a, lastDialFailure: now, dialFailures: failures })), ephemeral)
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
  if (findAddress(next, address) !== undefined) {
    // With `minConnectionDuration`, past failures are forgiven only once the connection has lasted
    // that long (`Connections.disconnected`): a peer that accepts and at once turns us away must
    // not reset its back-off with every dial.
    const forgive = draft.base.options.minConnectionDuration === 0
    next = updateAddress(next, address, (a) => ({ ...a, dialFailures: forgive ? 0 : a.dialFailures, lastDialSuccess: now }))
    draft.setRetry(retryKey(id, address), undefined)
  }
  draft.setPeer(next)
  if (upgradeFrom !== undefined && o.maxConnected > 0 && counted >= o.maxConnected) {
    // The base's index: the connected peers and their scores are the draft's (only `id` changed).
    const lower = findUpgradeCandidate(draft.state, upgradeFrom, scoreOf(state, upgradeFrom), indexOf(state))
    draft.add("evict", lower ?? upgradeFrom)
    draft.wakeEvict()
  }
  draft.connect(id, "outgoing", ip)
  return draft.done(undefined)
}

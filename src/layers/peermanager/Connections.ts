/**
 * Decisions about connected peers (SPEC §3.5): admitting inbound connections, readiness,
 * disconnection, errors, reputation and eviction. Pure functions over {@link State}.
 *
 * @since 0.1.0
 */
import type * as NodeId from "../../domain/NodeId.ts"
import * as PeerRecord from "../../domain/PeerRecord.ts"
import * as PeerUpdate from "../../domain/PeerUpdate.ts"
import { ConnectionRejected } from "../../services/PeerManager.ts"
import { findUpgradeCandidate } from "./Dialing.ts"
import { newPeer } from "./Peers.ts"
import { Draft, ranked, retryKey, type Outcome, type State } from "./State.ts"

/** Whether every connection slot is taken. "Unlimited" (`maxConnected` 0) is never full (SPEC §9.2.1). */
export const isFull = (state: State): boolean => state.options.maxConnected > 0 && state.connected.size >= state.options.maxConnected

/** Admits an inbound connection from `id`, or says why not. Unknown peers are registered (without addresses). */
export const accepted = (state: State, id: NodeId.NodeId, now: number): Outcome<ConnectionRejected | undefined> => {
  const o = state.options
  const draft = new Draft(state)
  const reject = (reason: ConnectionRejected["reason"], message: string) => draft.done(new ConnectionRejected({ nodeId: id, reason, message }))
  if (id === state.self) return reject("self", `rejecting connection from self (${id})`)
  if (state.connected.has(id)) return reject("already_connected", `peer ${id} is already connected`)
  if (o.maxConnected > 0 && state.connected.size >= o.maxConnected + o.maxConnectedUpgrade) {
    return reject("full", `already connected to the maximum of ${o.maxConnected + o.maxConnectedUpgrade} peers, rejecting ${id}`)
  }
  const known = draft.peer(id) ?? newPeer(state, id)
  // Forgive past dial failures: the peer just proved reachable.
  const peer: PeerRecord.PeerRecord = { ...known, addresses: known.addresses.map((a) => ({ ...a, dialFailures: 0 })) }
  let upgradeFrom: NodeId.NodeId | undefined
  if (isFull(state)) {
    upgradeFrom = findUpgradeCandidate(state, id, PeerRecord.score(peer))
    if (upgradeFrom === undefined) return reject("full", `already connected to the maximum of ${o.maxConnected} peers and ${id} ranks no higher than any of them`)
  }
  for (const a of peer.addresses) draft.setRetry(retryKey(id, a.address), undefined)
  draft.setPeer({ ...peer, inactive: false, lastConnected: now })
  draft.connect(id, "incoming")
  if (upgradeFrom !== undefined) {
    draft.deleteUpgrade(upgradeFrom)
    draft.add("evict", upgradeFrom)
  }
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

/** The peer's connection ended. `down` is published only if it was ready. A pending dial keeps its slot. */
export const disconnected = (state: State, id: NodeId.NodeId, now: number): Outcome => {
  const draft = new Draft(state)
  const wasReady = state.ready.has(id)
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
 */
export const errored = (state: State, id: NodeId.NodeId, fatal: boolean): Outcome => {
  const draft = new Draft(state)
  if (state.connected.has(id) && (fatal || isFull(state))) {
    draft.add("evict", id)
    draft.wakeEvict()
    return draft.done(undefined)
  }
  const peer = draft.peer(id)
  if (peer !== undefined) draft.setPeer(bump(peer, -1))
  return draft.done(undefined)
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
 * The next peer to evict: first those marked (in marking order), else — only when over capacity —
 * the worst-ranked connected peer. Marks it evicting.
 */
export const tryEvictNext = (state: State): Outcome<NodeId.NodeId | undefined> => {
  const draft = new Draft(state)
  for (const id of state.evict) {
    draft.delete("evict", id)
    if (state.connected.has(id) && !state.evicting.has(id)) {
      draft.add("evicting", id)
      return draft.done(id)
    }
  }
  const o = state.options
  if (o.maxConnected === 0 || state.connected.size - state.evicting.size <= o.maxConnected) return draft.done(undefined)
  const list = ranked(state)
  for (let i = list.length - 1; i >= 0; i--) {
    const id = list[i]!.id
    if (state.connected.has(id) && !state.evicting.has(id)) {
      draft.add("evicting", id)
      return draft.done(id)
    }
  }
  return draft.done(undefined)
}

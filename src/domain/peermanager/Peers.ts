/**
 * The known-peer set (docs/ARCHITECTURE.md#lifecycle, #address-book-limits-and-pruning): adding addresses, configuring loaded peers and
 * pruning to `maxPeers`. Pure functions over {@link State}.
 *
 * @since 0.1.0
 */
import * as Result from "effect/Result"
import * as NodeAddress from "../NodeAddress.ts"
import type * as NodeId from "../NodeId.ts"
import * as PeerRecord from "../PeerRecord.ts"
import type { AddressRefusal } from "./Policy.ts"
import * as Bans from "./Bans.ts"
import * as Index from "./Index.ts"
import { Draft, addressGroup, findAddress, type Outcome, type State } from "./State.ts"

/** A new record for `id` with its configured persistence and fixed score. */
export const newPeer = (state: State, id: NodeId.NodeId): PeerRecord.PeerRecord =>
  PeerRecord.empty(id, { persistent: state.options.persistentPeers.has(id), fixedScore: state.options.peerScores.get(id) ?? 0 })

/**
 * Deletes peers until at most `maxPeers` remain, never a persistent, dialing or connected one:
 * first the worst-ranked of those never reached and not well scored (score 0 or less), then, if
 * that is not enough, the worst-ranked of the rest. So a flood of gossiped addresses displaces only
 * other unproven addresses, never a peer we reached or scored well.
 */
export const prune = (draft: Draft): void => {
  const max = draft.base.options.maxPeers
  if (max === 0 || draft.peerCount() <= max) return
  // Walk the ranking from the worst end; a full store usually needs one deletion, found near it.
  const s = draft.state
  const index = draft.index(s)
  // The index skips whole subtrees of peers that may not go (persistent, connected, dialing) or,
  // in the first pass, that proved themselves.
  for (const only of ["unproven", "prunable"] as const) {
    Index.forEachReverse(index.rank, (node) => {
      const peer = draft.peer(node.id)
      if (peer === undefined || peer.persistent || s.dialing.has(peer.id) || s.connected.has(peer.id)) return false
      if (only === "unproven" && (PeerRecord.reached(peer) || PeerRecord.score(peer) > 0)) return false
      draft.deletePeer(peer.id)
      return draft.peerCount() <= max
    }, only)
    if (draft.peerCount() <= max) return
  }
}

/**
 * Adds an address. `true` when it is new and kept; `false` when already known, when the peer is
 * inactive or banned (at `now`), when the peer has `maxAddressesPerPeer` addresses, or when
 * pruning removed the peer straight away (it ranked lowest of a full store).
 *
 * With a `source` (the peer whose PEX answer carried it), also `false` when the peer was already
 * reached (gossip never changes how we reach a peer we know), or, for a new peer, when the source
 * or the address's group (IPv4 /16, IPv6 /32) already has its share of unreached gossip-learned
 * peers (`maxPeersPerSource`, `maxPeersPerGroup`).
 */
export const add = (state: State, address: NodeAddress.NodeAddress, now = 0, source?: NodeId.NodeId): Result.Result<Outcome<boolean>, AddressRefusal> => {
  const draft = new Draft(state)
  const kept = addTo(draft, address, now, source)
  return typeof kept === "boolean" ? Result.succeed(draft.done(kept)) : Result.fail(kept)
}

/**
 * Adds many addresses in one transition (a PEX answer), each as {@link add} would, in order: one
 * write of the changed records and one wake-up instead of one per address. An invalid address, or
 * our own, is not added (`false`).
 */
export const addAll = (state: State, addresses: ReadonlyArray<NodeAddress.NodeAddress>, now = 0, source?: NodeId.NodeId): Outcome<ReadonlyArray<boolean>> => {
  const draft = new Draft(state)
  return draft.done(addresses.map((address) => addTo(draft, address, now, source) === true))
}

const addTo = (draft: Draft, address: NodeAddress.NodeAddress, now: number, source: NodeId.NodeId | undefined): boolean | AddressRefusal => {
  const state = draft.state
  const valid = NodeAddress.validate(address)
  if (Result.isFailure(valid)) return { address: NodeAddress.format(address), message: valid.failure.message }
  const id = address.nodeId as NodeId.NodeId
  if (id === state.self) return { address: NodeAddress.format(address), message: `cannot add our own address ${NodeAddress.format(address)}` }
  const known = draft.peer(id)
  const peer = known ?? newPeer(state, id)
  if (Bans.nodeBan(state, id, now) !== undefined || Bans.ipBan(state, address.hostname, now) !== undefined) return false
  if (findAddress(peer, address) !== undefined || peer.inactive || peer.addresses.length >= state.options.maxAddressesPerPeer) return false
  if (source !== undefined && source !== id) {
    if (known !== undefined && PeerRecord.reached(peer)) return false
    if (known === undefined) {
      const o = state.options
      if (o.maxPeersPerSource > 0 && (state.gossipBySource.get(source) ?? 0) >= o.maxPeersPerSource) return false
      const group = addressGroup(address)
      if (o.maxPeersPerGroup > 0 && group !== undefined && (state.gossipByGroup.get(group) ?? 0) >= o.maxPeersPerGroup) return false
    }
  }
  const learnedFrom = known === undefined && source !== undefined && source !== id ? { source } : {}
  draft.setPeer({ ...peer, ...learnedFrom, addresses: [...peer.addresses, PeerRecord.addressInfo(address)] })
  prune(draft)
  const kept = draft.peer(id) !== undefined
  if (kept) draft.wakeDial()
  return kept
}

/**
 * The state after loading stored peers: our own ID dropped, persistence and fixed scores taken from
 * the options (rows whose persistent flag changed are rewritten), then pruned.
 */
export const load = (state: State, records: ReadonlyArray<PeerRecord.PeerRecord>, now?: number): Outcome => {
  const draft = new Draft(state)
  for (const stored of records) {
    if (stored.id === state.self) {
      draft.setPeer(stored, true)
      draft.deletePeer(stored.id)
      continue
    }
    const r = now === undefined ? stored : PeerRecord.clampTimes(stored, now)
    const persistent = state.options.persistentPeers.has(r.id)
    const configured = { ...r, persistent, fixedScore: state.options.peerScores.get(r.id) ?? 0 }
    draft.setPeer(configured, persistent === r.persistent && r === stored)
  }
  prune(draft)
  return draft.done(undefined)
}

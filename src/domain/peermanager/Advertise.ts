/**
 * Which addresses to give a peer that asks (PEX). Our own address first (when it has a host and a
 * port), then a weighted sample without replacement of other peers' addresses: higher-ranked peers
 * are likelier, each step down in score a quarter as likely. Private and inactive peers and the
 * requester's own addresses are never given. Replaces the original's loop (docs/ARCHITECTURE.md#fixed-problems-of-the-original).
 *
 * @since 0.1.0
 */
import type * as NodeAddress from "../NodeAddress.ts"
import type * as NodeId from "../NodeId.ts"
import * as PeerRecord from "../PeerRecord.ts"
import * as Bans from "./Bans.ts"
import * as Index from "./Index.ts"
import { indexOf, ranked, type State } from "./State.ts"

/** Up to `limit` addresses for `requester`; `random` yields numbers in [0, 1). Banned peers and addresses (at `now`) are never given. */
export const advertise = (state: State, requester: NodeId.NodeId, limit: number, random: () => number, now = 0): ReadonlyArray<NodeAddress.NodeAddress> => {
  const out: Array<NodeAddress.NodeAddress> = []
  if (limit <= 0) return out
  const self = state.options.selfAddress
  if (self !== undefined && self.hostname !== "" && self.port > 0) out.push(self)
  const index = indexOf(state)
  // Bans, and addresses naming another node than their peer, need every address looked at.
  if (state.bans.size === 0 && index.foreign === 0) return sample(state, index, requester, limit - out.length, random, out)
  const candidates: Array<{ address: NodeAddress.NodeAddress; score: number }> = []
  for (const peer of ranked(state)) {
    if (peer.id === requester || peer.inactive || state.options.privatePeers.has(peer.id) || Bans.nodeBan(state, peer.id, now) !== undefined) continue
    const score = PeerRecord.score(peer)
    for (const a of peer.addresses) {
      if (a.address.nodeId === requester || state.options.privatePeers.has(a.address.nodeId as NodeId.NodeId)) continue
      if (Bans.ipBan(state, a.address.hostname, now) !== undefined) continue
      candidates.push({ address: a.address, score })
    }
  }
  const room = limit - out.length
  if (candidates.length <= room) return [...out, ...candidates.map((c) => c.address)]
  const best = candidates.reduce((m, c) => Math.max(m, c.score), Number.NEGATIVE_INFINITY)
  const weights = candidates.map((c) => 4 ** Math.max(c.score - best, -30))
  let total = weights.reduce((x, y) => x + y, 0)
  for (let picked = 0; picked < room; picked++) {
    let r = random() * total
    let i = -1
    for (let j = 0; j < weights.length; j++) {
      const w = weights[j]!
      if (w === 0) continue
      i = j // floating-point remainder past the end falls on the last live candidate
      if (r < w) break
      r -= w
    }
    if (i < 0) break
    out.push(candidates[i]!.address)
    total -= weights[i]!
    weights[i] = 0
  }
  return out
}

/** Weight of an address `steps` score steps below the best: a quarter per step, floored at 4^-30. */
const weightOf = (steps: number): number => 4 ** -Math.min(steps, 30)

/**
 * {@link advertise} without bans, in O(limit × (limit + log n)) instead of O(n × limit): the
 * candidates are the index's advertisable addresses in ranking order (the requester's left out),
 * and since an address's weight depends only on its score, they fall into at most 31 runs of equal
 * weight (the best score, each of the 29 below it, then everything 30 or more steps down). A draw
 * walks the runs, then takes the k-th live address of its run by position. It picks what the walk
 * over every candidate in `advertise` picks for the same draws, but for floating-point rounding at
 * the boundaries between addresses.
 */
const sample = (
  state: State,
  index: Index.Index,
  requester: NodeId.NodeId,
  room: number,
  random: () => number,
  out: Array<NodeAddress.NodeAddress>
): ReadonlyArray<NodeAddress.NodeAddress> => {
  const root = index.rank
  const total = root?.advertisableCount ?? 0
  // The requester's own addresses: one run of positions, never given.
  const requesterRecord = state.peers.get(requester)
  let requesterStart = 0
  let requesterCount = 0
  if (requesterRecord !== undefined && !requesterRecord.inactive && !state.options.privatePeers.has(requester)) {
    requesterStart = Index.advertisableBefore(root, PeerRecord.score(requesterRecord), requester)
    requesterCount = requesterRecord.addresses.length
  }
  const at = (position: number): NodeAddress.NodeAddress => {
    const found = Index.selectAdvertisable(root, position)!
    return found.node.record.addresses[found.offset]!.address
  }
  if (total - requesterCount <= room) {
    for (let p = 0; p < total; p++) if (p < requesterStart || p >= requesterStart + requesterCount) out.push(at(p))
    return out
  }
  // The best score among the candidates: the first position that is not the requester's.
  const first = requesterStart === 0 && requesterCount > 0 ? requesterCount : 0
  const best = Index.selectAdvertisable(root, first)!.node.score
  // Runs of one score each, [start, end) positions, found score by score (most books hold a few
  // distinct scores); the last one holds everything 30 or more steps below the best. Runs with
  // nothing to give (the requester's alone) are left out.
  const runs: Array<{ start: number; end: number; weight: number; live: number; taken: Array<number> }> = []
  for (let start = 0; start < total;) {
    const score = Index.selectAdvertisable(root, start)!.node.score
    const steps = best - score
    const end = steps >= 30 ? total : Index.advertisableBefore(root, score - 1, "")
    const taken: Array<number> = []
    const skipFrom = Math.max(start, requesterStart)
    const skipTo = Math.min(end, requesterStart + requesterCount)
    for (let p = skipFrom; p < skipTo; p++) taken.push(p)
    if (end - start > taken.length) runs.push({ start, end, weight: weightOf(steps), live: end - start - taken.length, taken })
    start = end
  }
  let weights = 0
  for (const run of runs) weights += run.live * run.weight
  for (let picked = 0; picked < room; picked++) {
    let r = random() * weights
    let chosen: (typeof runs)[number] | undefined
    let k = 0
    for (const run of runs) {
      if (run.live === 0) continue
      chosen = run
      const span = run.live * run.weight
      if (r < span) {
        // (r may be below 0: the running total loses the small weights to rounding.)
        k = Math.max(0, Math.min(run.live - 1, Math.floor(r / run.weight)))
        break
      }
      r -= span
      // A floating-point remainder past the end falls on the last live candidate.
      k = run.live - 1
    }
    if (chosen === undefined) break
    // The k-th position of the run not taken yet (`taken` is sorted).
    let position = chosen.start + k
    let i = 0
    for (; i < chosen.taken.length && chosen.taken[i]! <= position; i++) position++
    chosen.taken.splice(i, 0, position)
    chosen.live--
    weights -= chosen.weight
    out.push(at(position))
  }
  return out
}

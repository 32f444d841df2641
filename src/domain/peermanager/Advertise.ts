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
import { ranked, type State } from "./State.ts"

/** Up to `limit` addresses for `requester`; `random` yields numbers in [0, 1). Banned peers and addresses (at `now`) are never given. */
export const advertise = (state: State, requester: NodeId.NodeId, limit: number, random: () => number, now = 0): ReadonlyArray<NodeAddress.NodeAddress> => {
  const out: Array<NodeAddress.NodeAddress> = []
  if (limit <= 0) return out
  const self = state.options.selfAddress
  if (self !== undefined && self.hostname !== "" && self.port > 0) out.push(self)
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

/**
 * Address-book poisoning (tendermint#4846: one /24 or IPv6 lease filled every address book;
 * tendermint#1581: PEX overwrote a known peer's IP), on the pure transitions.
 */
import { assert, describe, it } from "@effect/vitest"
import { Result } from "effect"
import * as NodeAddress from "../../../src/domain/NodeAddress.ts"
import type * as NodeId from "../../../src/domain/NodeId.ts"
import * as PeerRecord from "../../../src/domain/PeerRecord.ts"
import * as Connections from "../../../src/domain/peermanager/Connections.ts"
import * as Dialing from "../../../src/domain/peermanager/Dialing.ts"
import * as Peers from "../../../src/domain/peermanager/Peers.ts"
import type * as State from "../../../src/domain/peermanager/State.ts"
import { a, b, c, numberedId as id, stateWith, tcp } from "./fixtures.ts"

const addr = (peer: NodeId.NodeId, host: string) => NodeAddress.unsafeParse(`mconn://${peer}@${host}:26656`)

/** Adds each address with its source; how many were kept. */
const gossip = (state: State.State, entries: ReadonlyArray<readonly [NodeAddress.NodeAddress, NodeId.NodeId]>) => {
  let kept = 0
  for (const [address, source] of entries) {
    const out = Result.getOrThrow(Peers.add(state, address, 0, source))
    if (out.value) kept++
    state = out.state
  }
  return { state, kept }
}

describe("a gossiped address never changes how we reach a peer we already reached (tendermint#1581)", () => {
  it("a reached peer keeps its addresses; an unreached one may learn more", () => {
    let state = Result.getOrThrow(Peers.add(stateWith(), tcp(a, "10.0.0.1"))).state
    state = Dialing.dialed(Dialing.tryDialNext(state, 0).state, tcp(a, "10.0.0.1"), 0).state
    const poisoned = gossip(state, [[addr(a, "6.6.6.6"), b]])
    assert.strictEqual(poisoned.kept, 0)
    assert.deepStrictEqual(poisoned.state.peers.get(a)!.addresses.map((x) => x.address.hostname), ["10.0.0.1"])
    // Its own NodeInfo (no source) or configuration still may add one.
    assert.isTrue(Result.getOrThrow(Peers.add(state, addr(a, "10.0.0.2"), 0)).value)
    const unreached = gossip(Result.getOrThrow(Peers.add(stateWith(), tcp(c, "10.0.0.3"))).state, [[addr(c, "10.0.0.4"), b]])
    assert.strictEqual(unreached.kept, 1)
  })
})

describe("gossip is bounded per source and per address group", () => {
  it("one source teaches at most maxPeersPerSource unreached peers", () => {
    const { kept } = gossip(stateWith({ maxPeersPerSource: 10 }), Array.from({ length: 50 }, (_, i) => [addr(id(i + 1), `${i + 1}.0.0.1`), a] as const))
    assert.strictEqual(kept, 10)
  })

  it("one IPv4 /16 or IPv6 /32 holds at most maxPeersPerGroup unreached gossiped peers, whatever the sources", () => {
    const v4 = gossip(stateWith({ maxPeersPerGroup: 8 }), Array.from({ length: 40 }, (_, i) => [addr(id(i + 1), `10.1.${i}.1`), id(1000 + i)] as const))
    assert.strictEqual(v4.kept, 8)
    const v6 = gossip(stateWith({ maxPeersPerGroup: 8 }), Array.from({ length: 40 }, (_, i) => [addr(id(i + 1), `[2001:db8:${i.toString(16)}::1]`), id(1000 + i)] as const))
    assert.strictEqual(v6.kept, 8)
  })

  it("a gossiped peer we reach no longer counts against its source", () => {
    let { state } = gossip(stateWith({ maxPeersPerSource: 1 }), [[addr(b, "10.0.0.2"), a]])
    assert.isFalse(gossip(state, [[addr(c, "10.0.0.3"), a]]).kept > 0)
    state = Dialing.dialed(Dialing.tryDialNext(state, 0).state, addr(b, "10.0.0.2"), 0).state
    assert.strictEqual(state.gossipBySource.get(a), undefined)
    assert.strictEqual(gossip(state, [[addr(c, "10.0.0.3"), a]]).kept, 1)
  })
})

describe("a flood of PEX answers cannot push out persistent, reached or well-scored peers", () => {
  it("with the store full, a thousand gossiped addresses from a hundred sources displace only unproven ones", () => {
    // High IDs: on equal scores the flood's low IDs rank first, so only the prune order can save these.
    const persistent = id(0xffff01)
    const reached = id(0xffff02)
    const scored = id(0xffff03)
    let state = stateWith({ maxPeers: 10, maxConnected: 2, persistentPeers: [persistent], maxPeersPerSource: 0, maxPeersPerGroup: 0 })
    for (const [peer, host] of [[persistent, "10.0.0.1"], [reached, "10.0.0.2"], [scored, "10.0.0.3"]] as const) state = Result.getOrThrow(Peers.add(state, addr(peer, host))).state
    // `reached`: dialed once and gone; `scored`: never reached, but reported good five times.
    state = Dialing.dialed(Dialing.tryDialNext(state, 0).state, addr(persistent, "10.0.0.1"), 0).state
    state = Dialing.dialed(Dialing.tryDialNext(state, 0).state, addr(reached, "10.0.0.2"), 0).state
    state = Connections.disconnected(Connections.disconnected(state, reached, 1).state, persistent, 1).state
    for (let i = 0; i < 5; i++) state = Connections.report(state, scored, "good").state
    const flood = Array.from({ length: 1000 }, (_, i) => [addr(id(1 + i), `${20 + (i % 200)}.${i >> 8}.0.1`), id(0x9000 + (i % 100))] as const)
    const after = gossip(state, flood).state
    assert.isAtMost(after.peers.size, 10)
    for (const peer of [persistent, reached, scored]) assert.isTrue(after.peers.has(peer), `${peer} was pushed out`)
    assert.isTrue(PeerRecord.reached(after.peers.get(reached)!))
  })
})

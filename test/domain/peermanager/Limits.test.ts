/**
 * CometBFT's connection limits, on the pure transitions: `maxIncomingPeers` and `maxOutgoingPeers`
 * (max_num_inbound_peers / max_num_outbound_peers, 0 = none) leave persistent and unconditional
 * peers out; unconditional peers (unconditional_peer_ids) are outside every limit.
 */
import { assert, describe, it } from "@effect/vitest"
import { Result } from "effect"
import type * as NodeAddress from "../../../src/domain/NodeAddress.ts"
import * as Connections from "../../../src/domain/peermanager/Connections.ts"
import * as Dialing from "../../../src/domain/peermanager/Dialing.ts"
import * as Peers from "../../../src/domain/peermanager/Peers.ts"
import * as State from "../../../src/domain/peermanager/State.ts"
import { decodeOptions } from "../../../src/services/PeerManager.ts"
import { a, acceptAll, b, c, d, dialAll as dialFrom, e, mem, stateWith, withAddresses } from "./fixtures.ts"

/** Adds the addresses, then dials until nothing more may be dialed. */
const dialAll = (state: State.State, addresses: ReadonlyArray<NodeAddress.NodeAddress>) => dialFrom(withAddresses(state, addresses))

describe("maxIncomingPeers (max_num_inbound_peers)", () => {
  it("0 refuses every inbound peer but persistent and unconditional ones", () => {
    const { reasons } = acceptAll(stateWith({ maxIncomingPeers: 0, persistentPeers: [b], unconditionalPeers: [c] }), [a, b, c, d])
    assert.deepStrictEqual(reasons, ["inbound_full", "ok", "ok", "inbound_full"])
  })

  it("N admits N ordinary inbound peers; persistent ones do not count", () => {
    const { state, reasons } = acceptAll(stateWith({ maxIncomingPeers: 2, persistentPeers: [a] }), [a, b, c, d])
    assert.deepStrictEqual(reasons, ["ok", "ok", "ok", "inbound_full"])
    assert.strictEqual(State.directionCount(state, "incoming"), 2)
    const rejected = Connections.accepted(state, e, 0).value!
    assert.match(rejected.message, /maximum of 2 inbound peers/)
  })

  it("does not limit outbound peers", () => {
    const { dialed } = dialAll(stateWith({ maxIncomingPeers: 0 }), [mem(a), mem(b)])
    assert.deepStrictEqual(dialed, ["a", "b"])
  })
})

describe("maxOutgoingPeers (max_num_outbound_peers)", () => {
  it("0 dials only persistent and unconditional peers", () => {
    const { dialed } = dialAll(stateWith({ maxOutgoingPeers: 0, persistentPeers: [d], unconditionalPeers: [b] }), [mem(a), mem(b), mem(c), mem(d)])
    assert.sameMembers(dialed, ["b", "d"])
  })

  it("N: dials in flight count; persistent peers are dialed beyond it", () => {
    const { state, dialed } = dialAll(stateWith({ maxOutgoingPeers: 1, persistentPeers: [e] }), [mem(a), mem(b), mem(e)])
    assert.sameMembers(dialed, ["e", dialed.find((x) => x !== "e")!])
    assert.strictEqual(dialed.length, 2)
    assert.strictEqual(State.directionCount(state, "outgoing"), 1)
  })

  it("does not limit inbound peers", () => {
    assert.deepStrictEqual(acceptAll(stateWith({ maxOutgoingPeers: 0 }), [a, b]).reasons, ["ok", "ok"])
  })
})

describe("unconditional peers (unconditional_peer_ids)", () => {
  it("are admitted when every slot is taken, and take no slot themselves", () => {
    const { state, reasons } = acceptAll(stateWith({ maxConnected: 1, unconditionalPeers: [c, d] }), [a, c, b, d])
    assert.deepStrictEqual(reasons, ["ok", "ok", "full", "ok"])
    assert.strictEqual(State.countedConnections(state), 1)
    assert.isTrue(Connections.isFull(state))
  })

  it("are dialed when the node is full, and never evicted to make room", () => {
    let { state } = acceptAll(stateWith({ maxConnected: 1, unconditionalPeers: [c] }), [a])
    const dial = dialAll(state, [mem(b), mem(c)])
    assert.deepStrictEqual(dial.dialed, ["c"])
    state = Dialing.dialed(dial.state, mem(c), 0).state
    assert.strictEqual(State.countedConnections(state), 1)
    assert.isUndefined(Connections.tryEvictNext(state, 0).value)
  })

  it("an unknown ID in the option is a typed error naming it", () => {
    const r = decodeOptions({ unconditionalPeers: ["nope"] })
    assert.isTrue(Result.isFailure(r))
    assert.strictEqual(Result.isFailure(r) ? r.failure.option : "", "unconditionalPeers")
  })
})

describe("grace for peers refused for lack of room (maxGracePeers, gracePeriod)", () => {
  it("a full node admits refused inbound peers for the grace period, takes no slot for them, then evicts them", () => {
    const start = stateWith({ maxIncomingPeers: 1, maxGracePeers: 2, gracePeriod: 3000 })
    const { state, reasons } = acceptAll(start, [a, b, c, d])
    assert.deepStrictEqual(reasons, ["ok", "ok", "ok", "inbound_full"]) // b and c on grace, d refused: grace slots are bounded
    assert.deepStrictEqual([...state.grace.keys()], [b, c])
    assert.strictEqual(State.directionCount(state, "incoming"), 1)
    assert.strictEqual(Connections.nextEvictAt(state), 3000)
    assert.isUndefined(Connections.tryEvictNext(state, 2999).value)
    const first = Connections.tryEvictNext(state, 3000)
    assert.strictEqual(first.value, b)
    const second = Connections.tryEvictNext(first.state, 3000)
    assert.strictEqual(second.value, c)
    // Once gone, the grace slot is free again.
    const freed = Connections.disconnected(Connections.disconnected(second.state, b, 3001).state, c, 3001).state
    assert.strictEqual(freed.grace.size, 0)
    assert.strictEqual(Connections.accepted(freed, e, 3002).value, undefined)
  })

  it("never when the node takes no inbound peers at all (maxIncomingPeers 0)", () => {
    assert.deepStrictEqual(acceptAll(stateWith({ maxIncomingPeers: 0, maxGracePeers: 2 }), [a, b]).reasons, ["inbound_full", "inbound_full"])
  })

  it("off by default: a full node refuses at once (the original's behaviour)", () => {
    assert.deepStrictEqual(acceptAll(stateWith({ maxIncomingPeers: 1 }), [a, b]).reasons, ["ok", "inbound_full"])
  })

  it("needs a positive grace period", () => {
    const r = decodeOptions({ maxGracePeers: 4, gracePeriod: 0 })
    assert.strictEqual(Result.isFailure(r) ? r.failure.option : "", "gracePeriod")
  })
})

describe("minConnectionDuration", () => {
  it("an outbound connection ended sooner counts as a failed dial of its address: the retry backs off", () => {
    let state = Result.getOrThrow(Peers.add(stateWith({ minConnectionDuration: 10_000, minRetryTime: 1000, maxRetryTime: 60_000 }), mem(a))).state
    state = Dialing.tryDialNext(state, 0).state
    state = Dialing.dialed(state, mem(a), 0).state
    state = Connections.disconnected(state, a, 3_000, 0).state
    const info = state.peers.get(a)!.addresses[0]!
    assert.strictEqual(info.dialFailures, 1)
    assert.isUndefined(Dialing.tryDialNext(state, 3_500).value)
    assert.strictEqual(Dialing.tryDialNext(state, 4_000).value?.nodeId, a)
  })

  it("a longer connection, or an inbound one, does not", () => {
    let state = Result.getOrThrow(Peers.add(stateWith({ minConnectionDuration: 10_000 }), mem(a))).state
    state = Dialing.dialed(Dialing.tryDialNext(state, 0).state, mem(a), 0).state
    assert.strictEqual(Connections.disconnected(state, a, 10_000).state.peers.get(a)!.addresses[0]!.dialFailures, 0)
    const inbound = Connections.accepted(stateWith({ minConnectionDuration: 10_000 }), b, 0).state
    assert.strictEqual(Connections.disconnected(inbound, b, 1).state.peers.get(b)!.addresses.length, 0)
  })
})

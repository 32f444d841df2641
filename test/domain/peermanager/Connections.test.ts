/**
 * Decisions about connected peers as plain functions (docs/ARCHITECTURE.md#lifecycle Accepted, Ready, Disconnected,
 * Errored, TryEvictNext; §8.5–8.6): admission and its refusals, grace, readiness, eviction.
 */
import { assert, describe, it } from "@effect/vitest"
import { Result } from "effect"
import * as Ban from "../../../src/domain/Ban.ts"
import type * as NodeId from "../../../src/domain/NodeId.ts"
import * as PeerUpdate from "../../../src/domain/PeerUpdate.ts"
import * as Bans from "../../../src/domain/peermanager/Bans.ts"
import * as Connections from "../../../src/domain/peermanager/Connections.ts"
import * as Dialing from "../../../src/domain/peermanager/Dialing.ts"
import * as State from "../../../src/domain/peermanager/State.ts"
import type { OptionsInput } from "../../../src/services/PeerManager.ts"
import { a, acceptAll, admitAccepted, admitDialed, b, c, connectOut, d, dispense, e, letters, mem, self, stateWith, withAddresses } from "./fixtures.ts"

const ban = (state: State.State, subject: string) =>
  Bans.ban(state, { subject: Result.getOrThrow(Ban.parseSubject(subject)), since: 0, until: 3_600_000, reason: "test" }, 0).state

interface AcceptCase {
  readonly name: string
  readonly options?: OptionsInput
  readonly setup: (s: State.State) => State.State
  readonly id: NodeId.NodeId
  readonly ip?: string
  /** The rejection reason, or `ok`. */
  readonly expected: string
  readonly message?: RegExp
}

const acceptCases: ReadonlyArray<AcceptCase> = [
  { name: "refuses our own ID (55)", setup: (s) => s, id: self, expected: "self" },
  { name: "refuses a banned node", setup: (s) => ban(s, a), id: a, expected: "banned", message: /is banned \(a{40}: test\)/ },
  { name: "refuses a peer connecting from a banned network", setup: (s) => ban(s, "10.0.0.0/8"), id: a, ip: "10.9.9.9", expected: "banned" },
  { name: "admits a peer from outside a banned network", setup: (s) => ban(s, "10.0.0.0/8"), id: a, ip: "11.0.0.1", expected: "ok" },
  { name: "refuses a peer already connected inbound (55)", setup: (s) => admitAccepted(s, a), id: a, expected: "already_connected" },
  { name: "refuses a peer already connected outbound (55)", setup: (s) => connectOut(s, a), id: a, expected: "already_connected" },
  { name: "refuses when dialed and accepted peers fill maxConnected (56)", options: { maxConnected: 2 }, setup: (s) => admitAccepted(connectOut(s, a), b), id: c, expected: "full" },
  { name: "refuses a peer scoring no higher than every connected one when full (57)", options: { maxConnected: 1, maxConnectedUpgrade: 1 }, setup: (s) => connectOut(s, a), id: b, expected: "full", message: /ranks no higher/ },
  { name: "admits a better-scored peer as an upgrade when full (57)", options: { maxConnected: 1, maxConnectedUpgrade: 1, peerScores: { [c]: 1 } }, setup: (s) => connectOut(s, a), id: c, expected: "ok" },
  { name: "refuses even a better peer once the upgrade slots are used (57)", options: { maxConnected: 1, maxConnectedUpgrade: 1, peerScores: { [c]: 1, [d]: 2 } }, setup: (s) => admitAccepted(connectOut(s, a), c), id: d, expected: "full", message: /maximum of 2 peers/ },
  { name: "refuses a better peer when its only lower peer is already claimed (58)", options: { maxConnected: 1, maxConnectedUpgrade: 2, peerScores: { [b]: 1, [c]: 1 } }, setup: (s) => admitAccepted(admitAccepted(s, a), b), id: c, expected: "full" },
  { name: "admits an unconditional peer when every slot is taken", options: { maxConnected: 1, unconditionalPeers: [b] }, setup: (s) => admitAccepted(s, a), id: b, expected: "ok" },
  { name: "refuses an ordinary peer at maxIncomingPeers", options: { maxIncomingPeers: 1 }, setup: (s) => admitAccepted(s, a), id: b, expected: "inbound_full", message: /maximum of 1 inbound peers/ },
  { name: "maxIncomingPeers 0 refuses every ordinary inbound peer", options: { maxIncomingPeers: 0 }, setup: (s) => s, id: a, expected: "inbound_full", message: /accepts no inbound peers/ },
  { name: "maxIncomingPeers does not apply to persistent peers", options: { maxIncomingPeers: 0, persistentPeers: [a] }, setup: (s) => s, id: a, expected: "ok" },
  { name: "maxIncomingPeers does not count outbound peers", options: { maxIncomingPeers: 1 }, setup: (s) => connectOut(s, a), id: b, expected: "ok" },
  { name: "maxOutgoingPeers 0 does not limit inbound peers", options: { maxOutgoingPeers: 0 }, setup: (s) => admitAccepted(s, a), id: b, expected: "ok" },
  { name: "a persistent peer is still bound by maxConnected", options: { maxConnected: 1, persistentPeers: [b], maxIncomingPeers: 0 }, setup: (s) => connectOut(s, a), id: b, expected: "full" },
  { name: "grace admits a peer refused as full", options: { maxConnected: 1, maxGracePeers: 1 }, setup: (s) => admitAccepted(s, a), id: b, expected: "ok" },
  { name: "grace is bounded by maxGracePeers", options: { maxConnected: 1, maxGracePeers: 1 }, setup: (s) => admitAccepted(admitAccepted(s, a), b), id: c, expected: "full" },
  { name: "grace never admits a banned peer", options: { maxGracePeers: 4 }, setup: (s) => ban(s, a), id: a, expected: "banned" },
  { name: "grace never admits a peer when maxIncomingPeers is 0", options: { maxIncomingPeers: 0, maxGracePeers: 4 }, setup: (s) => s, id: a, expected: "inbound_full" }
]

describe("Connections.accepted", () => {
  for (const t of acceptCases) {
    it(t.name, () => {
      const out = Connections.accepted(t.setup(stateWith(t.options)), t.id, 0, t.ip)
      assert.strictEqual(out.value?.reason ?? "ok", t.expected)
      if (t.message !== undefined) assert.match(out.value?.message ?? "", t.message)
      if (t.expected !== "ok") assert.deepStrictEqual(out.persist, [], "a refused peer is not registered")
      else assert.strictEqual(out.state.connected.get(t.id), "incoming")
    })
  }

  it("registers an unknown peer without addresses, persists it and wakes the evictor (55)", () => {
    const out = Connections.accepted(stateWith(), b, 700, "10.0.0.1")
    assert.deepStrictEqual(out.persist.map((p) => [p.id, p.addresses.length, p.lastConnected]), [[b, 0, 700]])
    assert.strictEqual(out.state.connectedIps.get(b), "10.0.0.1")
    assert.deepStrictEqual([out.wakeEvict, out.wakeDial, out.updates], [true, false, []])
  })

  it("forgives past dial failures and clears their retry times (60)", () => {
    let state = withAddresses(stateWith({ minRetryTime: 10_000 }), [mem(a)])
    state = Dialing.dialFailed(dispense(state, mem(a)), mem(a), 0, 0).state
    assert.strictEqual(State.scoreOf(state, a), -1)
    const out = Connections.accepted(Connections.inactivate(state, a).state, a, 5)
    assert.strictEqual(State.scoreOf(out.state, a), 0)
    assert.strictEqual(out.state.retryAt.size, 0)
    assert.isFalse(out.state.peers.get(a)!.inactive, "an inbound connection clears the inactive flag")
  })

  it("leaves a dial in flight to the same peer marked dialing (its dialed will be refused)", () => {
    const out = Connections.accepted(dispense(withAddresses(stateWith(), [mem(a)]), mem(a)), a, 0)
    assert.isTrue(out.state.dialing.has(a) && out.state.connected.has(a))
    assert.strictEqual(Dialing.dialed(out.state, mem(a), 0).value?.reason, "already_connected")
  })

  it("an upgrade marks the worst connected peer for eviction (57)", () => {
    const state = admitAccepted(connectOut(stateWith({ maxConnected: 2, maxConnectedUpgrade: 1, peerScores: { [a]: 2, [b]: 1, [c]: 3 } }), a), b)
    const out = Connections.accepted(state, c, 0)
    assert.strictEqual(letters(out.state.evict), "b")
    assert.isTrue(out.wakeEvict)
    const evicted = Connections.tryEvictNext(out.state, 0)
    assert.strictEqual(evicted.value, b)
    assert.isUndefined(Connections.tryEvictNext(evicted.state, 0).value, "3 connected − 1 evicting = maxConnected")
  })

  it("a peer dialed as an upgrade inherits its claim when it connects inbound (59)", () => {
    let state = admitAccepted(withAddresses(stateWith({ maxConnected: 1, maxConnectedUpgrade: 2, peerScores: { [b]: 1, [c]: 1 } }), [mem(a)]), a)
    state = dispense(withAddresses(state, [mem(b)]), mem(b))
    assert.strictEqual(Connections.accepted(state, c, 0).value?.reason, "full")
    const out = Connections.accepted(state, b, 0)
    assert.isUndefined(out.value)
    assert.deepStrictEqual([letters(out.state.evict), out.state.upgrading.size], ["a", 0])
  })

  it("grace: admitted for gracePeriod, taking no slot, with bounded grace slots", () => {
    const { state, reasons } = acceptAll(stateWith({ maxIncomingPeers: 1, maxGracePeers: 2, gracePeriod: 3000 }), [a, b, c, d], 100)
    assert.deepStrictEqual(reasons, ["ok", "ok", "ok", "inbound_full"])
    assert.deepStrictEqual([...state.grace], [[b, 3100], [c, 3100]])
    assert.deepStrictEqual([State.directionCount(state, "incoming"), State.countedConnections(state)], [1, 1])
  })
})

describe("Connections.isFull", () => {
  const cases: ReadonlyArray<readonly [string, OptionsInput, (s: State.State) => State.State, boolean]> = [
    ["unlimited (maxConnected 0) is never full", {}, (s) => acceptAll(s, [a, b, c]).state, false],
    ["below maxConnected", { maxConnected: 2 }, (s) => admitAccepted(s, a), false],
    ["at maxConnected", { maxConnected: 2 }, (s) => acceptAll(s, [a, b]).state, true],
    ["dials in flight do not fill it", { maxConnected: 1 }, (s) => dispense(withAddresses(s, [mem(a)]), mem(a)), false],
    ["unconditional peers take no slot", { maxConnected: 1, unconditionalPeers: [a] }, (s) => admitAccepted(s, a), false],
    ["peers on grace take no slot", { maxConnected: 1, maxGracePeers: 1 }, (s) => acceptAll(s, [a, b]).state, true]
  ]
  for (const [name, options, setup, expected] of cases) {
    it(name, () => assert.strictEqual(Connections.isFull(setup(stateWith(options))), expected))
  }
})

describe("Connections.ready", () => {
  it("publishes up with the peer's channels for a connected peer (61, 62)", () => {
    const out = Connections.ready(admitAccepted(stateWith(), a), a, [42])
    assert.deepStrictEqual(out.updates, [PeerUpdate.up(a, [42])])
    assert.isTrue(out.updates[0]!.channels.has(42) && !out.updates[0]!.channels.has(48))
    assert.isTrue(out.state.ready.has(a))
  })

  it("does nothing for an unconnected peer, or one already ready (61)", () => {
    assert.deepStrictEqual(Connections.ready(stateWith(), b, [1]).updates, [])
    const ready = Connections.ready(admitAccepted(stateWith(), a), a, [1]).state
    const again = Connections.ready(ready, a, [2])
    assert.deepStrictEqual(again.updates, [])
    assert.strictEqual(again.state.ready, ready.ready)
  })
})

describe("Connections.disconnected", () => {
  it("publishes down only for a ready peer, and always wakes the dialer (68)", () => {
    const connected = admitAccepted(stateWith(), a)
    const silent = Connections.disconnected(connected, a, 5)
    assert.deepStrictEqual([silent.updates, silent.wakeDial], [[], true])
    const loud = Connections.disconnected(Connections.ready(connected, a, [1]).state, a, 5)
    assert.deepStrictEqual(loud.updates, [PeerUpdate.down(a)])
    assert.deepStrictEqual(Connections.disconnected(stateWith(), a, 5).updates, [], "unknown peer")
  })

  it("clears every connected mark, keeps a dial in flight, and writes nothing (lastDisconnected is not stored)", () => {
    let state = stateWith({ maxConnected: 1, maxConnectedUpgrade: 1, maxGracePeers: 1, peerScores: { [b]: 1 } })
    state = Connections.ready(connectOut(state, c, 0), c, [1]).state
    state = admitAccepted(state, a, 0, "10.0.0.3") // on grace
    state = dispense(withAddresses(state, [mem(b)]), mem(b)) // b: dialing, as an upgrade of c
    state = Connections.errored(state, c, true, 0).state // c: marked
    state = Connections.tryEvictNext(state, 0).state // c: evicting
    assert.deepStrictEqual([letters(state.grace.keys()), letters(state.upgrading.keys()), letters(state.evicting), letters(state.ready)], ["a", "c", "c", "c"])
    let out = Connections.disconnected(state, c, 9)
    out = Connections.disconnected(Connections.disconnected(out.state, a, 9).state, b, 9)
    const s = out.state
    assert.deepStrictEqual([s.connected.size, s.ready.size, s.evict.size, s.evicting.size, s.upgrading.size, s.grace.size, s.connectedIps.size], [0, 0, 0, 0, 0, 0, 0])
    assert.isTrue(s.dialing.has(b), "a pending dial keeps its slot (68)")
    assert.strictEqual(s.peers.get(a)!.lastDisconnected, 9)
    assert.deepStrictEqual(out.persist, [])
  })

  it("an outbound connection shorter than minConnectionDuration counts as a failed dial (kept in memory only)", () => {
    const state = connectOut(stateWith({ minConnectionDuration: 10_000, minRetryTime: 1000 }), a, 0)
    const short = Connections.disconnected(state, a, 3000, 0.5)
    assert.strictEqual(short.state.peers.get(a)!.addresses[0]!.dialFailures, 1)
    assert.strictEqual(short.state.retryAt.get(State.retryKey(a, mem(a))), 4000)
    assert.deepStrictEqual(short.persist, [])
    assert.strictEqual(Connections.disconnected(state, a, 10_000).state.peers.get(a)!.addresses[0]!.dialFailures, 0, "long enough")
    const inbound = admitAccepted(withAddresses(stateWith({ minConnectionDuration: 10_000 }), [mem(b)]), b)
    assert.strictEqual(Connections.disconnected(inbound, b, 1).state.peers.get(b)!.addresses[0]!.dialFailures, 0, "inbound")
  })
})

describe("Connections.disconnected: a peer that accepts and turns us away", () => {
  it("keeps backing off across dials that connect; a connection that lasts forgives the failures", () => {
    let state = connectOut(stateWith({ minConnectionDuration: 10_000, minRetryTime: 1000, retryTimeJitter: 0 }), a, 0)
    let now = 0
    const delays: Array<number> = []
    for (let i = 1; i <= 4; i++) {
      // Turned away 1 ms after each connection: one more failure each time, so the back-off doubles.
      state = Connections.disconnected(state, a, now + 1).state
      assert.strictEqual(state.peers.get(a)!.addresses[0]!.dialFailures, i)
      const retryAt = state.retryAt.get(State.retryKey(a, mem(a)))!
      delays.push(retryAt - (now + 1))
      now = retryAt
      state = admitDialed(dispense(state, mem(a), now), mem(a), now)
      assert.strictEqual(state.peers.get(a)!.addresses[0]!.dialFailures, i, "a dial that connects does not reset the count")
    }
    assert.deepStrictEqual(delays, [1000, 2000, 4000, 8000])
    const lasted = Connections.disconnected(state, a, now + 10_000).state
    assert.strictEqual(lasted.peers.get(a)!.addresses[0]!.dialFailures, 0, "a connection that lasted minConnectionDuration forgives")
  })
})

describe("Connections.errored", () => {
  const cases: ReadonlyArray<readonly [string, OptionsInput, (s: State.State) => State.State, boolean, { evict: string; score: number | undefined }]> = [
    ["an unknown peer: nothing happens (69)", {}, (s) => s, true, { evict: "", score: undefined }],
    ["a known, unconnected peer loses a point; nothing is remembered (69)", {}, (s) => withAddresses(s, [mem(a)]), true, { evict: "", score: -1 }],
    ["a fatal error marks a connected peer for eviction, score kept (63)", {}, (s) => admitAccepted(s, a), true, { evict: "a", score: 0 }],
    ["a non-fatal error costs a connected peer a point while there is room", {}, (s) => admitAccepted(s, a), false, { evict: "", score: -1 }],
    ["a non-fatal error evicts when the node is full", { maxConnected: 2 }, (s) => acceptAll(s, [a, b]).state, false, { evict: "a", score: 0 }]
  ]
  for (const [name, options, setup, fatal, expected] of cases) {
    it(name, () => {
      const out = Connections.errored(setup(stateWith(options)), a, fatal, 0)
      assert.strictEqual(letters(out.state.evict), expected.evict)
      assert.strictEqual(out.wakeEvict, expected.evict !== "")
      assert.strictEqual(out.state.peers.has(a) ? State.scoreOf(out.state, a) : undefined, expected.score)
    })
  }
})

describe("Connections.report and inactivate", () => {
  it("good and bad move the score by one and persist it; unknown peers are ignored (77, 78)", () => {
    let state = withAddresses(stateWith(), [mem(a)])
    const scores: Array<number> = []
    for (const status of ["good", "good", "bad", "bad", "bad"] as const) {
      const out = Connections.report(state, a, status)
      assert.strictEqual(out.persist.length, 1)
      state = out.state
      scores.push(State.scoreOf(state, a))
    }
    assert.deepStrictEqual(scores, [1, 2, 1, 0, -1])
    const unknown = Connections.report(state, b, "good")
    assert.deepStrictEqual([unknown.persist, unknown.state.peers.has(b)], [[], false])
  })

  it("the mutable score saturates at the int16 bounds (82)", () => {
    const at = (mutableScore: number, status: "good" | "bad") => {
      const state = withAddresses(stateWith(), [mem(a)])
      const start = { ...state, peers: new Map([[a, { ...state.peers.get(a)!, mutableScore }]]) }
      return Connections.report(start, a, status).state.peers.get(a)!.mutableScore
    }
    assert.deepStrictEqual([at(32_767, "good"), at(-32_768, "bad"), at(32_767, "bad"), at(-32_768, "good")], [32_767, -32_768, 32_766, -32_767])
  })

  it("inactivate marks a stored peer once and creates no unknown peer (30)", () => {
    const state = withAddresses(stateWith(), [mem(a)])
    const out = Connections.inactivate(state, a)
    assert.isTrue(out.state.peers.get(a)!.inactive)
    assert.strictEqual(out.persist.length, 1)
    assert.deepStrictEqual(Connections.inactivate(out.state, a).persist, [], "already inactive: nothing to write")
    assert.isFalse(Connections.inactivate(state, b).state.peers.has(b))
  })
})

describe("Connections.tryEvictNext", () => {
  it("hands a marked peer out once while it stays connected (67)", () => {
    let state = admitAccepted(stateWith(), a)
    assert.isUndefined(Connections.tryEvictNext(state, 0).value)
    state = Connections.errored(state, a, true).state
    const first = Connections.tryEvictNext(state, 0)
    assert.strictEqual(first.value, a)
    assert.isTrue(first.state.evicting.has(a))
    assert.isUndefined(Connections.tryEvictNext(first.state, 0).value)
    assert.isUndefined(Connections.tryEvictNext(Connections.errored(first.state, a, true).state, 0).value)
    const again = Connections.errored(admitAccepted(Connections.disconnected(first.state, a, 1).state, a, 2), a, true).state
    assert.strictEqual(Connections.tryEvictNext(again, 3).value, a, "after reconnecting it can be evicted again")
  })

  it("hands out marked peers in marking order, dropping marks of peers gone meanwhile", () => {
    let state = acceptAll(stateWith(), [a, b, c]).state
    for (const id of [c, a, b]) state = Connections.errored(state, id, true).state
    state = { ...state, connected: new Map([...state.connected].filter(([id]) => id !== a)) } // a left without a disconnected call
    const out: Array<string> = []
    for (let next = Connections.tryEvictNext(state, 0); next.value !== undefined; next = Connections.tryEvictNext(state, 0)) {
      out.push(next.value.slice(0, 1))
      state = next.state
    }
    assert.deepStrictEqual([out, state.evict.size], [["c", "b"], 0])
  })

  it("hands out peers whose grace has ended, then nothing (grace ends at gracePeriod)", () => {
    const { state } = acceptAll(stateWith({ maxConnected: 1, maxGracePeers: 2, gracePeriod: 3000 }), [a, b, c])
    assert.strictEqual(Connections.nextEvictAt(state), 3000)
    assert.isUndefined(Connections.tryEvictNext(state, 2999).value)
    const first = Connections.tryEvictNext(state, 3000)
    const second = Connections.tryEvictNext(first.state, 3000)
    assert.deepStrictEqual([first.value, second.value, Connections.tryEvictNext(second.state, 3000).value], [b, c, undefined])
  })

  it("over capacity, evicts the worst-ranked counted peer, never an unconditional one", () => {
    const over = { ...acceptAll(stateWith({ maxConnected: 3, unconditionalPeers: [a], peerScores: { [b]: 2, [c]: 3, [d]: 1 } }), [a, b, c, d]).state, options: stateWith({ maxConnected: 2, unconditionalPeers: [a] }).options }
    const first = Connections.tryEvictNext(over, 0)
    assert.strictEqual(first.value, d)
    assert.isUndefined(Connections.tryEvictNext(first.state, 0).value, "3 counted − 1 evicting = maxConnected")
    assert.isUndefined(Connections.tryEvictNext(acceptAll(stateWith({ maxConnected: 2 }), [a, e]).state, 0).value, "at capacity: nothing")
  })
})

// An upgrade replaces a peer that takes a slot: evicting an unconditional peer, or one on grace,
// would free nothing and leave the node one counted peer over `maxConnected`.
describe("upgrades claim counted peers only", () => {
  it("an inbound upgrade claims the worst counted peer, never an unconditional one", () => {
    const state = connectOut(admitAccepted(stateWith({ maxConnected: 1, maxConnectedUpgrade: 1, unconditionalPeers: [a], peerScores: { [b]: 1, [c]: 2 } }), a), b)
    assert.strictEqual(letters(Connections.accepted(state, c, 0).state.evict), "b")
  })

  it("an upgrade dial claims the worst counted peer, never one on grace", () => {
    const state = withAddresses(admitAccepted(connectOut(stateWith({ maxConnected: 1, maxConnectedUpgrade: 1, maxGracePeers: 1, peerScores: { [c]: 2 } }), a), b), [mem(c)])
    assert.strictEqual(letters(state.grace.keys()), "b")
    assert.deepStrictEqual([...Dialing.tryDialNext(state, 0).state.upgrading], [[a, c]])
  })
})

describe("errored on a peer that takes no slot", () => {
  it("a non-fatal error while full does not evict an unconditional peer (it frees no slot); a fatal one does", () => {
    const state = connectOut(admitAccepted(stateWith({ maxConnected: 1, unconditionalPeers: [a] }), a), b)
    assert.strictEqual(letters(Connections.errored(state, a, false, 0).state.evict), "")
    assert.strictEqual(letters(Connections.errored(state, b, false, 0).state.evict), "b")
    assert.strictEqual(letters(Connections.errored(state, a, true, 0).state.evict), "a")
  })
})

describe("errored that is not misbehaviour", () => {
  it("a fatal report with misbehaviour false disconnects without a strike or a score change, however often", () => {
    let state = admitAccepted(stateWith({ banAfterMisbehaviours: 2 }), a)
    const before = state.peers.get(a)!.mutableScore
    for (let i = 0; i < 5; i++) {
      const out = Connections.errored(state, a, true, i, false)
      assert.isUndefined(out.value)
      assert.strictEqual(letters(out.state.evict), "a")
      assert.strictEqual(out.state.peers.get(a)!.mutableScore, before)
      state = admitAccepted(Connections.disconnected(out.state, a, i).state, a)
    }
    assert.strictEqual(state.bans.size, 0)
  })
})

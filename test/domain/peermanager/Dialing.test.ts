/**
 * Outbound decisions as plain functions (docs/ARCHITECTURE.md#lifecycle TryDialNext, DialFailed, Dialed; §8.4–8.5):
 * which address is dialed next, upgrade reservations, failures and admitting dialed connections.
 */
import { assert, describe, it } from "@effect/vitest"
import { Result } from "effect"
import * as Ban from "../../../src/domain/Ban.ts"
import type * as NodeAddress from "../../../src/domain/NodeAddress.ts"
import * as PeerRecord from "../../../src/domain/PeerRecord.ts"
import * as Bans from "../../../src/domain/peermanager/Bans.ts"
import * as Connections from "../../../src/domain/peermanager/Connections.ts"
import * as Dialing from "../../../src/domain/peermanager/Dialing.ts"
import * as Peers from "../../../src/domain/peermanager/Peers.ts"
import * as State from "../../../src/domain/peermanager/State.ts"
import type { OptionsInput } from "../../../src/services/PeerManager.ts"
import { a, admitAccepted, admitDialed, b, c, connectOut, d, dispense, letters, mem, self, show, stateWith, tcp, withAddresses } from "./fixtures.ts"

const ban = (state: State.State, subject: string, until = 3_600_000) =>
  Bans.ban(state, { subject: Result.getOrThrow(Ban.parseSubject(subject)), since: 0, until, reason: "test" }, 0).state

interface DialCase {
  readonly name: string
  readonly options?: OptionsInput
  readonly setup: (s: State.State) => State.State
  readonly now?: number
  readonly expected: NodeAddress.NodeAddress | undefined
}

const dialCases: ReadonlyArray<DialCase> = [
  { name: "dispenses nothing when no peer is known", setup: (s) => s, expected: undefined },
  { name: "dispenses the best-scored peer first", options: { peerScores: { [b]: 1, [c]: 2 } }, setup: (s) => withAddresses(s, [mem(a), mem(b), mem(c)]), expected: mem(c) },
  { name: "breaks score ties by node ID", setup: (s) => withAddresses(s, [mem(c), mem(b)]), expected: mem(b) },
  { name: "a persistent peer outranks a fixed score", options: { persistentPeers: [c], peerScores: { [b]: 100 } }, setup: (s) => withAddresses(s, [mem(b), mem(c)]), expected: mem(c) },
  {
    name: "skips a peer whose retry time has not come",
    options: { minRetryTime: 1000, peerScores: { [a]: 5 } },
    setup: (s) => Dialing.dialFailed(dispense(withAddresses(s, [mem(a), mem(b)]), mem(a)), mem(a), 0, 0).state,
    now: 999,
    expected: mem(b)
  },
  {
    name: "dispenses a failed address once its retry time has come",
    options: { minRetryTime: 1000, peerScores: { [a]: 5 } },
    setup: (s) => Dialing.dialFailed(dispense(withAddresses(s, [mem(a), mem(b)]), mem(a)), mem(a), 0, 0).state,
    now: 1000,
    expected: mem(a)
  },
  {
    name: "never retries an ordinary peer when minRetryTime is 0",
    setup: (s) => Dialing.dialFailed(dispense(withAddresses(s, [mem(a)]), mem(a)), mem(a), 0, 0).state,
    now: 1e12,
    expected: undefined
  },
  {
    name: "tries the peer's next address while the first backs off",
    options: { minRetryTime: 1000 },
    setup: (s) => Dialing.dialFailed(dispense(withAddresses(s, [mem(a), tcp(a)]), mem(a)), mem(a), 0, 0).state,
    now: 10,
    expected: tcp(a)
  },
  { name: "skips a peer inside its disconnect cooldown", options: { disconnectCooldownPeriod: 1000 }, setup: (s) => Connections.disconnected(connectOut(s, a), a, 100).state, now: 1099, expected: undefined },
  { name: "dials a disconnected peer once its cooldown ends", options: { disconnectCooldownPeriod: 1000 }, setup: (s) => Connections.disconnected(connectOut(s, a), a, 100).state, now: 1100, expected: mem(a) },
  { name: "never dispenses a peer already dialing, whatever its other addresses (41)", setup: (s) => withAddresses(dispense(withAddresses(s, [mem(a)]), mem(a)), [tcp(a)]), expected: undefined },
  { name: "never dispenses a peer connected inbound (41)", setup: (s) => admitAccepted(withAddresses(s, [mem(a)]), a), expected: undefined },
  { name: "never dispenses a peer connected outbound, whatever its other addresses (41)", setup: (s) => withAddresses(connectOut(s, a), [tcp(a)]), expected: undefined },
  { name: "skips an inactive peer", setup: (s) => Connections.inactivate(withAddresses(s, [mem(a)]), a).state, expected: undefined },
  { name: "skips a banned peer", options: { peerScores: { [a]: 5 } }, setup: (s) => ban(withAddresses(s, [mem(a), mem(b)]), a), expected: mem(b) },
  { name: "dials a peer whose ban has ended", setup: (s) => ban(withAddresses(s, [mem(a)]), a, 500), now: 500, expected: mem(a) },
  { name: "skips an address inside a banned network and takes the peer's next one", setup: (s) => ban(withAddresses(s, [tcp(a, "10.0.0.1"), tcp(a, "192.168.0.1")]), "10.0.0.0/8"), expected: tcp(a, "192.168.0.1") },
  {
    name: "skips an address that another connected peer listed last (one address, several IDs)",
    setup: (s) => admitAccepted(Peers.load(s, [PeerRecord.empty(a, { addresses: [PeerRecord.addressInfo(mem(b))] }), PeerRecord.empty(b, { addresses: [PeerRecord.addressInfo(mem(b))] })]).state, b),
    expected: undefined
  },
  { name: "maxConnected counts dials in flight (37)", options: { maxConnected: 2 }, setup: (s) => withAddresses(dispense(withAddresses(connectOut(s, a), [mem(b)]), mem(b)), [mem(c)]), expected: undefined },
  { name: "maxOutgoingConnections counts dials in flight (43)", options: { maxConnected: 2, maxOutgoingConnections: 1 }, setup: (s) => dispense(withAddresses(s, [mem(a), mem(b)]), mem(a)), expected: undefined },
  { name: "maxOutgoingConnections counts outbound connections (43)", options: { maxConnected: 2, maxOutgoingConnections: 1 }, setup: (s) => withAddresses(connectOut(s, a), [mem(b)]), expected: undefined },
  { name: "maxOutgoingConnections ignores inbound connections", options: { maxConnected: 3, maxOutgoingConnections: 1 }, setup: (s) => withAddresses(admitAccepted(s, c), [mem(a)]), expected: mem(a) },
  { name: "maxIncomingPeers 0 does not limit dialing", options: { maxIncomingPeers: 0 }, setup: (s) => withAddresses(s, [mem(a)]), expected: mem(a) },
  { name: "maxOutgoingPeers 0 still dials a persistent peer", options: { maxOutgoingPeers: 0, persistentPeers: [b] }, setup: (s) => withAddresses(s, [mem(a), mem(b)]), expected: mem(b) },
  { name: "maxOutgoingPeers 0 dials no ordinary peer", options: { maxOutgoingPeers: 0 }, setup: (s) => withAddresses(s, [mem(a)]), expected: undefined },
  { name: "maxOutgoingPeers counts ordinary dials in flight", options: { maxOutgoingPeers: 1 }, setup: (s) => dispense(withAddresses(s, [mem(a), mem(b)]), mem(a)), expected: undefined },
  { name: "when full, dials a better-scored peer as an upgrade", options: { maxConnected: 1, maxConnectedUpgrade: 1, peerScores: { [b]: 1 } }, setup: (s) => withAddresses(connectOut(s, a), [mem(b)]), expected: mem(b) },
  { name: "when full, dials no peer that scores no higher than every connected one", options: { maxConnected: 1, maxConnectedUpgrade: 1 }, setup: (s) => withAddresses(connectOut(s, a), [mem(b)]), expected: undefined },
  { name: "when full without upgrade slots, dials nothing", options: { maxConnected: 1, peerScores: { [b]: 1 } }, setup: (s) => withAddresses(connectOut(s, a), [mem(b)]), expected: undefined },
  { name: "an upgrade claims a connected peer once: a second better peer finds none left (39)", options: { maxConnected: 1, maxConnectedUpgrade: 2, peerScores: { [b]: 1, [c]: 1 } }, setup: (s) => withAddresses(dispense(withAddresses(connectOut(s, a), [mem(b)]), mem(b)), [mem(c)]), expected: undefined },
  {
    name: "a failed upgrade dial releases its claim for the next better peer (40)",
    options: { maxConnected: 1, maxConnectedUpgrade: 2, peerScores: { [b]: 1, [c]: 1 } },
    setup: (s) => Dialing.dialFailed(withAddresses(dispense(withAddresses(connectOut(s, a), [mem(b)]), mem(b)), [mem(c)]), mem(b), 0, 0).state,
    expected: mem(c)
  },
  { name: "an unconditional peer is dialed although the node is full", options: { maxConnected: 1, unconditionalPeers: [b] }, setup: (s) => withAddresses(connectOut(s, a), [mem(b)]), expected: mem(b) },
  { name: "a dial to an unconditional peer takes no ordinary slot", options: { maxConnected: 1, unconditionalPeers: [b], peerScores: { [b]: 9 } }, setup: (s) => withAddresses(dispense(withAddresses(s, [mem(b)]), mem(b)), [mem(a)]), expected: mem(a) }
]

describe("Dialing.tryDialNext", () => {
  for (const t of dialCases) {
    it(t.name, () => {
      const state = t.setup(stateWith(t.options))
      assert.strictEqual(show(Dialing.tryDialNext(state, t.now ?? 0).value), show(t.expected))
    })
  }

  it("marks the peer dialing and asks the shell for nothing else", () => {
    const before = withAddresses(stateWith(), [mem(a)])
    const out = Dialing.tryDialNext(before, 0)
    assert.strictEqual(letters(out.state.dialing), "a")
    assert.deepStrictEqual([out.persist, out.remove, out.updates, out.wakeDial, out.wakeEvict], [[], [], [], false, false])
    assert.strictEqual(before.dialing.size, 0, "the input state is untouched")
  })

  it("reserves the worst connected peer for an upgrade", () => {
    let state = connectOut(connectOut(stateWith({ maxConnected: 2, maxConnectedUpgrade: 1, peerScores: { [a]: 2, [b]: 1, [c]: 3 } }), a), b)
    state = dispense(withAddresses(state, [mem(c)]), mem(c))
    assert.deepStrictEqual([...state.upgrading], [[b, c]])
  })

  it("once the upgrade slots are taken by dials in flight, dispenses nothing until one ends (38)", () => {
    let state = stateWith({ peerScores: { [b]: 1, [c]: 2, [d]: 3 }, persistentPeers: [c, d], maxConnected: 2, maxConnectedUpgrade: 1 })
    state = dispense(withAddresses(connectOut(state, a), [mem(b)]), mem(b))
    state = dispense(withAddresses(state, [mem(c)]), mem(c))
    state = withAddresses(state, [mem(d)])
    assert.isUndefined(Dialing.tryDialNext(state, 0).value)
    assert.strictEqual(show(Dialing.tryDialNext(Dialing.dialFailed(state, mem(b), 0, 0).state, 0).value), show(mem(d)))
  })

  it("with retries off, dispenses every address exactly once, a failure sending its peer down the ranking (42)", () => {
    let state = withAddresses(stateWith(), [mem(a), tcp(a), mem(b), tcp(b)])
    const seen: Array<string | undefined> = []
    for (let out = Dialing.tryDialNext(state, 0); out.value !== undefined; out = Dialing.tryDialNext(state, 0)) {
      seen.push(show(out.value))
      state = Dialing.dialFailed(out.state, out.value, 0, 0).state
    }
    assert.deepStrictEqual(seen, [mem(a), mem(b), tcp(a), tcp(b)].map(show))
  })
})

describe("Dialing.dialFailed", () => {
  it("clears the dialing mark, records the failure with its retry time, persists it and wakes the dialer", () => {
    const state = dispense(withAddresses(stateWith({ minRetryTime: 100, retryTimeJitter: 1000 }), [mem(a)]), mem(a))
    const out = Dialing.dialFailed(state, mem(a), 500, 0.5)
    assert.strictEqual(out.state.dialing.size, 0)
    assert.deepStrictEqual(out.persist.map((p) => [p.id, p.addresses[0]!.dialFailures, p.addresses[0]!.lastDialFailure]), [[a, 1, 500]])
    assert.strictEqual(out.state.retryAt.get(State.retryKey(a, mem(a))), 500 + 100 + 500)
    assert.isTrue(out.wakeDial)
    assert.isFalse(out.wakeEvict)
  })

  it("each failure lowers the score by one (81)", () => {
    let state = withAddresses(stateWith({ minRetryTime: 100 }), [mem(a)])
    const scores: Array<number> = []
    for (const now of [0, 1000, 5000]) {
      state = Dialing.dialFailed(dispense(state, mem(a), now), mem(a), now, 0).state
      scores.push(State.scoreOf(state, a))
    }
    assert.deepStrictEqual(scores, [-1, -2, -3])
  })

  it("a failure of an address the peer does not have clears dialing and records nothing (45)", () => {
    const state = dispense(withAddresses(stateWith({ minRetryTime: 1000 }), [mem(a)]), mem(a))
    const out = Dialing.dialFailed(state, tcp(a), 0, 0)
    assert.deepStrictEqual(out.persist, [])
    assert.deepStrictEqual(out.state.peers.get(a)!.addresses.map((x) => show(x.address)), [show(mem(a))])
    assert.strictEqual(show(Dialing.tryDialNext(out.state, 0).value), show(mem(a)))
  })

  it("a failure for an unknown peer adds nothing (46)", () => {
    const out = Dialing.dialFailed(stateWith(), mem(b), 0, 0)
    assert.strictEqual(out.state.peers.size, 0)
    assert.deepStrictEqual(out.persist, [])
  })

  it("a second report of the same failure counts again (46)", () => {
    const state = dispense(withAddresses(stateWith(), [mem(a)]), mem(a))
    const twice = Dialing.dialFailed(Dialing.dialFailed(state, mem(a), 0, 0).state, mem(a), 1, 0).state
    assert.strictEqual(twice.peers.get(a)!.addresses[0]!.dialFailures, 2)
  })

  it("releases the failed peer's upgrade reservation", () => {
    let state = withAddresses(connectOut(stateWith({ maxConnected: 1, maxConnectedUpgrade: 1, peerScores: { [b]: 1 } }), a), [mem(b)])
    state = dispense(state, mem(b))
    assert.strictEqual(state.upgrading.size, 1)
    assert.strictEqual(Dialing.dialFailed(state, mem(b), 0, 0).state.upgrading.size, 0)
  })
})

interface RejectCase {
  readonly name: string
  readonly options?: OptionsInput
  readonly setup: (s: State.State) => State.State
  readonly address: NodeAddress.NodeAddress
  readonly ip?: string
  readonly reason: string
}

const rejectCases: ReadonlyArray<RejectCase> = [
  { name: "our own ID: self (48)", setup: (s) => s, address: mem(self), reason: "self" },
  { name: "a banned node: banned", setup: (s) => ban(dispense(withAddresses(s, [mem(a)]), mem(a)), a), address: mem(a), reason: "banned" },
  { name: "reached inside a banned network: banned", setup: (s) => ban(dispense(withAddresses(s, [tcp(a, "example.com")]), tcp(a, "example.com")), "10.0.0.0/8"), address: tcp(a, "example.com"), ip: "10.1.2.3", reason: "banned" },
  { name: "connected twice: already_connected (47)", setup: (s) => connectOut(s, a), address: mem(a), reason: "already_connected" },
  { name: "connected inbound meanwhile: already_connected (47, 55)", setup: (s) => admitAccepted(dispense(withAddresses(s, [mem(a)]), mem(a)), a), address: mem(a), reason: "already_connected" },
  { name: "no free slot and no reservation: full (49)", options: { maxConnected: 1 }, setup: (s) => admitDialed(withAddresses(dispense(withAddresses(s, [mem(a)]), mem(a)), [mem(b)]), mem(b)), address: mem(a), reason: "full" },
  {
    name: "upgrade slots free but nothing reserved: full (50)",
    options: { maxConnected: 2, maxConnectedUpgrade: 1, peerScores: { [c]: 1, [d]: 1 } },
    setup: (s) => withAddresses(admitDialed(dispense(withAddresses(connectOut(connectOut(s, a), b), [mem(c)]), mem(c)), mem(c)), [mem(d)]),
    address: mem(d),
    reason: "full"
  },
  { name: "a peer never added: unknown_peer (51)", setup: (s) => s, address: mem(a), reason: "unknown_peer" }
]

describe("Dialing.dialed", () => {
  for (const t of rejectCases) {
    it(`refuses ${t.name}, clearing the dialing mark and waking the dialer`, () => {
      const before = t.setup(stateWith(t.options))
      const out = Dialing.dialed(before, t.address, 1, t.ip)
      assert.strictEqual(out.value?.reason, t.reason)
      assert.isFalse(out.state.dialing.has(t.address.nodeId as never))
      assert.strictEqual(out.state.connected.size, before.connected.size)
      assert.deepStrictEqual(out.persist, [])
      assert.isTrue(out.wakeDial)
    })
  }

  it("admits a dispensed dial: outgoing, reached, failures of that address forgiven, persisted", () => {
    let state = withAddresses(stateWith({ minRetryTime: 100 }), [mem(a)])
    state = Dialing.dialFailed(dispense(state, mem(a)), mem(a), 0, 0).state
    state = Connections.inactivate(dispense(state, mem(a), 200), a).state
    const out = Dialing.dialed(state, mem(a), 300, "10.0.0.5")
    assert.isUndefined(out.value)
    assert.strictEqual(out.state.connected.get(a), "outgoing")
    assert.strictEqual(out.state.connectedIps.get(a), "10.0.0.5")
    assert.strictEqual(out.state.dialing.size, 0)
    assert.isFalse(out.state.retryAt.has(State.retryKey(a, mem(a))))
    const [row] = out.persist
    assert.deepStrictEqual([row?.lastConnected, row?.inactive, row?.addresses[0]?.dialFailures, row?.addresses[0]?.lastDialSuccess], [300, false, 0, 300])
    assert.strictEqual(State.scoreOf(out.state, a), 0, "the failure no longer counts against the score (81)")
    assert.deepStrictEqual([out.updates, out.wakeDial, out.wakeEvict], [[], false, false])
  })

  it("a dial that was never dispensed may take a free slot (49)", () => {
    const out = Dialing.dialed(withAddresses(stateWith({ maxConnected: 1 }), [mem(b)]), mem(b), 0)
    assert.isUndefined(out.value)
    assert.strictEqual(letters(out.state.connected.keys()), "b")
  })

  it("an unconditional peer is admitted when the node is full, taking no slot", () => {
    const state = withAddresses(connectOut(stateWith({ maxConnected: 1, unconditionalPeers: [b] }), a), [mem(b)])
    const out = Dialing.dialed(state, mem(b), 0)
    assert.isUndefined(out.value)
    assert.strictEqual(State.countedConnections(out.state), 1)
  })

  it("a connected upgrade marks its claimed peer for eviction and wakes the evictor (50, 52)", () => {
    let state = withAddresses(connectOut(stateWith({ maxConnected: 1, maxConnectedUpgrade: 2, peerScores: { [b]: 1 } }), a), [mem(b)])
    const out = Dialing.dialed(dispense(state, mem(b)), mem(b), 0)
    assert.isUndefined(out.value)
    assert.strictEqual(letters(out.state.evict), "a")
    assert.strictEqual(out.state.upgrading.size, 0)
    assert.isTrue(out.wakeEvict)
    state = withAddresses(out.state, [mem(c)])
    assert.isUndefined(Dialing.tryDialNext(state, 0).value, "the marked peer cannot be claimed again (52)")
  })

  it("a connected upgrade evicts an even lower peer that connected meanwhile (53)", () => {
    let state = stateWith({ maxConnected: 2, maxConnectedUpgrade: 1, peerScores: { [a]: 3, [b]: 2, [c]: 10, [d]: 1 } })
    state = dispense(withAddresses(connectOut(connectOut(state, a), b), [mem(c)]), mem(c))
    assert.deepStrictEqual([...state.upgrading], [[b, c]])
    state = admitAccepted(Connections.disconnected(state, a, 0).state, d)
    const out = Dialing.dialed(state, mem(c), 0)
    assert.strictEqual(letters(out.state.evict), "d")
  })

  it("a connected upgrade evicts nobody once the node is no longer full (54)", () => {
    let state = stateWith({ maxConnected: 2, maxConnectedUpgrade: 1, peerScores: { [a]: 1, [b]: 2, [c]: 3 } })
    state = dispense(withAddresses(connectOut(connectOut(state, a), b), [mem(c)]), mem(c))
    const out = Dialing.dialed(Connections.disconnected(state, b, 0).state, mem(c), 0)
    assert.deepStrictEqual([out.state.evict.size, out.wakeEvict], [0, false])
    assert.isUndefined(Connections.tryEvictNext(out.state, 0).value)
  })
})

describe("Dialing.nextWakeAt", () => {
  it("is undefined when no candidate is frozen", () => {
    assert.isUndefined(Dialing.nextWakeAt(withAddresses(stateWith(), [mem(a)]), 0))
    assert.isUndefined(Dialing.nextWakeAt(stateWith(), 0))
  })

  it("is the earliest retry time of a frozen address", () => {
    let state = withAddresses(stateWith({ minRetryTime: 100 }), [mem(a), mem(b)])
    state = Dialing.dialFailed(dispense(state, mem(a)), mem(a), 0, 0).state // due at 100
    state = Dialing.dialFailed(dispense(state, mem(b)), mem(b), 50, 0).state // due at 150
    assert.strictEqual(Dialing.nextWakeAt(state, 10), 100)
    assert.strictEqual(Dialing.nextWakeAt(state, 100), 150)
  })

  it("is the end of a disconnect cooldown, or the later retry time of that peer", () => {
    const state = Connections.disconnected(connectOut(stateWith({ disconnectCooldownPeriod: 1000, minConnectionDuration: 10_000, minRetryTime: 5000 }), a), a, 200, 0).state
    assert.strictEqual(Dialing.nextWakeAt(state, 300), 5200, "the short connection counts as a failure: 200 + 5000 beats the cooldown's 1200")
    const cooldownOnly = Connections.disconnected(connectOut(stateWith({ disconnectCooldownPeriod: 1000 }), a), a, 200).state
    assert.strictEqual(Dialing.nextWakeAt(cooldownOnly, 300), 1200)
  })

  it("ignores peers dialing, connected or inactive, and addresses never retried", () => {
    const failed = PeerRecord.empty(a, { addresses: [{ ...PeerRecord.addressInfo(mem(a)), dialFailures: 1, lastDialFailure: 0 }] })
    const state = Peers.load(stateWith({ minRetryTime: 100 }), [failed]).state
    assert.strictEqual(Dialing.nextWakeAt(state, 10), 100)
    assert.isUndefined(Dialing.nextWakeAt({ ...state, dialing: new Set([a]) }, 10))
    assert.isUndefined(Dialing.nextWakeAt({ ...state, connected: new Map([[a, "incoming"]]) }, 10))
    assert.isUndefined(Dialing.nextWakeAt(Connections.inactivate(state, a).state, 10))
    assert.isUndefined(Dialing.nextWakeAt(Peers.load(stateWith(), [failed]).state, 10), "retries off: never due")
  })
})

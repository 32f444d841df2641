/**
 * PeerManager: add, dialing and admitting connections (docs/ARCHITECTURE.md#lifecycle–§8.5, scenarios 27–60) through
 * the effectful shell: dialNext waking and blocking under TestClock, retry timers, the jitter drawn
 * from `Random`, typed errors, and a few end-to-end scenarios. The decision rules themselves (dial
 * order, limits, upgrades, refusals, pruning) are tested as plain functions in
 * test/domain/peermanager/, with our deliberate differences from the Go original (exponential
 * backoff, in-flight dials counting toward maxOutgoingConnections, inactive peers not dialed, `add`
 * returning false when pruned).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Random } from "effect"
import { TestClock } from "effect/testing"
import * as NodeAddress from "../../src/domain/NodeAddress.ts"
import type * as NodeId from "../../src/domain/NodeId.ts"
import { a, b, c, d, e, isBlocked, makePM, mem, result, self, tcp, type Manager } from "./PeerManager.fixtures.ts"

/** `tryDialNext` must dispense exactly `expected`. */
const dispenses = (pm: Manager, expected: NodeAddress.NodeAddress) =>
  Effect.map(pm.tryDialNext, (got) => {
    assert.isDefined(got, `expected ${NodeAddress.format(expected)} to be dispensed, got nothing`)
    assert.isTrue(got !== undefined && NodeAddress.format(got) === NodeAddress.format(expected), `expected ${NodeAddress.format(expected)}, got ${got && NodeAddress.format(got)}`)
  })

const dispensesNothing = (pm: Manager) =>
  Effect.map(pm.tryDialNext, (got) => assert.isUndefined(got, `expected nothing, got ${got && NodeAddress.format(got)}`))

/** Adds `memory:<id>` (must be new), dispenses it and reports the dial as successful. */
const dialIn = (pm: Manager, id: NodeId.NodeId) =>
  Effect.gen(function* () {
    assert.isTrue(yield* pm.add(mem(id)))
    yield* dispenses(pm, mem(id))
    yield* pm.dialed(mem(id))
  })

/** The `reason` of a `ConnectionRejected` failure. */
const rejection = <A, E extends { readonly _tag: string }>(effect: Effect.Effect<A, E>) =>
  Effect.map(Effect.flip(effect), (err) => {
    assert.strictEqual(err._tag, "ConnectionRejected")
    return (err as unknown as { readonly reason: string }).reason
  })

/** Forks `dialNext`. */
const forkDialNext = (pm: Manager) => Effect.forkChild(pm.dialNext)

describe("PeerManager.add", () => {
  it.effect("29. an invalid address or our own fails with InvalidPeerAddress", () =>
    Effect.gen(function* () {
      const pm = yield* makePM()
      const invalid = [
        NodeAddress.make({ path: "foo" }),
        NodeAddress.make({ protocol: "memory" }),
        NodeAddress.make({ protocol: "memory", nodeId: "xyz" }),
        NodeAddress.make({ protocol: "tcp", nodeId: a, port: 80 }),
        mem(self),
        tcp(self)
      ]
      for (const address of invalid) {
        const err = yield* Effect.flip(pm.add(address))
        assert.strictEqual(err._tag, "InvalidPeerAddress")
        assert.strictEqual(err._tag === "InvalidPeerAddress" && err.address, NodeAddress.format(address))
      }
      assert.deepStrictEqual(yield* pm.peers, [])
    }))
})

describe("PeerManager.dialNext / tryDialNext", () => {
  it.effect("31. dialNext returns an added peer, then waits while nothing is dialable", () =>
    Effect.gen(function* () {
      const pm = yield* makePM()
      yield* pm.add(mem(a))
      assert.deepStrictEqual(yield* pm.dialNext, mem(a))
      const waiting = yield* Effect.forkChild(Effect.timeout(pm.dialNext, "100 millis"))
      yield* TestClock.adjust("100 millis")
      const err = yield* Effect.flip(Fiber.join(waiting))
      assert.strictEqual(err._tag, "TimeoutError")
    }))

  it.effect("32. dialNext waits until the retry backoff has elapsed: 100, 200, 400 ms, then the 500 ms cap", () =>
    Effect.gen(function* () {
      const pm = yield* makePM({ minRetryTime: 100, maxRetryTime: 500 })
      yield* pm.add(mem(a))
      assert.deepStrictEqual(yield* pm.dialNext, mem(a))
      for (const delay of [100, 200, 400, 500, 500, 500]) {
        yield* pm.dialFailed(mem(a))
        const waiting = yield* forkDialNext(pm)
        yield* TestClock.adjust(delay - 1)
        assert.isTrue(yield* isBlocked(waiting), `still backing off ${delay - 1} ms into a ${delay} ms delay`)
        yield* TestClock.adjust(1)
        assert.deepStrictEqual(yield* result(waiting), mem(a))
      }
    }))

  it.effect("jitter is sampled once per failure and stays within [delay, delay + retryTimeJitter)", () =>
    Effect.gen(function* () {
      for (const seed of ["one", "two", "three"]) {
        const pm = yield* makePM({ minRetryTime: 100, retryTimeJitter: 1000 })
        yield* pm.add(mem(a))
        yield* pm.tryDialNext
        yield* pm.dialFailed(mem(a)).pipe(Random.withSeed(seed))
        const jitter = yield* Random.next.pipe(Random.withSeed(seed))
        const due = 100 + jitter * 1000
        const waiting = yield* forkDialNext(pm)
        yield* TestClock.adjust(Math.ceil(due) - 1)
        // Re-evaluating the delay does not re-sample it: still not dialable just before it is due.
        yield* pm.tryDialNext
        assert.isTrue(yield* isBlocked(waiting))
        yield* TestClock.adjust(1)
        assert.deepStrictEqual(yield* result(waiting), mem(a))
        yield* TestClock.adjust("2 seconds") // so the next manager starts at a fresh time
      }
    }))

  it.effect("persistent peers are retried with a 1 s floor when retries are disabled, growing exponentially", () =>
    Effect.gen(function* () {
      const pm = yield* makePM({ persistentPeers: [a] })
      yield* pm.add(mem(a))
      yield* pm.add(mem(b))
      yield* dispenses(pm, mem(a))
      yield* dispenses(pm, mem(b))
      yield* pm.dialFailed(mem(b)) // never retried: not persistent, minRetryTime 0
      for (const delay of [1000, 2000, 4000]) {
        yield* pm.dialFailed(mem(a))
        assert.strictEqual((yield* pm.scores).get(a), 32767)
        const waiting = yield* forkDialNext(pm)
        yield* TestClock.adjust(delay - 1)
        assert.isTrue(yield* isBlocked(waiting))
        yield* TestClock.adjust(1)
        assert.deepStrictEqual(yield* result(waiting), mem(a))
      }
      yield* pm.dialFailed(mem(a))
      yield* TestClock.adjust("1 hour")
      yield* dispenses(pm, mem(a))
      yield* dispensesNothing(pm) // b stays frozen for good
    }))

  it.effect("33. adding a peer wakes a waiting dialNext", () =>
    Effect.gen(function* () {
      const pm = yield* makePM()
      const waiting = yield* forkDialNext(pm)
      yield* TestClock.adjust("200 millis")
      assert.isTrue(yield* isBlocked(waiting))
      yield* pm.add(mem(a))
      assert.deepStrictEqual(yield* result(waiting), mem(a))
    }))

  it.effect("34. a failed dial frees its slot: a waiting dialNext gets the next peer, the failed one is not retried", () =>
    Effect.gen(function* () {
      const pm = yield* makePM({ maxConnected: 1 })
      yield* pm.add(mem(a))
      yield* dispenses(pm, mem(a))
      yield* pm.add(mem(b))
      yield* dispensesNothing(pm)
      const waiting = yield* forkDialNext(pm)
      yield* TestClock.adjust("200 millis")
      assert.isTrue(yield* isBlocked(waiting))
      yield* pm.dialFailed(mem(a))
      assert.deepStrictEqual(yield* result(waiting), mem(b))
      yield* pm.dialFailed(mem(b))
      yield* TestClock.adjust("1 hour")
      yield* dispensesNothing(pm)
    }))

  it.effect("35. after a failure the retry timer wakes dialNext once minRetryTime has passed", () =>
    Effect.gen(function* () {
      const pm = yield* makePM({ minRetryTime: 200 })
      yield* pm.add(mem(a))
      yield* dispenses(pm, mem(a))
      yield* pm.dialFailed(mem(a))
      const waiting = yield* forkDialNext(pm)
      yield* TestClock.adjust("199 millis")
      assert.isTrue(yield* isBlocked(waiting))
      yield* TestClock.adjust("1 millis")
      assert.deepStrictEqual(yield* result(waiting), mem(a))
    }))

  it.effect("36. a disconnection wakes a waiting dialNext (cooldown 0)", () =>
    Effect.gen(function* () {
      const pm = yield* makePM()
      yield* pm.add(mem(a))
      yield* pm.accepted(a)
      yield* dispensesNothing(pm)
      const waiting = yield* forkDialNext(pm)
      yield* TestClock.adjust("200 millis")
      assert.isTrue(yield* isBlocked(waiting))
      yield* pm.disconnected(a)
      assert.deepStrictEqual(yield* result(waiting), mem(a))
    }))

  it.effect("38. upgrade slots: only better peers are dialed once full, and only one per reservation", () =>
    Effect.gen(function* () {
      const pm = yield* makePM({
        peerScores: { [a]: 0, [b]: 1, [c]: 2, [d]: 3, [e]: 0 },
        persistentPeers: [c, d],
        maxConnected: 2,
        maxConnectedUpgrade: 1
      })
      yield* dialIn(pm, a)
      yield* pm.add(mem(b))
      yield* dispenses(pm, mem(b)) // in flight
      yield* pm.add(mem(c))
      yield* dispenses(pm, mem(c)) // the third (upgrade) slot
      yield* pm.add(mem(d))
      yield* dispensesNothing(pm) // connected + dialing = 3 = maxConnected + maxConnectedUpgrade
      yield* pm.dialed(mem(c))
      yield* dispensesNothing(pm)
      assert.strictEqual(yield* rejection(pm.dialed(mem(d))), "full") // d reserved nothing
      yield* pm.disconnected(a)
      yield* pm.dialed(mem(d))
      yield* pm.disconnected(b) // b was never connected: its dial is still in flight
      yield* pm.add(mem(e))
      yield* dispensesNothing(pm)
      yield* pm.dialFailed(mem(b))
      // Full with c and d, neither scoring lower than e: no upgrade candidate.
      yield* dispensesNothing(pm)
      assert.deepStrictEqual(yield* pm.tryEvictNext, undefined)
    }))

  it.effect("44. a disconnected peer is not dialed during the cooldown; the cooldown end wakes dialNext", () =>
    Effect.gen(function* () {
      const pm = yield* makePM({ disconnectCooldownPeriod: "1 second" })
      yield* dialIn(pm, a)
      yield* pm.disconnected(a)
      yield* dispensesNothing(pm)
      const waiting = yield* forkDialNext(pm)
      yield* TestClock.adjust("999 millis")
      assert.isTrue(yield* isBlocked(waiting))
      yield* TestClock.adjust("1 millis")
      assert.deepStrictEqual(yield* result(waiting), mem(a))
    }))
})

describe("PeerManager.dialFailed / dialed / accepted", () => {
  it.effect("48. our own address cannot be added, dialed or accepted", () =>
    Effect.gen(function* () {
      const pm = yield* makePM()
      assert.strictEqual((yield* Effect.flip(pm.add(mem(self))))._tag, "InvalidPeerAddress")
      assert.strictEqual(yield* rejection(pm.dialed(mem(self))), "self")
      assert.strictEqual(yield* rejection(pm.accepted(self)), "self")
      assert.deepStrictEqual(yield* pm.peers, [])
    }))

  it.effect("50. an upgrade dial is admitted beyond maxConnected; a dial without a reservation is not", () =>
    Effect.gen(function* () {
      const pm = yield* makePM({ maxConnected: 2, maxConnectedUpgrade: 1, peerScores: { [c]: 1, [d]: 1 } })
      yield* pm.add(mem(a))
      yield* pm.dialed(mem(a))
      yield* pm.add(mem(b))
      yield* pm.dialed(mem(b))
      yield* pm.add(mem(c))
      yield* dispenses(pm, mem(c))
      yield* pm.dialed(mem(c))
      yield* pm.add(mem(d))
      assert.strictEqual(yield* rejection(pm.dialed(mem(d))), "full")
      assert.strictEqual(yield* pm.tryEvictNext, b) // the worst connected peer was claimed
    }))

  it.effect("55. accepted: self and duplicates are rejected; unknown peers are registered without addresses", () =>
    Effect.gen(function* () {
      const pm = yield* makePM()
      assert.strictEqual(yield* rejection(pm.accepted(self)), "self")
      yield* pm.add(mem(a))
      yield* pm.accepted(a)
      assert.strictEqual(yield* rejection(pm.accepted(a)), "already_connected")
      yield* pm.accepted(b)
      assert.deepStrictEqual((yield* pm.peers).map((p) => [p.nodeId, p.addresses.length]), [[a, 1], [b, 0]])
      yield* pm.add(mem(c))
      yield* dispenses(pm, mem(c))
      yield* pm.accepted(c)
      assert.strictEqual(yield* rejection(pm.dialed(mem(c))), "already_connected")
      yield* pm.add(mem(d))
      yield* dispenses(pm, mem(d))
      yield* pm.dialed(mem(d))
      assert.strictEqual(yield* rejection(pm.accepted(d)), "already_connected")
      const directions = Object.fromEntries((yield* pm.peers).map((p) => [p.nodeId.slice(0, 1), p.direction]))
      assert.deepStrictEqual(directions, { a: "incoming", b: "incoming", c: "incoming", d: "outgoing" })
    }))

  it.effect("58. an accepted upgrade claims the worst peer; later ones need a strictly lower peer", () =>
    Effect.gen(function* () {
      const pm = yield* makePM({ maxConnected: 1, maxConnectedUpgrade: 2, peerScores: { [b]: 1, [c]: 1 } })
      yield* pm.accepted(a)
      yield* pm.accepted(b)
      assert.strictEqual(yield* rejection(pm.accepted(c)), "full")
      assert.strictEqual(yield* pm.tryEvictNext, a)
      yield* pm.disconnected(a)
      assert.strictEqual(yield* rejection(pm.accepted(c)), "full")
    }))

  it.effect("60. an inbound connection forgives past dial failures: score restored, no retry delay after the cooldown", () =>
    Effect.gen(function* () {
      const pm = yield* makePM({ minRetryTime: "10 seconds", disconnectCooldownPeriod: 500 })
      yield* pm.add(mem(a))
      yield* dispenses(pm, mem(a))
      yield* pm.dialFailed(mem(a))
      assert.strictEqual((yield* pm.scores).get(a), -1)
      yield* pm.accepted(a)
      assert.strictEqual((yield* pm.scores).get(a), 0)
      yield* pm.disconnected(a)
      const waiting = yield* forkDialNext(pm)
      yield* TestClock.adjust(499)
      assert.isTrue(yield* isBlocked(waiting))
      yield* TestClock.adjust(1)
      assert.deepStrictEqual(yield* result(waiting), mem(a))
    }))
})

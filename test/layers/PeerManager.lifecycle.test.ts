/**
 * PeerManager: ready, eviction, disconnection, errors, subscriptions, advertising and scoring
 * (docs/ARCHITECTURE.md#lifecycle–§8.7, scenarios 61–82), and shutdown, through the effectful shell: what subscribers
 * see, evictNext waking, the `Random` behind advertise, what reaches the store. The decisions alone
 * (eviction order, errored, report, advertise) are tested as plain functions in
 * test/domain/peermanager/.
 */
import { assert, describe, it } from "@effect/vitest"
import { fromBinary } from "@bufbuild/protobuf"
import { Effect, Exit, Fiber, Random, Result, Scope, Stream } from "effect"
import { TestClock } from "effect/testing"
import * as NodeAddress from "../../src/domain/NodeAddress.ts"
import type * as NodeId from "../../src/domain/NodeId.ts"
import * as PeerRecord from "../../src/domain/PeerRecord.ts"
import * as PeerManagerLayer from "../../src/layers/PeerManager.ts"
import { PeerInfoSchema } from "../../src/proto/tendermint/p2p/peerstore_pb.ts"
import * as PeerStoreMemory from "../../src/layers/PeerStoreMemory.ts"
import { zero, type OptionsInput } from "../../src/services/PeerManager.ts"
import { PeerStore } from "../../src/services/PeerStore.ts"
import { a, b, c, d, finished, isBlocked, makePM, mem, nodeId, record, result, self, tcp, yieldToFibers, type Manager } from "./PeerManager.fixtures.ts"

/** Connects `id` inbound and marks it ready. */
const up = (pm: Manager, id: NodeId.NodeId, channels: Iterable<number> = [1]) =>
  Effect.andThen(pm.accepted(id), pm.ready(id, channels))

/** Runs `effect` forked, advances the test clock by `ms`, and returns its exit. */
const withTimeout = <A, E>(effect: Effect.Effect<A, E>, ms: number) =>
  Effect.gen(function* () {
    const fiber = yield* Effect.forkChild(Effect.timeout(effect, ms))
    yield* TestClock.adjust(ms)
    return yield* Fiber.await(fiber)
  })

const timedOut = <A, E>(exit: Exit.Exit<A, E>) => Exit.isFailure(exit) && String(exit.cause).includes("TimeoutError")

/** A manager over a store pre-filled with `records`; the rows map is returned to inspect what was written. */
const withRecords = (records: ReadonlyArray<PeerRecord.PeerRecord>, options: OptionsInput = {}) =>
  Effect.gen(function* () {
    const rows = new Map(records.map((r) => [r.id as string, PeerRecord.encode(r)]))
    const pm = yield* PeerManagerLayer.make(self, { ...zero, ...options }).pipe(Effect.provideServiceEffect(PeerStore, PeerStoreMemory.makeMemory(rows)))
    const stored = (id: NodeId.NodeId) => Result.getOrThrow(PeerRecord.decode(rows.get(id)!))
    return { pm, rows, stored }
  })

describe("PeerManager ready / evict / disconnect / errored", () => {
  it.effect("61. ready publishes up for a connected peer only", () =>
    Effect.gen(function* () {
      const pm = yield* makePM()
      const rec = yield* record(pm)
      yield* pm.accepted(a)
      assert.strictEqual(yield* pm.status(a), "down")
      assert.strictEqual((yield* pm.peers)[0]!.state, "connected")
      yield* pm.ready(a, [1])
      assert.strictEqual(yield* pm.status(a), "up")
      assert.strictEqual((yield* pm.peers)[0]!.state, "ready")
      yield* pm.ready(b, [1])
      assert.strictEqual(yield* pm.status(b), "down")
      yield* yieldToFibers
      assert.deepStrictEqual(rec.seen(), ["up:a"])
    }))

  it.effect("ready on a peer that is already ready publishes nothing more", () =>
    Effect.gen(function* () {
      const pm = yield* makePM()
      const rec = yield* record(pm)
      yield* up(pm, a)
      yield* pm.ready(a, [2])
      yield* pm.disconnected(a)
      yield* yieldToFibers
      assert.deepStrictEqual(rec.seen(), ["up:a", "down:a"])
    }))

  it.effect("62. the up update carries the peer's channels", () =>
    Effect.gen(function* () {
      const pm = yield* makePM()
      const rec = yield* record(pm)
      yield* up(pm, a, [42])
      yield* yieldToFibers
      assert.isTrue(rec.updates[0]!.channels.has(42))
      assert.isFalse(rec.updates[0]!.channels.has(48))
    }))

  it.effect("63. evictNext waits while nothing is marked, returns a peer that errored fatally, then waits again", () =>
    Effect.gen(function* () {
      const pm = yield* makePM()
      yield* up(pm, a)
      assert.isTrue(timedOut(yield* withTimeout(pm.evictNext, 100)))
      yield* pm.errored(a, true)
      assert.strictEqual(yield* pm.evictNext, a)
      assert.isTrue(timedOut(yield* withTimeout(pm.evictNext, 100)))
    }))

  it.effect("64. a fatal error wakes a waiting evictNext", () =>
    Effect.gen(function* () {
      const pm = yield* makePM()
      yield* up(pm, a)
      const waiting = yield* Effect.forkChild(pm.evictNext)
      yield* TestClock.adjust("200 millis")
      assert.isTrue(yield* isBlocked(waiting))
      yield* pm.errored(a, true)
      assert.strictEqual(yield* result(waiting), a)
    }))

  it.effect("65. a connected outbound upgrade wakes a waiting evictNext with the claimed peer", () =>
    Effect.gen(function* () {
      const pm = yield* makePM({ maxConnected: 1, maxConnectedUpgrade: 1, peerScores: { [b]: 1 } })
      yield* pm.add(mem(a))
      yield* pm.dialed(mem(a))
      yield* pm.ready(a, [1])
      const waiting = yield* Effect.forkChild(pm.evictNext)
      yield* TestClock.adjust("200 millis")
      assert.isTrue(yield* isBlocked(waiting))
      yield* pm.add(mem(b))
      assert.deepStrictEqual(yield* pm.tryDialNext, mem(b))
      yield* pm.dialed(mem(b))
      assert.strictEqual(yield* result(waiting), a)
    }))

  it.effect("66. an accepted upgrade wakes a waiting evictNext with the claimed peer", () =>
    Effect.gen(function* () {
      const pm = yield* makePM({ maxConnected: 1, maxConnectedUpgrade: 1, peerScores: { [b]: 1 } })
      yield* up(pm, a)
      const waiting = yield* Effect.forkChild(pm.evictNext)
      yield* TestClock.adjust("200 millis")
      assert.isTrue(yield* isBlocked(waiting))
      yield* pm.accepted(b)
      assert.strictEqual(yield* result(waiting), a)
    }))

  it.effect("68. disconnected: nothing for unknown peers, down only after up, and a pending dial keeps its slot", () =>
    Effect.gen(function* () {
      const pm = yield* makePM()
      const rec = yield* record(pm)
      yield* pm.disconnected(a)
      assert.deepStrictEqual(yield* pm.peers, [])
      yield* pm.accepted(a)
      yield* pm.disconnected(a)
      yield* yieldToFibers
      assert.deepStrictEqual(rec.seen(), [])
      yield* up(pm, a)
      yield* pm.disconnected(a)
      assert.strictEqual(yield* pm.status(a), "down")
      yield* yieldToFibers
      assert.deepStrictEqual(rec.seen(), ["up:a", "down:a"])
      yield* pm.add(mem(a))
      assert.deepStrictEqual(yield* pm.tryDialNext, mem(a))
      yield* pm.disconnected(a)
      assert.isUndefined(yield* pm.tryDialNext)
      assert.strictEqual((yield* pm.peers)[0]!.state, "dialing")
    }))
})

describe("PeerManager subscriptions", () => {
  it.effect("70. only ready and disconnected publish: up then down, inbound and outbound", () =>
    Effect.gen(function* () {
      const pm = yield* makePM()
      const rec = yield* record(pm)
      yield* pm.add(mem(a))
      yield* pm.accepted(a)
      yield* pm.errored(a, false)
      yield* pm.ready(a, [1])
      yield* pm.disconnected(a)
      yield* yieldToFibers
      assert.deepStrictEqual(rec.seen(), ["up:a", "down:a"])
      yield* pm.add(mem(b))
      assert.deepStrictEqual(yield* pm.tryDialNext, mem(b))
      yield* pm.dialed(mem(b))
      yield* pm.ready(b, [1])
      yield* pm.errored(b, true)
      assert.strictEqual(yield* pm.tryEvictNext, b)
      yield* pm.disconnected(b)
      yield* pm.add(mem(c))
      yield* pm.tryDialNext
      yield* pm.dialFailed(mem(c))
      yield* pm.report(c, "good")
      yield* yieldToFibers
      assert.deepStrictEqual(rec.seen(), ["up:a", "down:a", "up:b", "down:b"])
    }))

  it.effect("71. closing a subscription's scope stops delivery to it and ends its stream", () =>
    Effect.gen(function* () {
      const pm = yield* makePM()
      const scope = yield* Scope.make()
      const rec = yield* record(pm).pipe(Scope.provide(scope))
      yield* up(pm, a)
      yield* yieldToFibers
      yield* Scope.close(scope, Exit.void)
      yield* pm.disconnected(a)
      yield* yieldToFibers
      assert.deepStrictEqual(rec.seen(), ["up:a"])
      assert.isTrue(Exit.isSuccess(yield* finished(rec.fiber)), "the stream ended normally")
    }))

  it.effect("72. every subscriber gets each update; a closed one stops while the others continue", () =>
    Effect.gen(function* () {
      const pm = yield* makePM()
      const s1 = yield* record(pm)
      const scope2 = yield* Scope.make()
      const s2 = yield* record(pm).pipe(Scope.provide(scope2))
      const s3 = yield* record(pm)
      yield* up(pm, a)
      yield* yieldToFibers
      yield* Scope.close(scope2, Exit.void)
      yield* pm.disconnected(a)
      yield* yieldToFibers
      assert.deepStrictEqual(s1.seen(), ["up:a", "down:a"])
      assert.deepStrictEqual(s2.seen(), ["up:a"])
      assert.deepStrictEqual(s3.seen(), ["up:a", "down:a"])
      yield* finished(s2.fiber)
      assert.isTrue(yield* isBlocked(s1.fiber))
      assert.isTrue(yield* isBlocked(s3.fiber))
    }))

  it.effect("a subscriber that falls behind gets SubscriberLagged after its buffered updates; others are unaffected", () =>
    Effect.gen(function* () {
      const pm = yield* makePM({ subscriberBufferSize: 2 })
      const fast = yield* record(pm)
      const slow = yield* pm.subscribe // never read until the end
      yield* up(pm, a)
      yield* yieldToFibers
      yield* pm.disconnected(a)
      yield* yieldToFibers
      yield* up(pm, b) // the third update overflows the slow subscriber's buffer of 2
      yield* yieldToFibers
      yield* pm.disconnected(b)
      yield* yieldToFibers
      assert.deepStrictEqual(fast.seen(), ["up:a", "down:a", "up:b", "down:b"])
      const seen: Array<string> = []
      const exit = yield* Effect.exit(Stream.runForEach(slow, (u) => Effect.sync(() => void seen.push(`${u.status}:${u.nodeId[0]}`))))
      assert.deepStrictEqual(seen, ["up:a", "down:a"])
      assert.isTrue(Exit.isFailure(exit))
      const err = Exit.isFailure(exit) ? exit.cause.reasons.find((r) => r._tag === "Fail") : undefined
      assert.strictEqual(err?._tag === "Fail" ? err.error._tag : undefined, "SubscriberLagged")
      assert.strictEqual(err?._tag === "Fail" ? err.error.capacity : undefined, 2)
      // the fast subscriber keeps receiving
      yield* up(pm, c)
      yield* yieldToFibers
      assert.deepStrictEqual(fast.seen().slice(-1), ["up:c"])
    }))

  it.effect("updates of many peers keep each peer's up/down order within the buffer", () =>
    Effect.gen(function* () {
      const pm = yield* makePM({ subscriberBufferSize: 64 })
      const rec = yield* record(pm)
      const ids = [a, b, c, d]
      for (const id of ids) yield* up(pm, id)
      for (const id of ids) yield* pm.disconnected(id)
      for (const id of ids) yield* up(pm, id)
      yield* yieldToFibers
      for (const id of ids) {
        assert.deepStrictEqual(rec.updates.filter((u) => u.nodeId === id).map((u) => u.status), ["up", "down", "up"])
      }
    }))
})

describe("PeerManager shutdown", () => {
  it.effect("73. closing the manager's scope interrupts blocked dialNext/evictNext and ends subscriptions", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const pm = yield* makePM({ minRetryTime: "10 seconds" }).pipe(Scope.provide(scope))
      const rec = yield* record(pm).pipe(Scope.provide(scope))
      const unscoped = yield* pm.subscribe.pipe(Scope.provide(scope))
      const unscopedFiber = yield* Effect.forkChild(Stream.runDrain(unscoped))
      yield* pm.add(mem(a))
      yield* pm.tryDialNext
      yield* pm.dialFailed(mem(a)) // a retry is due in 10 s
      const dialing = yield* Effect.forkChild(pm.dialNext)
      const evicting = yield* Effect.forkChild(pm.evictNext)
      assert.isTrue(yield* isBlocked(dialing))
      assert.isTrue(yield* isBlocked(evicting))
      yield* Scope.close(scope, Exit.void)
      for (const waiter of [dialing, evicting] as const) {
        const exit = yield* finished(waiter as Fiber.Fiber<unknown>)
        assert.isTrue(Exit.hasInterrupts(exit), "a blocked waiter is interrupted")
      }
      assert.isTrue(Exit.isSuccess(yield* finished(rec.fiber)), "a subscription stream ends")
      assert.isTrue(Exit.isSuccess(yield* finished(unscopedFiber)), "a subscription stream ends")
      // Later calls do not block either, even once the retry deadline has passed.
      yield* TestClock.adjust("10 seconds")
      for (const late of [pm.dialNext, pm.evictNext] as ReadonlyArray<Effect.Effect<unknown>>) {
        assert.isTrue(Exit.hasInterrupts(yield* finished(yield* Effect.forkChild(late))))
      }
      const afterClose = yield* Effect.scoped(Effect.flatMap(pm.subscribe, Stream.runCollect))
      assert.deepStrictEqual(afterClose, [])
    }))
})

describe("PeerManager advertise", () => {
  const setup = Effect.gen(function* () {
    const pm = yield* makePM({ peerScores: { [a]: 3, [b]: 2, [c]: 1 } })
    for (const id of [a, b, c, d]) {
      yield* pm.add(tcp(id))
      yield* pm.add(mem(id))
    }
    return pm
  })

  it.effect("74. a limit of 2 of 6 gives exactly 2 distinct addresses, favouring better peers (c in at most 20 of 100)", () =>
    Effect.gen(function* () {
      const pm = yield* setup
      for (const seed of ["p2p", "advertise", "seed-3"]) {
        let cCount = 0
        for (let i = 0; i < 100; i++) {
          const got = yield* pm.advertise(d, 2).pipe(Random.withSeed(`${seed}-${i}`))
          assert.strictEqual(got.length, 2)
          assert.strictEqual(new Set(got.map(NodeAddress.format)).size, 2)
          assert.isFalse(got.some((x) => x.nodeId === d))
          if (got.some((x) => x.nodeId === c)) cCount++
        }
        assert.isAtMost(cCount, 20, `seed ${seed}`)
      }
    }))
})

describe("PeerManager scoring", () => {
  it.effect("reports re-rank peers at once, and the mutable score is stored", () =>
    Effect.gen(function* () {
      const { pm, stored } = yield* withRecords([PeerRecord.empty(a, { addresses: [PeerRecord.addressInfo(mem(a))] }), PeerRecord.empty(b, { addresses: [PeerRecord.addressInfo(mem(b))] })])
      assert.deepStrictEqual((yield* pm.peers).map((p) => p.nodeId), [a, b])
      yield* pm.report(b, "good")
      assert.deepStrictEqual((yield* pm.peers).map((p) => p.nodeId), [b, a])
      assert.deepStrictEqual(yield* pm.tryDialNext, mem(b))
      assert.strictEqual(stored(b).mutableScore, 1)
    }))

  it.effect("79. ranking follows the score across signs and magnitudes; ties rank by node ID", () =>
    Effect.gen(function* () {
      for (const [hi, lo] of [[100, -100], [0, -100], [300, 256]] as const) {
        // the higher score on the ID that would otherwise sort last
        const { pm } = yield* withRecords([PeerRecord.empty(a, { mutableScore: lo }), PeerRecord.empty(b, { mutableScore: hi })])
        assert.deepStrictEqual((yield* pm.peers).map((p) => [p.nodeId, p.score]), [[b, hi], [a, lo]])
      }
      const { pm } = yield* withRecords([c, a, b].map((id) => PeerRecord.empty(id, { mutableScore: 7 })))
      assert.deepStrictEqual((yield* pm.peers).map((p) => p.nodeId), [a, b, c])
    }))

  it("80. lastDialed: the latest dial, a tie counting as success", () => {
    const at = (success: number | undefined, failure: number | undefined) =>
      PeerRecord.lastDialed(PeerRecord.empty(a, { addresses: [{ ...PeerRecord.addressInfo(mem(a)), lastDialSuccess: success, lastDialFailure: failure }] }))
    assert.deepStrictEqual(PeerRecord.lastDialed(PeerRecord.empty(a)), { time: undefined, success: false })
    assert.deepStrictEqual(at(undefined, undefined), { time: undefined, success: false })
    assert.deepStrictEqual(at(2000, 1000), { time: 2000, success: true })
    assert.deepStrictEqual(at(1000, 1000), { time: 1000, success: true })
    assert.deepStrictEqual(at(1000, 2000), { time: 2000, success: false })
    // across addresses
    const two = PeerRecord.empty(a, {
      addresses: [
        { ...PeerRecord.addressInfo(mem(a)), lastDialSuccess: 1000 },
        { ...PeerRecord.addressInfo(tcp(a)), lastDialFailure: 1500 }
      ]
    })
    assert.deepStrictEqual(PeerRecord.lastDialed(two), { time: 1500, success: false })
  })

  it.effect("82. the mutable score saturates at the int16 bounds; a non-persistent score stops at 32766", () =>
    Effect.gen(function* () {
      const { pm, rows } = yield* withRecords([PeerRecord.empty(a, { mutableScore: 32_764 }), PeerRecord.empty(b, { mutableScore: -32_765 })], { persistentPeers: [c] })
      // The stored field itself (PeerRecord.decode clamps it to the non-persistent maximum on load).
      const rawScore = (id: NodeId.NodeId) => Number(fromBinary(PeerInfoSchema, rows.get(id)!).mutableScore)
      for (let i = 0; i < 5; i++) {
        yield* pm.report(a, "good")
        yield* pm.report(b, "bad")
      }
      assert.strictEqual(rawScore(a), 32_767)
      assert.strictEqual(rawScore(b), -32_768)
      yield* pm.add(mem(c))
      assert.deepStrictEqual(Object.fromEntries(yield* pm.scores), { [c]: 32_767, [a]: 32_766, [b]: -32_768 })
      // saturated, not wrapped: one step back moves one step
      yield* pm.report(a, "bad")
      yield* pm.report(b, "good")
      assert.strictEqual(rawScore(a), 32_766)
      assert.strictEqual(rawScore(b), -32_767)
      assert.deepStrictEqual((yield* pm.peers).map((p) => p.nodeId), [c, a, b])
      // In memory the mutable score reached 32767: with one dial failure the score is 32766.
      yield* pm.report(a, "good")
      yield* pm.add(mem(a))
      assert.deepStrictEqual(yield* pm.tryDialNext, mem(c))
      assert.deepStrictEqual(yield* pm.tryDialNext, mem(a))
      yield* pm.dialFailed(mem(a))
      assert.strictEqual((yield* pm.scores).get(a), 32_766)
      assert.strictEqual(rawScore(a), 32_767)
    }))

  it.effect("82. 32768 bad reports from zero leave the score at -32768", () =>
    Effect.gen(function* () {
      const { pm, stored } = yield* withRecords([PeerRecord.empty(a)])
      for (let i = 0; i < 32_770; i++) yield* pm.report(a, "bad")
      assert.strictEqual(stored(a).mutableScore, -32_768)
      assert.strictEqual((yield* pm.scores).get(a), -32_768)
    }))

  it.effect("dial failures lower the score below the mutable score, saturating at -32768", () =>
    Effect.gen(function* () {
      const { pm } = yield* withRecords([PeerRecord.empty(a, { mutableScore: -32_768, addresses: [{ ...PeerRecord.addressInfo(mem(a)), dialFailures: 3, lastDialFailure: 0 }] })])
      assert.strictEqual((yield* pm.scores).get(a), -32_768)
    }))

  it.effect("persistent peers outrank any other peer; fixed scores override both", () =>
    Effect.gen(function* () {
      const e = nodeId("e")
      const { pm } = yield* withRecords([PeerRecord.empty(a, { mutableScore: 32_767 })], { persistentPeers: [b, e], peerScores: { [e]: 5, [c]: 40 } })
      for (const id of [b, c, e]) yield* pm.add(mem(id))
      assert.deepStrictEqual((yield* pm.peers).map((p) => [p.nodeId, p.score, p.persistent]), [
        [b, 32_767, true],
        [a, 32_766, false],
        [c, 40, false],
        [e, 5, true]
      ])
    }))
})

/**
 * The simulated links of the memory network (docs/SIMULATION.md), at the transport level: two
 * `MemoryTransport`s on one `MemoryNetwork`, one connection between them, and virtual time
 * (`TestClock`). Every assertion is on exact virtual times, orders and counts.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Clock, Effect, Fiber, Logger, References } from "effect"
import { TestClock } from "effect/testing"
import * as MemoryNetwork from "../../src/layers/MemoryNetwork.ts"
import * as MemoryTransport from "../../src/layers/MemoryTransport.ts"
import * as NodeIdentity from "../../src/layers/NodeIdentity.ts"
import type { NodeKey } from "../../src/domain/NodeKey.ts"
import type { Connection, Transport } from "../../src/services/Transport.ts"
import * as Keys from "../../src/testing/Keys.ts"
import { nodeInfo } from "../../src/testing/TransportSuite.ts"

const A = Keys.key(1)
const B = Keys.key(2)
const C = Keys.key(3)
const a = A.nodeId
const b = B.nodeId
const c = C.nodeId

/** The keepalive of these tests: a connection cut at `t` closes at the first ping after `t`, plus 5 s. */
const keepalive = { pingInterval: "10 seconds", pongTimeout: "5 seconds" } as const

const now = Clock.currentTimeMillis

/** The memory transport of the node holding `key`, on `network`. */
const transport = (network: MemoryNetwork.Service, key: NodeKey) =>
  MemoryTransport.make.pipe(
    Effect.provideService(MemoryNetwork.MemoryNetwork, network),
    Effect.provideService(NodeIdentity.NodeIdentity, { key })
  )

/** `from` dials `to` (the node holding `toKey`); returns [dialer's end, acceptor's end]. */
const connect = (from: Transport["Service"], to: Transport["Service"], toKey: NodeKey) =>
  Effect.gen(function* () {
    const accepting = yield* Effect.forkChild(to.accept)
    const dialed = yield* from.dial(MemoryTransport.endpoint(toKey.nodeId))
    const accepted = yield* Fiber.join(accepting)
    return [dialed, accepted] as const
  })

/** A network with nodes a and b and one connection a dialed: `ab` is a's end, `ba` is b's. */
const setup = (options: MemoryNetwork.OptionsInput = {}) =>
  Effect.gen(function* () {
    const network = yield* MemoryNetwork.make(options)
    const ta = yield* transport(network, A)
    const tb = yield* transport(network, B)
    const [ab, ba] = yield* connect(ta, tb, B)
    return { network, ta, tb, ab, ba }
  })

interface Arrival {
  readonly at: number
  readonly byte: number
}

/** Reads `conn` in a forked fiber, recording each message's first byte and its virtual arrival time. */
const record = (conn: Connection) =>
  Effect.gen(function* () {
    const got: Array<Arrival> = []
    const fiber = yield* Effect.forkChild(
      Effect.forever(
        Effect.flatMap(conn.receive, (m) => Effect.map(now, (at) => void got.push({ at, byte: m.data[0]! }))),
        { disableYield: true }
      )
    )
    yield* Effect.yieldNow
    return { got, fiber }
  })

/**
 * The result of a fiber that must be done without any more virtual time passing: it gets a few
 * turns of the scheduler, and the test fails at once (instead of hanging) if it is still running.
 */
const joinNow = <A, E>(fiber: Fiber.Fiber<A, E>) =>
  Effect.gen(function* () {
    for (let i = 0; i < 10 && fiber.pollUnsafe() === undefined; i++) yield* Effect.yieldNow
    assert.isDefined(fiber.pollUnsafe(), "done without more time passing")
    return yield* Fiber.join(fiber)
  })

const bytes = (arrivals: ReadonlyArray<Arrival>) => arrivals.map((x) => x.byte)
const range = (n: number) => Array.from({ length: n }, (_, i) => i)

describe("MemoryNetwork links", () => {
  it.effect("a perfect link delivers at once, without any time passing", () =>
    Effect.gen(function* () {
      const { network, ab, ba } = yield* setup()
      const atB = yield* record(ba)
      const atA = yield* record(ab)
      for (const i of range(3)) yield* ab.send(1, Uint8Array.of(i))
      yield* ba.send(1, Uint8Array.of(9))
      yield* Effect.yieldNow
      assert.deepStrictEqual(atB.got, [{ at: 0, byte: 0 }, { at: 0, byte: 1 }, { at: 0, byte: 2 }])
      assert.deepStrictEqual(atA.got, [{ at: 0, byte: 9 }])
      assert.strictEqual(yield* now, 0)
      assert.isTrue(network.flows(a, b))
      assert.deepStrictEqual(yield* network.link(a, b).conditions, MemoryNetwork.idealLink)
      assert.strictEqual(yield* network.connections, 1)
    }).pipe(Effect.scoped))

  it.effect("latency delays a message by exactly the latency, and only in the link's direction", () =>
    Effect.gen(function* () {
      const { network, ab, ba } = yield* setup()
      yield* network.link(a, b).set({ latency: "50 millis" })
      assert.strictEqual((yield* network.link(a, b).conditions).latency, 50)
      assert.deepStrictEqual(yield* network.link(b, a).conditions, MemoryNetwork.idealLink)
      const atB = yield* record(ba)
      const atA = yield* record(ab)
      yield* TestClock.adjust(10)
      yield* ab.send(1, Uint8Array.of(1))
      yield* ba.send(1, Uint8Array.of(2))
      yield* Effect.yieldNow
      // b -> a is a different link: still perfect.
      assert.deepStrictEqual(atA.got, [{ at: 10, byte: 2 }])
      assert.deepStrictEqual(atB.got, [])
      yield* TestClock.adjust(49)
      assert.deepStrictEqual(atB.got, [], "not a millisecond early")
      yield* TestClock.adjust(1)
      assert.deepStrictEqual(atB.got, [{ at: 60, byte: 1 }])
      // A second message, sent later, is delayed as much.
      yield* TestClock.adjust(40)
      yield* ab.send(1, Uint8Array.of(3))
      yield* TestClock.adjust(100)
      assert.deepStrictEqual(atB.got, [{ at: 60, byte: 1 }, { at: 150, byte: 3 }])
    }).pipe(Effect.scoped))

  it.effect("a handshake over 50 ms links both ways takes one round trip: 100 ms", () =>
    Effect.gen(function* () {
      const { network, ab, ba } = yield* setup()
      yield* network.link(a, b).set({ latency: 50 })
      yield* network.link(b, a).set({ latency: 50 })
      const finished = (handshake: Effect.Effect<unknown, unknown>) => Effect.andThen(handshake, now)
      const both = yield* Effect.forkChild(Effect.all([
        finished(ab.handshake({ nodeInfo: nodeInfo(A), nodeKey: A, expectedId: b })),
        finished(ba.handshake({ nodeInfo: nodeInfo(B), nodeKey: B }))
      ], { concurrency: 2 }))
      // Hellos cross (arriving at 50), then the signatures of each other's challenge (at 100).
      yield* TestClock.adjust(99)
      assert.isUndefined(both.pollUnsafe())
      yield* TestClock.adjust(1)
      assert.deepStrictEqual(yield* joinNow(both), [100, 100])
    }).pipe(Effect.scoped))

  it.effect("jitter delays each message by latency to latency + jitter and never reorders a stream", () =>
    Effect.gen(function* () {
      const { network, ab, ba } = yield* setup({ bufferSize: 64 })
      yield* network.link(a, b).set({ latency: 20, jitter: "30 millis" })
      const atB = yield* record(ba)
      // One message a millisecond: with independent delays of 20..50 ms, many would overtake.
      for (const i of range(40)) {
        yield* ab.send(1, Uint8Array.of(i))
        yield* TestClock.adjust(1)
      }
      yield* TestClock.adjust(100)
      assert.deepStrictEqual(bytes(atB.got), range(40), "in the order sent")
      atB.got.forEach(({ at }, i) => {
        assert.isAtLeast(at, i + 20, `message ${i}`)
        assert.isAtMost(at, i + 50, `message ${i}`)
      })
      const delays = new Set(atB.got.map(({ at }, i) => at - i))
      assert.isAbove(delays.size, 5, `jitter varies the delay: ${[...delays].join(", ")}`)
    }).pipe(Effect.scoped))

  /** Each transmission is lost with probability 0.5; the n-th retransmission goes 100 × 2^(n-1) ms after the one before. */
  const lossy = { latency: 10, loss: 0.5, retransmitAfter: "100 millis" } as const
  /** Delays a lost-k-times message has: 10 ms plus 100 + 200 + ... + 100 × 2^(k-1) ms. */
  const retransmitted = (k: number) => 10 + 100 * (2 ** k - 1)

  /**
   * 30 messages over a lossy link (or other `conditions`): 20 sent 10 s apart (each on its own), then a burst of 10 at
   * once. Their delays (arrival minus send time), in arrival order.
   */
  const lossyRun = (seed: number, conditions: MemoryNetwork.LinkConditionsInput = lossy) =>
    Effect.gen(function* () {
      const { network, ab, ba } = yield* setup({ seed, bufferSize: 32 })
      yield* network.link(a, b).set(conditions)
      const atB = yield* record(ba)
      const sentAt: Array<number> = []
      for (const i of range(30)) {
        sentAt.push(yield* now)
        yield* ab.send(1, Uint8Array.of(i))
        if (i < 20) yield* TestClock.adjust("10 seconds")
      }
      yield* TestClock.adjust("10 minutes")
      return atB.got.map(({ at, byte }) => ({ byte, delay: at - sentAt[byte]! }))
    }).pipe(Effect.scoped)

  it.effect("loss: every message still arrives, in order, lost ones after doubling retransmission timeouts", () =>
    Effect.gen(function* () {
      const arrivals = yield* lossyRun(7)
      assert.deepStrictEqual(bytes(arrivals.map(({ byte }) => ({ at: 0, byte }))), range(30), "all, in order")
      const ks = arrivals.map(({ delay }) => range(12).find((k) => retransmitted(k) === delay))
      assert.isFalse(ks.includes(undefined), `delays of 10 + 100 × (2^k − 1) ms: ${arrivals.map((x) => x.delay).join(", ")}`)
      const spaced = ks.slice(0, 20)
      assert.isTrue(spaced.includes(0), "some went through the first time")
      assert.isTrue(spaced.some((k) => k! >= 2), "some were lost more than once")
      // In the burst, a lost message holds back the ones behind it: they arrive with it, never before.
      const burst = arrivals.slice(20).map(({ delay }) => delay)
      assert.deepStrictEqual(burst, [...burst].sort((x, y) => x - y))
      assert.isTrue(burst.some((d, i) => i > 0 && d > 10 && d === burst[i - 1]), `held back: ${burst.join(", ")}`)
    }))

  it.effect("loss and jitter replay exactly from the seed", () =>
    Effect.gen(function* () {
      for (const conditions of [lossy, { latency: 10, jitter: 50 }]) {
        const first = yield* lossyRun(7, conditions)
        const again = yield* lossyRun(7, conditions)
        const other = yield* lossyRun(8, conditions)
        assert.deepStrictEqual(again, first)
        assert.notDeepEqual(other, first)
      }
    }))

  it.effect("bandwidth: messages queue behind each other at the link's rate", () =>
    Effect.gen(function* () {
      const { network, ab, ba } = yield* setup()
      yield* network.link(a, b).set({ bandwidth: 10_000 })
      const atB = yield* record(ba)
      const atA = yield* record(ab)
      // 10 messages of 1,000 bytes at 10,000 bytes/s: 100 ms each, one after the other.
      for (const i of range(10)) yield* ab.send(1, new Uint8Array(1_000).fill(i))
      yield* ba.send(1, new Uint8Array(1_000).fill(42))
      yield* TestClock.adjust(99)
      assert.deepStrictEqual(atB.got, [])
      assert.deepStrictEqual(atA.got, [{ at: 0, byte: 42 }], "the reverse link is not limited")
      yield* TestClock.adjust(901)
      assert.deepStrictEqual(atB.got, range(10).map((i) => ({ at: (i + 1) * 100, byte: i })))
    }).pipe(Effect.scoped))

  it.effect("backpressure: on a stalled link the sender waits once bufferSize messages are in flight, and nothing closes", () =>
    Effect.gen(function* () {
      const { network, ab, ba } = yield* setup({ bufferSize: 4 })
      yield* network.link(a, b).set({ stalled: true })
      assert.isFalse(network.flows(a, b))
      assert.isTrue(network.flows(b, a))
      const atB = yield* record(ba)
      for (const i of range(4)) yield* ab.send(1, Uint8Array.of(i))
      const fifth = yield* Effect.forkChild(Effect.andThen(ab.send(1, Uint8Array.of(4)), now))
      yield* Effect.yieldNow
      assert.isUndefined(fifth.pollUnsafe(), "the fifth send waits")
      // 30 s stalled: within the default keepalive (the first ping at 60 s, closed 45 s later).
      yield* TestClock.adjust("30 seconds")
      assert.isUndefined(fifth.pollUnsafe(), "still waiting")
      assert.deepStrictEqual(atB.got, [])
      assert.isUndefined(atB.fiber.pollUnsafe(), "the receiver still waits: the connection is open")
      assert.strictEqual(yield* network.connections, 1)
      yield* network.link(a, b).set({ stalled: false })
      assert.strictEqual(yield* joinNow(fifth), 30_000, "released at once")
      yield* Effect.yieldNow
      assert.deepStrictEqual(atB.got, range(5).map((i) => ({ at: 30_000, byte: i })))
      // The keepalive armed by the stall was called off.
      yield* TestClock.adjust("5 minutes")
      assert.strictEqual(yield* network.connections, 1)
      assert.isUndefined(atB.fiber.pollUnsafe())
    }).pipe(Effect.scoped))

  it.effect("backpressure counts what the receiver took in a batch but has not handed out yet", () =>
    Effect.gen(function* () {
      const { ab, ba } = yield* setup({ bufferSize: 2 })
      yield* ab.send(1, Uint8Array.of(0))
      yield* ab.send(1, Uint8Array.of(1))
      // The receiver takes both from the queue at once and hands out the first: one is still unread.
      assert.strictEqual((yield* ba.receive).data[0], 0)
      yield* ab.send(1, Uint8Array.of(2))
      const fourth = yield* Effect.forkChild(ab.send(1, Uint8Array.of(3)))
      for (let i = 0; i < 5; i++) yield* Effect.yieldNow
      assert.isUndefined(fourth.pollUnsafe(), "two unread (one in the receiver's batch, one queued): the fourth send waits")
      assert.strictEqual((yield* ba.receive).data[0], 1)
      yield* joinNow(fourth)
      assert.deepStrictEqual([(yield* ba.receive).data[0], (yield* ba.receive).data[0]], [2, 3])
    }).pipe(Effect.scoped))

  describe("keepalive", () => {
    const cuts: ReadonlyArray<readonly [string, (network: MemoryNetwork.Service) => Effect.Effect<void, unknown>]> = [
      ["a stalled link", (network) => network.link(a, b).set({ stalled: true })],
      ["a partition", (network) => network.partition([[a], [b]])],
      ["a one-way cut (no pongs come back)", (network) => network.cut([b], [a])],
      ["a paused end", (network) => network.pause(b)]
    ]
    for (const [name, cutOff] of cuts) {
      it.effect(`${name} closes the connection at the first ping after the cut plus pongTimeout`, () =>
        Effect.gen(function* () {
          yield* TestClock.adjust("2 seconds")
          const { network, ab, ba } = yield* setup(keepalive)
          // Created at 2 s: pings at 12 s, 22 s, ... A cut at 15 s is found by the ping at 22 s.
          yield* TestClock.adjust("13 seconds")
          yield* cutOff(network)
          const closedA = yield* Effect.forkChild(Effect.flip(ab.receive))
          const closedB = yield* Effect.forkChild(Effect.flip(ba.receive))
          yield* TestClock.setTime(26_999)
          assert.isUndefined(closedA.pollUnsafe())
          assert.isUndefined(closedB.pollUnsafe())
          assert.strictEqual(yield* network.connections, 1)
          yield* TestClock.adjust(1)
          assert.strictEqual((yield* joinNow(closedA))._tag, "ConnectionClosed")
          assert.strictEqual((yield* joinNow(closedB))._tag, "ConnectionClosed")
          assert.strictEqual(yield* network.connections, 0)
          assert.strictEqual((yield* Effect.flip(ab.send(1, Uint8Array.of(1))))._tag, "ConnectionClosed")
          const closes = (yield* network.events()).filter((e) => e.what.startsWith("keepalive"))
          assert.deepStrictEqual(closes, [
            { at: 27_000, nodeId: a, what: `keepalive: no pong from ${b}, connection closed` },
            { at: 27_000, nodeId: b, what: `keepalive: no pong from ${a}, connection closed` }
          ])
        }).pipe(Effect.scoped))
    }

    it.effect("a cut healed before the pong timeout does not close the connection; a new cut is timed afresh", () =>
      Effect.gen(function* () {
        yield* TestClock.adjust("2 seconds")
        const { network, ab, ba } = yield* setup(keepalive)
        const closed = yield* Effect.forkChild(Effect.flip(ab.receive))
        yield* TestClock.setTime(15_000)
        yield* network.partition([[a], [b]])
        // Healed just before the close due at 27 s: the pong of the 22 s ping gets back in time.
        yield* TestClock.setTime(26_000)
        yield* network.heal
        // Cut again at 26.5 s: the stale timer (27 s) must not fire; the next ping is at 32 s.
        yield* TestClock.setTime(26_500)
        yield* network.link(b, a).set({ stalled: true })
        yield* TestClock.setTime(36_999)
        assert.isUndefined(closed.pollUnsafe())
        assert.strictEqual(yield* network.connections, 1)
        yield* TestClock.adjust(1)
        assert.strictEqual((yield* joinNow(closed))._tag, "ConnectionClosed")
        assert.strictEqual((yield* Effect.flip(ba.receive))._tag, "ConnectionClosed")
      }).pipe(Effect.scoped))

    it.effect("a cut healed in time leaves the connection working long after", () =>
      Effect.gen(function* () {
        const { network, ab, ba } = yield* setup(keepalive)
        yield* network.link(a, b).set({ stalled: true })
        yield* ab.send(1, Uint8Array.of(7))
        yield* TestClock.setTime(14_999)
        yield* network.link(a, b).set({ stalled: false })
        assert.deepStrictEqual((yield* ba.receive).data, Uint8Array.of(7))
        yield* TestClock.adjust("10 minutes")
        assert.strictEqual(yield* network.connections, 1)
        yield* ab.send(1, Uint8Array.of(8))
        assert.deepStrictEqual((yield* ba.receive).data, Uint8Array.of(8))
      }).pipe(Effect.scoped))
  })

  describe("partitions", () => {
    it.effect("a dial across a partition waits, neither failing nor completing, until heal", () =>
      Effect.gen(function* () {
        const network = yield* MemoryNetwork.make()
        const ta = yield* transport(network, A)
        const tb = yield* transport(network, B)
        yield* network.partition([[a], [b]])
        assert.isFalse(network.flows(a, b))
        assert.isFalse(network.flows(b, a))
        assert.isTrue(network.flows(a, c), "a node in no group keeps its links")
        const accepting = yield* Effect.forkChild(tb.accept)
        const dialing = yield* Effect.forkChild(ta.dial(MemoryTransport.endpoint(b)))
        yield* TestClock.adjust("10 minutes")
        assert.isUndefined(dialing.pollUnsafe())
        assert.isUndefined(accepting.pollUnsafe())
        assert.strictEqual(yield* network.connections, 0)
        yield* network.heal
        const ab = yield* joinNow(dialing)
        const ba = yield* joinNow(accepting)
        assert.strictEqual(yield* network.connections, 1)
        yield* ab.send(1, Uint8Array.of(1))
        assert.deepStrictEqual((yield* ba.receive).data, Uint8Array.of(1))
        const events = (yield* network.events(a)).map((e) => e.what)
        assert.include(events, `dial to ${b} unanswered: the path is cut`)
      }).pipe(Effect.scoped))

    it.effect("an unanswered dial can be given up; healing then opens nothing", () =>
      Effect.gen(function* () {
        const network = yield* MemoryNetwork.make()
        const ta = yield* transport(network, A)
        const tb = yield* transport(network, B)
        yield* network.partition([[a], [b]])
        const accepting = yield* Effect.forkChild(tb.accept)
        const dialing = yield* Effect.forkChild(ta.dial(MemoryTransport.endpoint(b)))
        yield* TestClock.adjust("3 seconds")
        yield* Fiber.interrupt(dialing)
        yield* network.heal
        yield* TestClock.adjust("1 second")
        assert.isUndefined(accepting.pollUnsafe(), "b is offered no connection")
        assert.strictEqual(yield* network.connections, 0)
      }).pipe(Effect.scoped))

    // A dial can wait across a cut: the target may be gone by the time the path heals.
    it.effect("a dial waiting across a partition to a node removed meanwhile fails after the heal", () =>
      Effect.gen(function* () {
        const network = yield* MemoryNetwork.make()
        const ta = yield* transport(network, A)
        yield* transport(network, B)
        yield* network.partition([[a], [b]])
        const dialing = yield* Effect.forkChild(Effect.flip(ta.dial(MemoryTransport.endpoint(b))))
        yield* TestClock.adjust("1 second")
        yield* network.remove(b)
        yield* network.heal
        assert.strictEqual((yield* joinNow(dialing))._tag, "DialError")
        assert.strictEqual(yield* network.connections, 0)
      }).pipe(Effect.scoped))

    it.effect("a one-way cut blocks dials both ways but lets the other direction of a connection through", () =>
      Effect.gen(function* () {
        const { network, ta, tb, ab, ba } = yield* setup()
        const atA = yield* record(ab)
        const atB = yield* record(ba)
        yield* network.cut([a], [b])
        assert.isFalse(network.flows(a, b))
        assert.isTrue(network.flows(b, a))
        yield* ab.send(1, Uint8Array.of(1))
        yield* ba.send(1, Uint8Array.of(2))
        yield* Effect.yieldNow
        assert.deepStrictEqual(atA.got, [{ at: 0, byte: 2 }], "b -> a passes")
        // A TCP dial needs both directions: neither a nor b gets through.
        const acceptA = yield* Effect.forkChild(ta.accept)
        const acceptB = yield* Effect.forkChild(tb.accept)
        const dialAB = yield* Effect.forkChild(ta.dial(MemoryTransport.endpoint(b)))
        const dialBA = yield* Effect.forkChild(tb.dial(MemoryTransport.endpoint(a)))
        yield* TestClock.adjust("1 second")
        assert.deepStrictEqual(atB.got, [], "a -> b waits")
        for (const f of [acceptA, acceptB, dialAB, dialBA]) assert.isUndefined(f.pollUnsafe())
        assert.strictEqual(yield* network.connections, 1)
        yield* network.heal
        yield* joinNow(dialAB)
        yield* joinNow(dialBA)
        yield* joinNow(acceptA)
        yield* joinNow(acceptB)
        assert.deepStrictEqual(atB.got, [{ at: 1_000, byte: 1 }], "delivered on heal")
        assert.strictEqual(yield* network.connections, 3)
      }).pipe(Effect.scoped))

    it.effect("a paused node neither sends nor receives; resume delivers what was held", () =>
      Effect.gen(function* () {
        const { network, ta, ab, ba } = yield* setup()
        const tc = yield* transport(network, C)
        const [ac, ca] = yield* connect(ta, tc, C)
        const atA = yield* record(ab)
        const atB = yield* record(ba)
        const atC = yield* record(ca)
        yield* network.pause(b)
        assert.isFalse(network.flows(a, b))
        assert.isFalse(network.flows(b, a))
        assert.isTrue(network.flows(a, c))
        for (const i of range(3)) yield* ab.send(1, Uint8Array.of(i))
        yield* ba.send(1, Uint8Array.of(10))
        yield* ac.send(1, Uint8Array.of(20))
        yield* TestClock.adjust("1 second")
        assert.deepStrictEqual(atB.got, [])
        assert.deepStrictEqual(atA.got, [])
        assert.deepStrictEqual(atC.got, [{ at: 0, byte: 20 }], "a and c are not affected")
        yield* network.resume(b)
        yield* Effect.yieldNow
        assert.deepStrictEqual(atB.got, range(3).map((i) => ({ at: 1_000, byte: i })))
        assert.deepStrictEqual(atA.got, [{ at: 1_000, byte: 10 }])
      }).pipe(Effect.scoped))
  })

  describe("events", () => {
    it.effect("a node's log records link changes, partitions and keepalive closes, with their times", () =>
      Effect.gen(function* () {
        const { network } = yield* setup(keepalive)
        yield* network.link(a, b).set({ latency: "50 millis" })
        yield* TestClock.setTime(1_000)
        yield* network.partition([[a], [b]])
        yield* TestClock.setTime(15_000)
        yield* network.heal
        yield* network.record(a, "note")
        assert.deepStrictEqual(yield* network.events(a), [
          { at: 0, nodeId: a, what: "joined the network" },
          { at: 0, nodeId: a, what: `connection to ${b} opened` },
          { at: 0, nodeId: a, what: `link ${a} -> ${b}: latency 50 ms` },
          { at: 1_000, nodeId: a, what: `partition [${a}] | [${b}]` },
          { at: 15_000, nodeId: a, what: `keepalive: no pong from ${b}, connection closed` },
          { at: 15_000, nodeId: a, what: "partitions healed" },
          { at: 15_000, nodeId: a, what: "note" }
        ])
        const all = yield* network.events()
        assert.strictEqual(all.length, 12)
        assert.deepStrictEqual(all.map((e) => e.at), [...all.map((e) => e.at)].sort((x, y) => x - y))
        assert.deepStrictEqual(all.filter((e) => e.nodeId === b).map((e) => e.what), [
          "joined the network",
          `link ${a} -> ${b}: latency 50 ms`,
          `partition [${a}] | [${b}]`,
          `keepalive: no pong from ${a}, connection closed`,
          "partitions healed"
        ])
      }).pipe(Effect.scoped))

    it.effect("eventLogSize bounds each node's log, dropping the oldest", () =>
      Effect.gen(function* () {
        const { network } = yield* setup({ eventLogSize: 3 })
        for (const latency of [1, 2, 3, 4, 5]) {
          yield* TestClock.adjust(1)
          yield* network.link(a, b).set({ latency })
        }
        assert.deepStrictEqual(yield* network.events(a), [3, 4, 5].map((latency) => ({
          at: latency,
          nodeId: a,
          what: `link ${a} -> ${b}: latency ${latency} ms`
        })))
      }).pipe(Effect.scoped))
  })

  describe("options", () => {
    it.effect("bad network options fail with InvalidNetworkOptions naming the field", () =>
      Effect.gen(function* () {
        const buffer = yield* Effect.flip(MemoryNetwork.make({ bufferSize: 0 }))
        assert.strictEqual(buffer._tag, "InvalidNetworkOptions")
        assert.strictEqual(buffer.option, "bufferSize")
        assert.include(buffer.message, "bufferSize")
        const ping = yield* Effect.flip(MemoryNetwork.make({ pingInterval: "soon" }))
        assert.strictEqual(ping.option, "pingInterval")
        assert.include(ping.message, "pingInterval")
      }).pipe(Effect.scoped))

    it.effect("bad link conditions fail with InvalidNetworkOptions naming the field and change nothing", () =>
      Effect.gen(function* () {
        const { network } = yield* setup()
        const before = yield* network.events(a)
        const link = network.link(a, b)
        const loss = yield* Effect.flip(link.set({ loss: 1 }))
        assert.strictEqual(loss._tag, "InvalidNetworkOptions")
        assert.strictEqual(loss.option, "loss")
        assert.include(loss.message, "loss")
        const latency = yield* Effect.flip(link.set({ latency: "soon", jitter: 5 }))
        assert.strictEqual(latency._tag, "InvalidNetworkOptions")
        assert.strictEqual(latency.option, "latency")
        assert.include(latency.message, "latency")
        assert.deepStrictEqual(yield* link.conditions, MemoryNetwork.idealLink)
        assert.deepStrictEqual(yield* network.events(a), before)
      }).pipe(Effect.scoped))
  })

  it.effect("closing the network's scope stops its delivery fibers and keepalive timers, logging nothing", () => {
    const logged: Array<string> = []
    const logger = Logger.make(({ cause, logLevel, message }) => {
      logged.push(`${logLevel}: ${String(message)}${cause.reasons.length === 0 ? "" : ` ${Cause.pretty(cause)}`}`)
    })
    return Effect.gen(function* () {
      const clock = yield* Clock.Clock
      // The network's fibers sleep through this clock: it counts the sleeps under way.
      let sleeping = 0
      const counting: Clock.Clock = {
        ...clock,
        sleep: (duration) =>
          Effect.suspend(() => {
            sleeping++
            return Effect.ensuring(clock.sleep(duration), Effect.sync(() => void sleeping--))
          })
      }
      const ends = yield* Effect.scoped(Effect.gen(function* () {
        const network = yield* Effect.provideService(MemoryNetwork.make(keepalive), Clock.Clock, counting)
        const ta = yield* transport(network, A)
        const tb = yield* transport(network, B)
        const [ab, ba] = yield* connect(ta, tb, B)
        yield* network.link(a, b).set({ latency: "1 second" })
        yield* network.link(b, a).set({ stalled: true })
        for (const i of range(3)) yield* ab.send(1, Uint8Array.of(i))
        yield* ba.send(1, Uint8Array.of(9))
        yield* TestClock.adjust(10)
        // One delivery fiber waits for the 1 s latency, one timer for the keepalive close at 15 s.
        assert.strictEqual(sleeping, 2)
        return { ab, ba, network }
      }))
      assert.strictEqual(sleeping, 0, "nothing sleeps once the scope closed")
      yield* TestClock.adjust("10 minutes")
      assert.strictEqual(sleeping, 0)
      assert.strictEqual((yield* Effect.flip(ends.ab.receive))._tag, "ConnectionClosed")
      assert.strictEqual((yield* Effect.flip(ends.ba.receive))._tag, "ConnectionClosed")
      assert.isFalse((yield* ends.network.events()).some((e) => e.what.startsWith("keepalive")), "no keepalive fired")
      assert.deepStrictEqual(logged, [])
    }).pipe(
      Effect.provideService(Logger.CurrentLoggers, new Set([logger])),
      Effect.provideService(References.MinimumLogLevel, "Trace")
    )
  })
})

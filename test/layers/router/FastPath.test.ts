/**
 * The router's fast path (src/layers/router/FastPath.ts): the memory connection's synchronous side,
 * the peer queue's `unsent` count that guards it, and the router behaviour it must keep (order,
 * counts) when messages skip the send loop.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Metric, Stream } from "effect"
import { TestClock } from "effect/testing"
import * as Endpoint from "../../../src/domain/Endpoint.ts"
import * as Envelope from "../../../src/domain/Envelope.ts"
import * as MemoryConnection from "../../../src/layers/MemoryConnection.ts"
import * as Metrics from "../../../src/layers/Metrics.ts"
import * as FastPath from "../../../src/layers/router/FastPath.ts"
import * as PeerQueue from "../../../src/layers/router/PeerQueue.ts"
import { idealLink } from "../../../src/services/MemoryNetwork.ts"
import type { Connection } from "../../../src/services/Transport.ts"
import * as Assertions from "../../../src/testing/Assertions.ts"
import * as TestNetwork from "../../../src/testing/TestNetwork.ts"
import { settle } from "../../../src/testing/Within.ts"
import * as F from "../Router.fixtures.ts"

const idealWire: MemoryConnection.Wire = { ideal: () => true, flows: () => true, conditions: () => idealLink, random: () => 0, fork: () => {} }
const pair = (bufferSize: number) =>
  MemoryConnection.makePair(Endpoint.make({ protocol: "memory", path: "a" }), Endpoint.make({ protocol: "memory", path: "b" }), bufferSize, {
    toAcceptor: idealWire,
    toDialer: idealWire
  })
const bytes = (n: number) => Uint8Array.of(n)

describe("MemoryConnection fast path", () => {
  it.effect("sendUnsafe takes messages while the buffer has room and refuses (sending nothing) once it is full or closed", () =>
    Effect.gen(function* () {
      const p = yield* pair(2)
      const fast = FastPath.of(p.dialer)!
      assert.isTrue(fast.sendUnsafe(1, bytes(0)))
      assert.isTrue(fast.sendUnsafe(1, bytes(1)))
      assert.isFalse(fast.sendUnsafe(1, bytes(2)), "the buffer is full")
      assert.strictEqual((yield* p.acceptor.receive).data[0], 0)
      assert.strictEqual((yield* p.acceptor.receive).data[0], 1)
      yield* p.close
      assert.isFalse(fast.sendUnsafe(1, bytes(3)), "the connection is closed")
    }).pipe(Effect.scoped))

  it.effect("receiveUnsafe hands out what has arrived, in order with receive, and undefined when nothing has or the connection is closed", () =>
    Effect.gen(function* () {
      const p = yield* pair(8)
      const fast = FastPath.of(p.acceptor)!
      assert.isUndefined(fast.receiveUnsafe())
      for (let i = 0; i < 4; i++) yield* p.dialer.send(1, bytes(i))
      assert.strictEqual((yield* p.acceptor.receive).data[0], 0)
      assert.strictEqual(fast.receiveUnsafe()!.data[0], 1)
      assert.strictEqual((yield* p.acceptor.receive).data[0], 2)
      assert.strictEqual(fast.receiveUnsafe()!.data[0], 3)
      assert.isUndefined(fast.receiveUnsafe())
      yield* p.dialer.send(1, bytes(4))
      yield* p.close
      assert.isUndefined(fast.receiveUnsafe())
    }).pipe(Effect.scoped))

  it.effect("a sender waiting for room is woken when receiveUnsafe frees half the buffer", () =>
    Effect.gen(function* () {
      const p = yield* pair(4)
      for (let i = 0; i < 4; i++) yield* p.dialer.send(1, bytes(i))
      const blocked = yield* Effect.forkChild(p.dialer.send(1, bytes(4)))
      yield* settle(1)
      assert.isUndefined(blocked.pollUnsafe())
      const fast = FastPath.of(p.acceptor)!
      fast.receiveUnsafe()
      fast.receiveUnsafe()
      yield* Fiber.join(blocked)
      assert.deepStrictEqual([fast.receiveUnsafe(), fast.receiveUnsafe(), fast.receiveUnsafe()].map((m) => m!.data[0]), [2, 3, 4])
    }).pipe(Effect.scoped))
})

describe("PeerQueue unsent", () => {
  const item = (n: number): PeerQueue.Outgoing => ({ channelId: 1, priority: 1, data: bytes(n), messageType: "test_Message" })
  for (const type of ["fifo", "priority"] as const) {
    describe(type, () => {
      it.effect("counts what is queued and what the sender took, until it reports it sent; close resets it", () =>
        Effect.gen(function* () {
          const q = yield* PeerQueue.make(type, 4)
          assert.isTrue(q.offerUnsafe(item(0)))
          assert.isTrue(yield* q.offer(item(1)))
          assert.strictEqual(q.unsent(), 2)
          yield* q.take
          assert.strictEqual(q.unsent(), 2, "the taken item is not written yet")
          q.sent()
          assert.strictEqual(q.unsent(), 1)
          assert.strictEqual(q.pollUnsafe()?.data[0] ?? (yield* q.take).data[0], 1)
          q.sent()
          assert.strictEqual(q.unsent(), 0)
          q.offerUnsafe(item(2))
          yield* q.close
          assert.strictEqual(q.unsent(), 0)
          assert.isTrue(q.isClosed())
        }))

      it.effect("an offer interrupted while waiting for room is not counted", () =>
        Effect.gen(function* () {
          const q = yield* PeerQueue.make(type, 1)
          q.offerUnsafe(item(0))
          const blocked = yield* Effect.forkChild(q.offer(item(1)))
          yield* settle(1)
          yield* Fiber.interrupt(blocked)
          yield* q.take
          q.sent()
          assert.strictEqual(q.unsent(), 0)
        }))
    })
  }

  it.effect("fifo pollUnsafe hands out only the batch its last take drained: the rest waits for the next take", () =>
    Effect.gen(function* () {
      const q = yield* PeerQueue.make("fifo", 4)
      q.offerUnsafe(item(0))
      q.offerUnsafe(item(1))
      assert.strictEqual((yield* q.take).data[0], 0)
      q.offerUnsafe(item(2))
      assert.strictEqual(q.pollUnsafe()?.data[0], 1)
      assert.isUndefined(q.pollUnsafe())
      assert.strictEqual((yield* q.take).data[0], 2)
    }))
})

/**
 * A routed peer whose connection has a fast path the test gates: while `full`, `sendUnsafe`
 * refuses and `send` waits for `open`; every write lands in `written`, in order.
 */
const gatedPeer = (queueType: "fifo" | "priority") =>
  Effect.gen(function* () {
    const node = yield* F.makeNode({ router: { queueType } })
    const updates = yield* Assertions.probe(yield* node.peerManager.subscribe)
    const peer = F.key(40)
    const fake = yield* F.makeConnection(F.presents(F.peerOf(peer)))
    const written: Array<string> = []
    const gate = { full: false, opened: Deferred.makeUnsafe<void>() }
    const text = (data: Uint8Array) => new TextDecoder().decode(data.subarray(2))
    const conn: Connection = {
      ...fake,
      send: (channelId, data) =>
        Effect.andThen(Effect.suspend(() => (gate.full ? Deferred.await(gate.opened) : Effect.void)), Effect.sync(() => void written.push(text(data))))
    }
    FastPath.register(conn, {
      sendUnsafe: (_channelId, data) => {
        if (gate.full) return false
        written.push(text(data))
        return true
      },
      receiveUnsafe: () => undefined
    })
    yield* node.transport.incoming(conn as typeof fake)
    yield* Assertions.update(updates, peer.nodeId, "up")
    const ch = yield* node.router.openChannel(F.channel1)
    const send = (s: string) => ch.send(Envelope.to(peer.nodeId, F.str(s)))
    const open = Effect.sync(() => {
      gate.full = false
      Deferred.doneUnsafe(gate.opened, Effect.void)
      gate.opened = Deferred.makeUnsafe<void>()
    })
    return { written, gate, send, open }
  })

describe("Router fast path", () => {
  for (const queueType of ["fifo", "priority"] as const) {
    it.effect(`${queueType}: a send never overtakes messages still queued or in the send loop's hand; with nothing pending it goes straight to the connection`, () =>
      Effect.gen(function* () {
        const { written, gate, send, open } = yield* gatedPeer(queueType)
        yield* send("a")
        assert.deepStrictEqual(written, ["a"], "written at once, by the sender's fiber")
        gate.full = true
        yield* send("b")
        yield* send("c")
        yield* settle(1) // the send loop takes "b" and waits for room
        assert.deepStrictEqual(written, ["a"])
        // The connection has room again but "b" (in the loop's hand) and "c" (queued) are not written yet.
        gate.full = false
        yield* send("d")
        assert.deepStrictEqual(written, ["a"], "\"d\" waits behind \"b\" and \"c\"")
        yield* open
        yield* settle(1)
        assert.deepStrictEqual(written, ["a", "b", "c", "d"])
        yield* send("e")
        assert.deepStrictEqual(written, ["a", "b", "c", "d", "e"], "nothing pending: straight through again")
        // Only the loop's hand holds a message: the queue is empty, and still "g" waits behind "f".
        gate.full = true
        yield* send("f")
        yield* settle(1)
        gate.full = false
        yield* send("g")
        assert.deepStrictEqual(written, ["a", "b", "c", "d", "e"])
        yield* open
        yield* settle(1)
        assert.deepStrictEqual(written, ["a", "b", "c", "d", "e", "f", "g"])
      }).pipe(Effect.scoped))
  }

  it.effect("messages that go straight to the connection and messages queued behind a full one arrive in the order they were sent", () =>
    Effect.gen(function* () {
      const ch = F.stringChannel(1, { sendQueueCapacity: 4, recvBufferCapacity: 2 })
      const net = yield* TestNetwork.make({ nodes: 2, channels: [ch], bufferSize: 2, router: { peerQueueSize: 4 } })
      const [a, b] = net.nodes
      const [cha, chb] = yield* net.openChannel(ch)
      // Bursts that fill the connection (the rest queues) alternate with single sends after it drained (straight through).
      const texts = Array.from({ length: 60 }, (_, i) => `m${i}`)
      const received = yield* Effect.forkChild(Stream.runCollect(Stream.take(chb!.messages, texts.length)))
      for (let i = 0; i < texts.length; i++) {
        yield* cha!.send(Envelope.to(b!.nodeId, F.str(texts[i]!)))
        if (i % 7 === 0) yield* settle(1)
      }
      const got = yield* Fiber.join(received)
      assert.deepStrictEqual(got.map((e) => e.message.value), texts)
      assert.isTrue(got.every((e) => e.from === a!.nodeId))
    }).pipe(Effect.scoped))

  it.effect("a message sent straight to the connection is counted like one from the send loop (messages and bytes per channel and peer)", () =>
    Effect.gen(function* () {
      const ch = F.stringChannel(7)
      const net = yield* TestNetwork.make({ nodes: 2, channels: [ch] })
      const [a, b] = net.nodes
      const [cha, chb] = yield* net.openChannel(ch)
      const sentBefore = yield* Metric.value(Metric.withAttributes(Metrics.messageSendTotal, { chID: "0x7" }))
      yield* cha!.send(Envelope.to(b!.nodeId, F.str("hello")))
      yield* Stream.runHead(chb!.messages)
      yield* TestClock.adjust(1_100) // the router flushes its counts once a second
      const sentAfter = yield* Metric.value(Metric.withAttributes(Metrics.messageSendTotal, { chID: "0x7" }))
      assert.strictEqual(sentAfter.count - sentBefore.count, 1)
      const peerBytes = yield* Metric.value(Metric.withAttributes(Metrics.peerSendBytesTotal, { peer_id: b!.nodeId, chID: "0x7" }))
      assert.strictEqual(peerBytes.count, F.str("hello").value.length + 2)
      void a
    }).pipe(Effect.scoped))
})

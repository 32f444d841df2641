/**
 * Backpressure over real sockets: a receiver that stops reading stops its socket (the receive
 * buffer is bounded, the rest waits in the kernel and then in the sender), the sender stalls
 * instead of the receiver buffering without bound, and once the receiver reads again everything
 * arrives, in order. Also the receive rate limit, which pauses the socket the same way, and a
 * consumer closing the connection while a read is delivered to it (inside the socket's callback).
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Fiber, Layer } from "effect"
import * as ChannelDescriptor from "../../../src/domain/ChannelDescriptor.ts"
import * as NodeIdentity from "../../../src/layers/NodeIdentity.ts"
import * as TcpTransport from "../../../src/layers/TcpTransport.ts"
import { MessageSchema } from "../../../src/proto/tendermint/p2p/pex_pb.ts"
import { Transport } from "../../../src/services/Transport.ts"
import { key, nodeInfo } from "../../../src/testing/TransportSuite.ts"
import { within } from "../../../src/testing/Within.ts"

const channel = ChannelDescriptor.make({ id: 0x40, messageType: MessageSchema, sendQueueCapacity: 4, recvMessageCapacity: 1 << 20 })

const pair = (receiver: Partial<TcpTransport.Options["mconnection"]>) =>
  Effect.gen(function* () {
    const [ka, kb] = [key(1), key(2)]
    const build = (k: typeof ka, options: TcpTransport.Options) =>
      Effect.map(Layer.build(TcpTransport.layer(options).pipe(Layer.provide(NodeIdentity.layer(k)))), (ctx) => Context.get(ctx, Transport))
    // Rate limits off (CometBFT's default is 5 MB/s each way) unless the case sets them.
    const a = yield* build(ka, { host: "127.0.0.1", port: 0, mconnection: { sendRate: 1e12, recvRate: 1e12 } })
    const b = yield* build(kb, { host: "127.0.0.1", port: 0, mconnection: { sendRate: 1e12, recvRate: 1e12, ...receiver } })
    const [endpoint] = yield* b.endpoints
    const accepting = yield* Effect.forkChild(b.accept)
    const ab = yield* a.dial(endpoint!)
    const ba = yield* Fiber.join(accepting)
    yield* Effect.all([
      ab.handshake({ nodeInfo: nodeInfo(ka, { channels: Uint8Array.of(channel.id) }), nodeKey: ka, channels: [channel] }),
      ba.handshake({ nodeInfo: nodeInfo(kb, { channels: Uint8Array.of(channel.id) }), nodeKey: kb, channels: [channel] })
    ], { concurrency: 2 })
    return { ab, ba }
  })

/** Message `i`: 64 KiB, its index in the first 4 bytes. */
const message = (i: number) => {
  const m = new Uint8Array(64 * 1024).fill(i & 0xff)
  new DataView(m.buffer).setUint32(0, i)
  return m
}

describe("TCP backpressure", () => {
  it.live("a receiver that does not read stalls the sender; once it reads, every message arrives in order", () =>
    Effect.scoped(Effect.gen(function* () {
      const { ab, ba } = yield* pair({ receiveBuffer: 2 })
      // 16 MiB: more than the loopback socket buffers, Node's read-ahead and the queues hold
      // (the sender stalls after ~7 MiB on Linux's defaults).
      const total = 256
      let sent = 0
      const sender = yield* Effect.forkChild(Effect.gen(function* () {
        for (let i = 0; i < total; i++) {
          yield* ab.send(channel.id, message(i))
          sent++
        }
      }))
      // Let the sender run until it cannot go on.
      let last = -1
      while (sent !== last) {
        last = sent
        yield* Effect.sleep(200)
      }
      assert.isBelow(sent, total, "the sender stalled while nobody read")
      const stalledAt = sent
      for (let i = 0; i < total; i++) {
        const got = yield* within(10_000, `message ${i}`, ba.receive)
        assert.strictEqual(got.data.length, 64 * 1024)
        assert.strictEqual(new DataView(got.data.buffer, got.data.byteOffset).getUint32(0), i)
        assert.strictEqual(got.data[got.data.length - 1], i & 0xff)
      }
      yield* Fiber.join(sender)
      assert.isAbove(sent, stalledAt)
    })), 30_000)

  it.live("the receive rate limit pauses the socket: 1 MiB at 500 kB/s takes about a second", () =>
    Effect.scoped(Effect.gen(function* () {
      const { ab, ba } = yield* pair({ recvRate: 500_000 })
      const start = performance.now()
      yield* Effect.forkChild(Effect.forEach(Array.from({ length: 16 }, (_, i) => i), (i) => ab.send(channel.id, message(i)), { discard: true }))
      for (let i = 0; i < 16; i++) {
        const got = yield* within(10_000, `message ${i}`, ba.receive)
        assert.strictEqual(new DataView(got.data.buffer, got.data.byteOffset).getUint32(0), i)
      }
      const elapsed = performance.now() - start
      // The bucket starts full (a second's worth, 500 kB, at once), the other ~550 kB take ~1.1 s;
      // without the limit this takes a few milliseconds.
      assert.isAbove(elapsed, 700)
      assert.isBelow(elapsed, 5_000)
    })), 30_000)

  it.live("a consumer that closes the connection while a read is being delivered to it ends it cleanly: the rest of the read is dropped, receive fails", () =>
    Effect.scoped(Effect.gen(function* () {
      const { ab, ba } = yield* pair({})
      // Small messages: many in one read, delivered one after another inside the socket's callback.
      const small = (i: number) => Uint8Array.of(i & 0xff, 1, 2, 3)
      yield* Effect.forEach(Array.from({ length: 200 }, (_, i) => i), (i) => ab.send(channel.id, small(i)), { discard: true })
      const first = yield* within(5_000, "the first message", ba.receive)
      assert.strictEqual(first.data[0], 0)
      yield* ba.close
      const after = yield* Effect.flip(ba.receive)
      assert.strictEqual(after._tag, "ConnectionClosed")
      yield* within(5_000, "the sender to see the close", ab.awaitClosed)
    })), 30_000)
})

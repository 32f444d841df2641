/**
 * router-memory: 1 KiB messages from one node's reactor to another's through two routers over the
 * memory transport, against the same count through a bare bounded Effect Queue (offer/take between
 * two fibers). Then broadcast from a hub to 1, 10 and 100 peers: deliveries per second should not
 * fall as peers grow (the message is encoded once and each delivery costs the same).
 */
import { create } from "@bufbuild/protobuf"
import { BytesValueSchema } from "@bufbuild/protobuf/wkt"
import { Effect, Fiber, Queue, Stream } from "effect"
import * as ChannelDescriptor from "../src/domain/ChannelDescriptor.ts"
import * as Envelope from "../src/domain/Envelope.ts"
import * as TestNetwork from "../src/testing/TestNetwork.ts"

const N = Number(process.env["BENCH_MESSAGES"] ?? 100_000)
const payload = new Uint8Array(1024).fill(7)
const message = create(BytesValueSchema, { value: payload })
const descriptor = ChannelDescriptor.make({ id: 0x42, messageType: BytesValueSchema, priority: 5, sendQueueCapacity: 64, recvBufferCapacity: 64 })

const seconds = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e9

const baseline = Effect.gen(function* () {
  const q = yield* Queue.bounded<Uint8Array>(64)
  const start = process.hrtime.bigint()
  const consumer = yield* Effect.forkChild(Effect.gen(function* () {
    for (let i = 0; i < N; i++) yield* Queue.take(q)
  }))
  for (let i = 0; i < N; i++) yield* Queue.offer(q, payload)
  yield* Fiber.join(consumer)
  return N / seconds(start)
})

const unicast = Effect.scoped(Effect.gen(function* () {
  const net = yield* TestNetwork.make({ nodes: 2, channels: [descriptor], bufferSize: 64 })
  const [a, b] = net.nodes
  const [cha, chb] = yield* net.openChannel(descriptor)
  const start = process.hrtime.bigint()
  const consumer = yield* Effect.forkChild(Stream.runDrain(Stream.take(chb!.messages, N)))
  for (let i = 0; i < N; i++) yield* cha!.send(Envelope.to(b!.nodeId, message))
  yield* Fiber.join(consumer)
  void a
  return N / seconds(start)
}))

const broadcast = (peers: number, messages: number) =>
  Effect.scoped(Effect.gen(function* () {
    const net = yield* TestNetwork.make({ nodes: peers + 1, channels: [descriptor], mesh: false, bufferSize: 64 })
    const hub = net.nodes[0]!
    for (const leaf of net.nodes.slice(1)) yield* net.connect(hub, leaf)
    const channels = yield* net.openChannel(descriptor)
    const start = process.hrtime.bigint()
    const consumers = yield* Effect.forEach(channels.slice(1), (ch) => Effect.forkChild(Stream.runDrain(Stream.take(ch.messages, messages))))
    for (let i = 0; i < messages; i++) yield* channels[0]!.send(Envelope.broadcast(message))
    yield* Effect.forEach(consumers, Fiber.join, { discard: true })
    return (peers * messages) / seconds(start)
  }))

const main = Effect.gen(function* () {
  yield* baseline // warm-up, so the JIT has compiled the queue path
  const base = yield* baseline
  const ours = yield* unicast
  console.log(JSON.stringify({ name: "router-memory", messages: N, size: 1024, msgs_per_s: Math.round(ours), baseline: Math.round(base), ratio: +(ours / base).toFixed(3) }))
  const results: Array<number> = []
  for (const peers of [1, 10, 100]) {
    const messages = Math.max(200, Math.floor(N / peers / 2))
    const rate = yield* broadcast(peers, messages)
    results.push(rate)
    console.log(JSON.stringify({
      name: "router-memory-broadcast",
      peers,
      messages,
      deliveries_per_s: Math.round(rate),
      us_per_delivery: +(1e6 / rate).toFixed(2),
      baseline: Math.round(results[0]!),
      ratio: +(rate / results[0]!).toFixed(3)
    }))
  }
})

Effect.runPromise(main).catch((e) => {
  console.error(e)
  process.exit(1)
})

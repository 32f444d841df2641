/**
 * router-memory: 1 KiB messages from one node's reactor to another's through two routers over the
 * memory transport, against the same count through a bare bounded Effect Queue (offer/take between
 * two fibers). Each runs its N messages once unmeasured first (the router's on the same two
 * nodes), so both are compared with the JIT warm. `ratio`
 * compares wall-clock rates; `cpu_ratio` compares the process's CPU time per message, which the
 * other processes of a shared machine disturb far less.
 *
 * Then broadcast from a hub to 10, 100 and 1,000 peers (a star: the hub connected to every peer,
 * the peers to nothing else), under the live clock, in two cases:
 *
 * - `router-memory-broadcast`: every peer is a full node (Router, PeerManager, transport) in this
 *   process, and counts what its channel's `messages` yields. A delivery costs the hub's routing
 *   (its send loop per peer) plus the receiving node's work (its receive loop, decoding, the
 *   channel's inbound queue, the consumer): with 1,000 peers, 1,000 in-process receivers share the
 *   machine with the hub, so this figure is the whole network's cost, not the router's alone.
 * - `router-memory-broadcast-hub`: the hub is a real Router (node 0 of a one-node TestNetwork); each
 *   peer is a bare sink, a `MemoryTransport` on the same `MemoryNetwork` that accepts the hub's dial
 *   (`hub.peerManager.add`), completes the handshake and drains `conn.receive`, counting, nothing
 *   else. This is the router's own cost per delivery, plus one minimal receive per message.
 *
 * Each peer counts what it receives; a case ends when every peer has every message.
 * `us_per_delivery` is wall time over deliveries (peers × messages); the `baseline` is the case's
 * 10-peer figure and `ratio` = us_per_delivery(n) / us_per_delivery(10): it should stay near 1 as
 * peers grow (the message is encoded once and each delivery costs the same); above 1, a delivery
 * costs more with more peers. A peer whose queue stays full longer than the Router's
 * `broadcastTimeout` misses messages: then `dropped` (the deliveries that never came, counted once
 * no delivery has arrived for a few seconds) is not 0, `min_received` says how many the worst peer
 * got, and the rate counts delivered messages only. `setup_s` is building the nodes (or sinks) and
 * connecting the star.
 */
import { create } from "@bufbuild/protobuf"
import { BytesValueSchema } from "@bufbuild/protobuf/wkt"
import { Deferred, Effect, Exit, Fiber, Queue, Stream } from "effect"
import * as ChannelDescriptor from "../src/domain/ChannelDescriptor.ts"
import * as Envelope from "../src/domain/Envelope.ts"
import * as NodeAddress from "../src/domain/NodeAddress.ts"
import * as NodeInfo from "../src/domain/NodeInfo.ts"
import * as NodeKey from "../src/domain/NodeKey.ts"
import * as MemoryNetwork from "../src/layers/MemoryNetwork.ts"
import * as MemoryTransport from "../src/layers/MemoryTransport.ts"
import * as NodeIdentity from "../src/layers/NodeIdentity.ts"
import type { Connection } from "../src/services/Transport.ts"
import * as TestNetwork from "../src/testing/TestNetwork.ts"

const N = Number(process.env["BENCH_MESSAGES"] ?? 100_000)
const payload = new Uint8Array(1024).fill(7)
const message = create(BytesValueSchema, { value: payload })
const descriptor = ChannelDescriptor.make({ id: 0x42, messageType: BytesValueSchema, priority: 5, sendQueueCapacity: 64, recvBufferCapacity: 64 })

const seconds = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e9
/** CPU time of this process since `start` (all its threads, GC helpers included), in microseconds. */
const cpuMicros = (start: NodeJS.CpuUsage) => {
  const used = process.cpuUsage(start)
  return used.user + used.system
}

/** Messages per second of wall time, and CPU microseconds per message (steadier on a shared machine). */
interface Rate {
  readonly perSecond: number
  readonly cpuPerMessage: number
}

const baseline = Effect.gen(function* () {
  const q = yield* Queue.bounded<Uint8Array>(64)
  const start = process.hrtime.bigint()
  const cpu = process.cpuUsage()
  const consumer = yield* Effect.forkChild(Effect.gen(function* () {
    for (let i = 0; i < N; i++) yield* Queue.take(q)
  }))
  for (let i = 0; i < N; i++) yield* Queue.offer(q, payload)
  yield* Fiber.join(consumer)
  return { perSecond: N / seconds(start), cpuPerMessage: cpuMicros(cpu) / N } satisfies Rate
})

/**
 * N messages unmeasured, then N measured, over the same two nodes. The warm-up runs on the routes
 * it measures, as a long-lived node's traffic does: warmed up on a network of its own, the
 * measured run paid for the JIT dropping code specialised to the first network's closures (its
 * send loop, its connection's fast path) and read 20-30% below the runs after it.
 */
const unicast = Effect.scoped(Effect.gen(function* () {
  const net = yield* TestNetwork.make({ nodes: 2, channels: [descriptor], bufferSize: 64 })
  const [, b] = net.nodes
  const [cha, chb] = yield* net.openChannel(descriptor)
  const run = Effect.gen(function* () {
    const start = process.hrtime.bigint()
    const cpu = process.cpuUsage()
    const consumer = yield* Effect.forkChild(Stream.runDrain(Stream.take(chb!.messages, N)))
    for (let i = 0; i < N; i++) yield* cha!.send(Envelope.to(b!.nodeId, message))
    yield* Fiber.join(consumer)
    return { perSecond: N / seconds(start), cpuPerMessage: cpuMicros(cpu) / N } satisfies Rate
  })
  yield* run
  return yield* run
}))

/** No delivery for this long (several `broadcastTimeout`s): whatever has not arrived was dropped. */
const STALL_MS = 5_000
/** Hub-to-peer connections made at once while building the star. */
const CONNECT_CONCURRENCY = 16

const broadcast = (peers: number, messages: number) =>
  Effect.scoped(Effect.gen(function* () {
    const setupStart = process.hrtime.bigint()
    const net = yield* TestNetwork.make({ nodes: peers + 1, channels: [descriptor], mesh: false, bufferSize: 64 })
    const hub = net.nodes[0]!
    yield* Effect.forEach(net.nodes.slice(1), (leaf) => net.connect(hub, leaf), { concurrency: CONNECT_CONCURRENCY, discard: true })
    const hubPeers = (yield* hub.router.peers).length
    if (hubPeers !== peers) return yield* Effect.die(new Error(`hub routes ${hubPeers} peers, not ${peers}`))
    const channels = yield* net.openChannel(descriptor)
    const setup = seconds(setupStart)
    const expected = peers * messages
    const received = new Array<number>(peers).fill(0)
    let total = 0
    const all = yield* Deferred.make<void>()
    yield* Effect.forEach(channels.slice(1), (ch, i) =>
      Effect.forkChild(Stream.runForEachArray(ch.messages, (batch) =>
        Effect.sync(() => {
          received[i]! += batch.length
          total += batch.length
          if (total === expected) Deferred.doneUnsafe(all, Exit.void)
        }))), { discard: true })
    const start = process.hrtime.bigint()
    // Every broadcast is bounded: a peer whose queue stays full past broadcastTimeout is skipped.
    for (let i = 0; i < messages; i++) yield* channels[0]!.send(Envelope.broadcast(message))
    // Bounded wait: done when every delivery has arrived, or given up after STALL_MS without one.
    let elapsed = 0
    let seen = -1
    let lastProgress = 0
    while (true) {
      const done = yield* Effect.timeoutOption(Deferred.await(all), 100)
      const now = seconds(start)
      if (done._tag === "Some") {
        elapsed = now
        break
      }
      if (total !== seen) {
        seen = total
        lastProgress = now
      } else if ((now - lastProgress) * 1000 >= STALL_MS) {
        elapsed = lastProgress
        break
      }
    }
    const dropped = received.reduce((sum, r) => sum + Math.max(0, messages - r), 0)
    return { rate: elapsed > 0 ? total / elapsed : 0, dropped, minReceived: Math.min(...received), setup }
  }))

/** How long the hub may take to route every sink. */
const ROUTE_WAIT_MS = 120_000

/** Sink `i`'s key: the index in the first 4 bytes of a seed no TestNetwork node uses (0xee elsewhere). */
const sinkKey = (i: number) => {
  const seed = new Uint8Array(32).fill(0xee)
  new DataView(seed.buffer).setUint32(0, i)
  return NodeKey.fromSeed(seed)
}

/** Waits, bounded, until `all` is done or no delivery has come for `STALL_MS`; the time of the last progress. */
const awaitDeliveries = (all: Deferred.Deferred<void>, start: bigint, total: () => number) =>
  Effect.gen(function* () {
    let seen = -1
    let lastProgress = 0
    while (true) {
      const done = yield* Effect.timeoutOption(Deferred.await(all), 100)
      const now = seconds(start)
      if (done._tag === "Some") return now
      if (total() !== seen) {
        seen = total()
        lastProgress = now
      } else if ((now - lastProgress) * 1000 >= STALL_MS) {
        return lastProgress
      }
    }
  })

/**
 * A real Router hub broadcasting to `peers` bare sinks: each a memory transport on the hub's network
 * that accepts, handshakes (listing the bench channel, on the hub's network "test") and drains.
 */
const broadcastHub = (peers: number, messages: number) =>
  Effect.scoped(Effect.gen(function* () {
    const setupStart = process.hrtime.bigint()
    const net = yield* TestNetwork.make({ nodes: 1, channels: [descriptor], mesh: false, bufferSize: 64 })
    const hub = net.nodes[0]!
    const channel = yield* hub.router.openChannel(descriptor)
    const expected = peers * messages
    const received = new Array<number>(peers).fill(0)
    let total = 0
    const all = yield* Deferred.make<void>()

    /** Drains the hub's connection to sink `i` once handshaken: one count per message. */
    const drain = (conn: Connection, i: number) =>
      Effect.gen(function* () {
        while (true) {
          yield* conn.receive
          received[i]!++
          if (++total === expected) Deferred.doneUnsafe(all, Exit.void)
        }
      })

    const sinks = Array.from({ length: peers }, (_, i) => sinkKey(i))
    yield* Effect.forEach(sinks, (key, i) =>
      Effect.gen(function* () {
        const transport = yield* MemoryTransport.make.pipe(
          Effect.provideService(MemoryNetwork.MemoryNetwork, net.network),
          Effect.provide(NodeIdentity.layer(key))
        )
        const info = NodeInfo.make({ nodeId: key.nodeId, listenAddr: "0.0.0.0:0", network: "test", moniker: `sink-${i}`, channels: [descriptor.id] })
        // The accept loop: each connection handshaken and drained in its own fiber.
        yield* Effect.forkScoped(Effect.forever(Effect.gen(function* () {
          const conn = yield* transport.accept
          yield* Effect.forkScoped(Effect.andThen(conn.handshake({ nodeKey: key, nodeInfo: info, channels: [descriptor] }), drain(conn, i)).pipe(Effect.ignore))
        })).pipe(Effect.ignore))
      }), { discard: true })
    for (const key of sinks) yield* hub.peerManager.add(NodeAddress.make({ protocol: MemoryTransport.PROTOCOL, nodeId: key.nodeId }))
    // Bounded wait for the hub to route every sink.
    const routeStart = process.hrtime.bigint()
    let routed = 0
    while ((routed = (yield* hub.router.peers).length) < peers) {
      if (seconds(routeStart) * 1000 >= ROUTE_WAIT_MS) return yield* Effect.die(new Error(`hub routes ${routed} of ${peers} sinks after ${ROUTE_WAIT_MS} ms`))
      yield* Effect.sleep(20)
    }
    if (routed !== peers) return yield* Effect.die(new Error(`hub routes ${routed} peers, not ${peers}`))
    const setup = seconds(setupStart)
    const start = process.hrtime.bigint()
    // Every broadcast is bounded: a peer whose queue stays full past broadcastTimeout is skipped.
    for (let i = 0; i < messages; i++) yield* channel.send(Envelope.broadcast(message))
    const elapsed = yield* awaitDeliveries(all, start, () => total)
    const dropped = received.reduce((sum, r) => sum + Math.max(0, messages - r), 0)
    return { rate: elapsed > 0 ? total / elapsed : 0, dropped, minReceived: Math.min(...received), setup }
  }))

const main = Effect.gen(function* () {
  yield* baseline // warm-up, so the JIT has compiled the queue path
  const base = yield* baseline
  // The routing path is warmed up likewise, inside `unicast`.
  const ours = yield* unicast
  // `cpu_ratio`: the same comparison in CPU time per message, which other processes on the machine
  // disturb far less than wall time.
  console.log(JSON.stringify({
    name: "router-memory",
    messages: N,
    size: 1024,
    msgs_per_s: Math.round(ours.perSecond),
    baseline: Math.round(base.perSecond),
    ratio: +(ours.perSecond / base.perSecond).toFixed(3),
    cpu_us_per_msg: +ours.cpuPerMessage.toFixed(3),
    baseline_cpu_us_per_msg: +base.cpuPerMessage.toFixed(3),
    cpu_ratio: +(base.cpuPerMessage / ours.cpuPerMessage).toFixed(3)
  }))
  let first: number | undefined
  for (const peers of [10, 100, 1000]) {
    // About the same number of deliveries (peers × messages) in every case.
    const messages = Math.max(50, Math.floor(N / peers / 2))
    const r = yield* broadcast(peers, messages)
    const usPerDelivery = 1e6 / r.rate
    first ??= usPerDelivery
    console.log(JSON.stringify({
      name: "router-memory-broadcast",
      peers,
      messages,
      deliveries_per_s: Math.round(r.rate),
      us_per_delivery: +usPerDelivery.toFixed(2),
      dropped: r.dropped,
      min_received: r.minReceived,
      setup_s: +r.setup.toFixed(2),
      baseline: +first.toFixed(2),
      ratio: +(usPerDelivery / first).toFixed(3)
    }))
  }
  let hubFirst: number | undefined
  for (const peers of [10, 100, 1000]) {
    const messages = Math.max(50, Math.floor(N / peers / 2))
    const r = yield* broadcastHub(peers, messages)
    const usPerDelivery = 1e6 / r.rate
    hubFirst ??= usPerDelivery
    console.log(JSON.stringify({
      name: "router-memory-broadcast-hub",
      peers,
      messages,
      deliveries_per_s: Math.round(r.rate),
      us_per_delivery: +usPerDelivery.toFixed(2),
      dropped: r.dropped,
      min_received: r.minReceived,
      setup_s: +r.setup.toFixed(2),
      baseline: +hubFirst.toFixed(2),
      ratio: +(usPerDelivery / hubFirst).toFixed(3)
    }))
  }
})

Effect.runPromise(main).catch((e) => {
  console.error(e)
  process.exit(1)
})

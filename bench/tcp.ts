/**
 * TCP benchmarks, between two processes on loopback (the other one is bench/_tcp-peer.ts):
 * - tcp-throughput (size 100, 1024, 65536): our transport vs raw node:net carrying the same sealed
 *   1044-byte frames packed into writes of up to 64 KiB (the best this frame format allows);
 * - tcp-pingpong: 100-byte round trips, p50/p99, vs the same raw sealed-frame ping-pong, the two
 *   interleaved in blocks (see `pingPong`), with the CPU time of this process per round trip;
 * - tcp-handshake: sequential dials with full handshakes per second, and RSS per idle connection.
 * Both sides use the same frame cipher (libsodium when installed), so ratios measure our overhead.
 */
import * as Net from "node:net"
import { Context, Effect, Layer, Scope } from "effect"
import * as Endpoint from "../src/domain/Endpoint.ts"
import * as TcpTransport from "../src/layers/TcpTransport.ts"
import * as NodeIdentity from "../src/layers/NodeIdentity.ts"
import { type Connection, Transport } from "../src/services/Transport.ts"
import { FrameOpener, FrameSealer, DATA_MAX_SIZE } from "../src/wire/FrameCipher.ts"
import { SecretReader, SecretWriter } from "../src/wire/SecretStream.ts"
import { defaultAead } from "../src/wire/SodiumAead.ts"
import { PEER_CPU, PINNED, spawnPeer } from "./_pin.ts"
import { benchChannel, benchInfo, benchKey, benchMConnection, RAW_KEY_A, RAW_KEY_B } from "./_tcp-common.ts"

const SCALE = Number(process.env["BENCH_SCALE"] ?? 1)

// Pinning (bench/_pin.ts): the ping-pong is also measured with the peers on this process's CPU,
// where the round trip is nearly all CPU time.

const startPeer = (...args: Array<string>) => startPeerOn(PEER_CPU, ...args)

/** A peer process on `cpu` (when pinning). */
const startPeerOn = (cpu: string, ...args: Array<string>) =>
  Effect.acquireRelease(
    Effect.suspend(() => {
      const dir = process.env["BENCH_PROFILE_DIR"]
      return spawnPeer(cpu, dir === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${dir}/peer`], args)
    }),
    ({ child }) =>
      process.env["BENCH_PROFILE_DIR"] === undefined
        ? Effect.sync(() => child.kill())
        : Effect.callback<void>((resume) => {
          // Let a profiled peer exit by itself so it writes its profile.
          const timer = setTimeout(() => child.kill(), 3000)
          child.once("exit", () => {
            clearTimeout(timer)
            resume(Effect.void)
          })
        })
  )

const ourTransport = Effect.map(
  Layer.build(TcpTransport.layer({ host: "127.0.0.1", port: 0, mconnection: benchMConnection }).pipe(Layer.provide(NodeIdentity.layer(benchKey(1))))),
  (ctx) => Context.get(ctx, Transport)
)

const dialOurs = (t: Transport["Service"], port: number) =>
  Effect.gen(function* () {
    const conn = yield* t.dial(Endpoint.make({ protocol: "mconn", ip: "127.0.0.1", port }))
    yield* conn.handshake({ nodeInfo: benchInfo(benchKey(1)), nodeKey: benchKey(1), expectedId: benchKey(2).nodeId, channels: [benchChannel] })
    return conn
  })

const now = () => Number(process.hrtime.bigint()) / 1e6

/** CPU time (user + system) of this process, in µs. */
const cpuNow = () => {
  const u = process.cpuUsage()
  return u.user + u.system
}

// ------------------------------------------------------------------------------------------------
const oursThroughput = (size: number, count: number) =>
  Effect.scoped(Effect.gen(function* () {
    const { port } = yield* startPeer("ours-sink", String(size), String(count))
    const t = yield* ourTransport
    const conn = yield* dialOurs(t, port)
    const payload = new Uint8Array(size).fill(7)
    const start = now()
    const cpu = cpuNow()
    for (let i = 0; i < count; i++) yield* conn.send(benchChannel.id, payload)
    const done = yield* conn.receive
    return { ms: now() - start, senderCpu: cpuNow() - cpu, receiverCpu: readCpu(done.data) }
  }))

/** The sink's reply: the CPU time (µs) it spent receiving, a float64. */
const readCpu = (reply: Uint8Array) => new DataView(reply.buffer, reply.byteOffset, reply.byteLength).getFloat64(0)

const rawConnect = (port: number) =>
  Effect.callback<Net.Socket>((resume) => {
    const s = Net.connect({ port, host: "127.0.0.1", noDelay: true }, () => resume(Effect.succeed(s)))
  })

const rawThroughput = (size: number, count: number) =>
  Effect.scoped(Effect.gen(function* () {
    const total = size * count
    const { port } = yield* startPeer("raw-sink", String(total))
    const socket = yield* rawConnect(port)
    const writer = new SecretWriter(new FrameSealer(RAW_KEY_A, { aead: defaultAead }))
    const reader = new SecretReader(new FrameOpener(RAW_KEY_B, { aead: defaultAead }))
    const data = new Uint8Array(total).fill(7)
    const perWrite = Math.floor((64 * 1024) / 1044) * DATA_MAX_SIZE
    const start = now()
    const cpu = cpuNow()
    const done = new Promise<number>((resolve) => socket.on("data", (c) => {
      const pts = reader.push(c)
      if (pts.length > 0) resolve(readCpu(pts[0]!))
    }))
    for (let o = 0; o < total; o += perWrite) {
      // Wait for drain only past 256 KiB queued, as our transport does (ByteStream.tryWrite):
      // every 64 KiB write passes Node's 64 KiB mark, and waiting each time idles the kernel.
      if (!socket.write(writer.sealRange(data, o, Math.min(total, o + perWrite))) && socket.writableLength > 256 * 1024) {
        yield* Effect.promise(() => new Promise((r) => socket.once("drain", r)))
      }
    }
    const senderCpu = cpuNow() - cpu
    const receiverCpu = yield* Effect.promise(() => done)
    const ms = now() - start
    socket.destroy()
    return { ms, senderCpu, receiverCpu }
  }))

// ------------------------------------------------------------------------------------------------
/** Round trips run before measuring, so both sides are JIT-compiled. */
const WARMUP_ROUNDS = 2000

const percentile = (xs: Array<number>, p: number) => xs.sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))]!

/** Our side of 100-byte round trips over a handshaken connection. */
const ourRounds = (conn: Connection, payload: Uint8Array, rounds: number, out?: Array<number>) =>
  Effect.gen(function* () {
    for (let i = 0; i < rounds; i++) {
      const start = now()
      yield* conn.send(benchChannel.id, payload)
      yield* conn.receive
      out?.push((now() - start) * 1000)
    }
  })

/** The same round trips over a raw socket carrying sealed frames. */
const rawRounds = (raw: RawPing, rounds: number, out?: Array<number>) =>
  Effect.promise(() => new Promise<void>((resolve) => {
    let i = 0
    let start = now()
    raw.onReply = () => {
      out?.push((now() - start) * 1000)
      if (++i === rounds) return resolve()
      start = now()
      raw.send()
    }
    raw.send()
  }))

interface RawPing {
  send: () => void
  onReply: () => void
}

const rawPing = (port: number) =>
  Effect.acquireRelease(
    Effect.map(rawConnect(port), (socket): RawPing => {
      const writer = new SecretWriter(new FrameSealer(RAW_KEY_A, { aead: defaultAead }))
      const reader = new SecretReader(new FrameOpener(RAW_KEY_B, { aead: defaultAead }))
      const payload = new Uint8Array(100).fill(1)
      const raw: RawPing = { send: () => void socket.write(writer.seal(payload)), onReply: () => {} }
      socket.on("data", (c) => {
        if (reader.push(c).length > 0) raw.onReply()
      })
      ;(raw as { socket?: Net.Socket }).socket = socket
      return raw
    }),
    (raw) => Effect.sync(() => (raw as { socket?: Net.Socket }).socket?.destroy())
  )

/** Rounds per block: ours and the raw baseline alternate in blocks, so both see the same machine. */
const BLOCK = 250

/**
 * 100-byte ping-pong, ours and the raw sealed-frame baseline, each against its own echo process,
 * interleaved in blocks of {@link BLOCK} rounds: this machine's round-trip time shifts by 2-3x
 * with the load on the other core (a descheduled, idle vCPU wakes slowly), and two runs one after
 * the other can land in different regimes. Also the CPU time of this process per round.
 */
const pingPong = (rounds: number, peerCpu: string) =>
  Effect.scoped(Effect.gen(function* () {
    const ours = yield* startPeerOn(peerCpu, "ours-echo")
    const t = yield* ourTransport
    const conn = yield* dialOurs(t, ours.port)
    const raw = yield* rawPing((yield* startPeerOn(peerCpu, "raw-echo")).port)
    const payload = new Uint8Array(100).fill(1)
    yield* ourRounds(conn, payload, WARMUP_ROUNDS)
    yield* rawRounds(raw, WARMUP_ROUNDS)
    const ourSamples: Array<number> = []
    const rawSamples: Array<number> = []
    let ourCpu = 0
    let rawCpu = 0
    for (let done = 0; done < rounds; done += BLOCK) {
      const n = Math.min(BLOCK, rounds - done)
      let c = cpuNow()
      yield* ourRounds(conn, payload, n, ourSamples)
      ourCpu += cpuNow() - c
      c = cpuNow()
      yield* rawRounds(raw, n, rawSamples)
      rawCpu += cpuNow() - c
    }
    return { ourSamples, rawSamples, ourCpu: ourCpu / rounds, rawCpu: rawCpu / rounds }
  }))

/** One side alone, for a profile (BENCH_ONLY=pingpong or pingpong-raw). */
const pingPongAlone = (which: "ours" | "raw", rounds: number) =>
  Effect.scoped(Effect.gen(function* () {
    const samples: Array<number> = []
    if (which === "ours") {
      const conn = yield* dialOurs(yield* ourTransport, (yield* startPeer("ours-echo")).port)
      const payload = new Uint8Array(100).fill(1)
      yield* ourRounds(conn, payload, WARMUP_ROUNDS)
      yield* ourRounds(conn, payload, rounds, samples)
    } else {
      const raw = yield* rawPing((yield* startPeer("raw-echo")).port)
      yield* rawRounds(raw, WARMUP_ROUNDS)
      yield* rawRounds(raw, rounds, samples)
    }
    return samples
  }))

// ------------------------------------------------------------------------------------------------
const handshakes = (count: number) =>
  Effect.scoped(Effect.gen(function* () {
    const { port } = yield* startPeer("ours-accept")
    const t = yield* ourTransport
    yield* Effect.scoped(dialOurs(t, port)) // warm-up
    const start = now()
    for (let i = 0; i < count; i++) yield* Effect.scoped(dialOurs(t, port))
    const perSecond = count / ((now() - start) / 1000)
    const gc = (globalThis as { gc?: () => void }).gc
    gc?.()
    const before = process.memoryUsage().rss
    const scope = yield* Scope.make()
    for (let i = 0; i < 200; i++) yield* Scope.provide(dialOurs(t, port), scope)
    gc?.()
    const after = process.memoryUsage().rss
    yield* Scope.close(scope, { _tag: "Success", value: undefined } as never)
    return { perSecond, rssKbPerConn: (after - before) / 1024 / 200 }
  }))

// ------------------------------------------------------------------------------------------------
const only = process.env["BENCH_ONLY"]

const main = Effect.gen(function* () {
  // BENCH_ONLY=throughput-100, throughput-1024, throughput-65536: ours alone, for a profile.
  const profiled = /^throughput-(\d+)$/.exec(only ?? "")
  if (profiled !== null) {
    const size = Number(profiled[1])
    const n = Math.floor((size >= 65536 ? 4_000 : 100_000) * SCALE)
    const { ms } = yield* oursThroughput(size, n)
    console.log(JSON.stringify({ name: "tcp-throughput-profile", size, mb_per_s: +((size * n) / 1e6 / (ms / 1000)).toFixed(1) }))
    return
  }
  if (only === "throughput-1024-ratio") {
    const n = Math.floor(100_000 * SCALE)
    yield* oursThroughput(1024, 2000)
    const base = (yield* rawThroughput(1024, n)).ms
    const ours = (yield* oursThroughput(1024, n)).ms
    console.log(JSON.stringify({ name: "tcp-throughput-1024", ours_mb_s: +((1024 * n) / 1e3 / ours).toFixed(1), raw_mb_s: +((1024 * n) / 1e3 / base).toFixed(1), ratio: +(base / ours).toFixed(3) }))
    return
  }
  if (only === "pingpong" || only === "pingpong-raw") {
    const samples = yield* pingPongAlone(only === "pingpong" ? "ours" : "raw", Math.floor(2000 * SCALE))
    console.log(JSON.stringify({ name: "tcp-pingpong-profile", p50_us: Math.round(percentile(samples, 0.5)) }))
    return
  }
  for (const [size, count] of [[100, 200_000], [1024, 100_000], [65536, 2_000]] as const) {
    const n = Math.max(100, Math.floor(count * SCALE))
    // Warm-up, both: a quarter of the run, so the JIT has settled (a long-running node's state);
    // 2,000 messages left 100 B runs mostly measuring the JIT at work.
    yield* oursThroughput(size, Math.max(100, Math.floor(n / 4)))
    yield* rawThroughput(size, Math.max(100, Math.floor(n / 4)))
    const baseRun = yield* rawThroughput(size, n)
    const ourRun = yield* oursThroughput(size, n)
    const base = baseRun.ms
    const ours = ourRun.ms
    const mb = (ms: number) => (size * n) / 1e6 / (ms / 1000)
    const nsPerMessage = (us: number) => Math.round((us * 1000) / n)
    console.log(JSON.stringify({
      name: "tcp-throughput",
      size,
      messages: n,
      mb_per_s: +mb(ours).toFixed(1),
      msgs_per_s: Math.round(n / (ours / 1000)),
      baseline: +mb(base).toFixed(1),
      ratio: +(mb(ours) / mb(base)).toFixed(3),
      // CPU time per message on each side (both processes share the machine's two cores).
      sender_cpu_ns_per_msg: nsPerMessage(ourRun.senderCpu),
      receiver_cpu_ns_per_msg: nsPerMessage(ourRun.receiverCpu),
      baseline_sender_cpu_ns_per_msg: nsPerMessage(baseRun.senderCpu),
      baseline_receiver_cpu_ns_per_msg: nsPerMessage(baseRun.receiverCpu),
      cipher: defaultAead(new Uint8Array(32)).name
    }))
  }
  const rounds = Math.max(500, Math.floor(5000 * SCALE))
  for (const placement of PINNED ? (["cross-cpu", "same-cpu"] as const) : (["unpinned"] as const)) {
    const { ourSamples, rawSamples, ourCpu, rawCpu } = yield* pingPong(rounds, placement === "same-cpu" ? "0" : PEER_CPU)
    const p50 = percentile(ourSamples, 0.5)
    const basep50 = percentile(rawSamples, 0.5)
    const p99 = percentile(ourSamples, 0.99)
    const basep99 = percentile(rawSamples, 0.99)
    console.log(JSON.stringify({
      name: placement === "same-cpu" ? "tcp-pingpong-same-cpu" : "tcp-pingpong",
      size: 100,
      rounds,
      placement,
      p50_us: Math.round(p50),
      p99_us: Math.round(p99),
      baseline: Math.round(basep50),
      baseline_p99_us: Math.round(basep99),
      ratio: +(p50 / basep50).toFixed(3),
      ratio_p99: +(p99 / basep99).toFixed(3),
      cpu_us_per_round: +ourCpu.toFixed(1),
      baseline_cpu_us_per_round: +rawCpu.toFixed(1)
    }))
  }
  const h = yield* handshakes(Math.max(50, Math.floor(300 * SCALE)))
  console.log(JSON.stringify({ name: "tcp-handshake", handshakes_per_s: Math.round(h.perSecond), rss_kb_per_conn: Math.round(h.rssKbPerConn), baseline: 150, ratio: +(h.perSecond / 150).toFixed(3) }))
})

Effect.runPromise(main).then(() => process.exit(0), (e) => {
  console.error(e)
  process.exit(1)
})

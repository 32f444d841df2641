/**
 * Handshake benchmarks between two processes on loopback (the other one is bench/_tcp-peer.ts in
 * `ours-accept` mode): full TCP dials (connect, SecretConnection, NodeInfo exchange, MConnection
 * start) per second,
 * - handshake-sequential: one dial after another;
 * - handshake-parallel: 16 dials in flight at once (16 fibers, each dialing in a loop).
 * Baseline, measured in the same run: the crypto of one handshake, for both sides, done in a loop
 * with node:crypto (2 × X25519 keygen, 2 × X25519 derive, 2 × Ed25519 sign with a cached key, 2 ×
 * Ed25519 verify with a fresh public key object): an upper bound on handshakes/s for one core
 * doing both sides. The ratio is how close a full handshake comes to that floor.
 *
 * BENCH_SCALE scales the counts. BENCH_ONLY=sequential or BENCH_ONLY=parallel runs only that
 * part, without the baseline (for profiling the dialing process with node --cpu-prof);
 * BENCH_PROFILE_DIR=dir writes a CPU profile of the accepting process there.
 */
import { createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, randomBytes, sign, verify } from "node:crypto"
import { Context, Effect, Layer } from "effect"
import * as Endpoint from "../src/domain/Endpoint.ts"
import * as NodeIdentity from "../src/layers/NodeIdentity.ts"
import * as TcpTransport from "../src/layers/TcpTransport.ts"
import { Transport } from "../src/services/Transport.ts"
import { PEER_CPU, spawnPeer } from "./_pin.ts"
import { benchChannel, benchInfo, benchKey, benchMConnection } from "./_tcp-common.ts"

const SCALE = Number(process.env["BENCH_SCALE"] ?? 1)
const PARALLEL = 16

const now = () => Number(process.hrtime.bigint()) / 1e6

const startPeer = Effect.acquireRelease(
  Effect.suspend(() => {
    // BENCH_PROFILE_DIR: the peer writes a CPU profile there (it exits on SIGINT so the profile is written).
    const dir = process.env["BENCH_PROFILE_DIR"]
    const profile = dir === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${dir}`, "--import", "data:text/javascript,process.on('SIGINT',()=>process.exit(0))"]
    // Pinned as bench/_pin.ts says: each side has a core.
    return spawnPeer(PEER_CPU, profile, ["ours-accept"])
  }),
  ({ child }) => Effect.sync(() => child.kill("SIGINT"))
)

// ------------------------------------------------------------------------------------------------
// The crypto floor: what both sides of one handshake compute, in node:crypto, nothing else.

const X25519_PKCS8 = Buffer.from("302e020100300506032b656e04220420", "hex")
const X25519_SPKI = Buffer.from("302a300506032b656e032100", "hex")
const ED25519_SPKI = Buffer.from("302a300506032b6570032100", "hex")

const cryptoPerSecond = (count: number): number => {
  const signer = generateKeyPairSync("ed25519")
  const edPub = signer.publicKey.export({ format: "der", type: "spki" }).subarray(-32)
  const challenge = randomBytes(32)
  const ephemeral = () => {
    const priv = createPrivateKey({ key: Buffer.concat([X25519_PKCS8, randomBytes(32)]), format: "der", type: "pkcs8" })
    return { priv, pub: createPublicKey(priv).export({ format: "der", type: "spki" }).subarray(-32) }
  }
  const one = () => {
    const a = ephemeral()
    const b = ephemeral()
    diffieHellman({ privateKey: a.priv, publicKey: createPublicKey({ key: Buffer.concat([X25519_SPKI, b.pub]), format: "der", type: "spki" }) })
    diffieHellman({ privateKey: b.priv, publicKey: createPublicKey({ key: Buffer.concat([X25519_SPKI, a.pub]), format: "der", type: "spki" }) })
    for (let side = 0; side < 2; side++) {
      const sig = sign(null, challenge, signer.privateKey)
      const pub = createPublicKey({ key: Buffer.concat([ED25519_SPKI, edPub]), format: "der", type: "spki" })
      if (!verify(null, challenge, pub, sig)) throw new Error("bad signature")
    }
  }
  for (let i = 0; i < Math.min(200, count); i++) one()
  const start = now()
  for (let i = 0; i < count; i++) one()
  return count / ((now() - start) / 1000)
}

// ------------------------------------------------------------------------------------------------

const ourTransport = Effect.map(
  Layer.build(TcpTransport.layer({ host: "127.0.0.1", port: 0, mconnection: benchMConnection }).pipe(Layer.provide(NodeIdentity.layer(benchKey(1))))),
  (ctx) => Context.get(ctx, Transport)
)

const options = { nodeInfo: benchInfo(benchKey(1)), nodeKey: benchKey(1), expectedId: benchKey(2).nodeId, channels: [benchChannel] }

/** One dial with a full handshake; the connection is closed at once. */
const dialOnce = (t: Transport["Service"], port: number) =>
  Effect.scoped(Effect.gen(function* () {
    const conn = yield* t.dial(Endpoint.make({ protocol: "mconn", ip: "127.0.0.1", port }))
    yield* conn.handshake(options)
  }))

const rate = (t: Transport["Service"], port: number, count: number, parallel: number) =>
  Effect.gen(function* () {
    const perFiber = Math.ceil(count / parallel)
    const cpu = process.cpuUsage()
    const start = now()
    yield* Effect.forEach(
      Array.from({ length: parallel }, (_, i) => i),
      () => Effect.gen(function* () {
        for (let i = 0; i < perFiber; i++) yield* dialOnce(t, port)
      }),
      { concurrency: "unbounded", discard: true }
    )
    const seconds = (now() - start) / 1000
    const used = process.cpuUsage(cpu)
    return { perSecond: (perFiber * parallel) / seconds, cpuUs: (used.user + used.system) / (perFiber * parallel) }
  })

const round = (x: number) => Math.round(x)

const main = Effect.scoped(Effect.gen(function* () {
  const { port } = yield* startPeer
  const t = yield* ourTransport
  // Warm-up: both processes JIT-compile the whole path.
  yield* rate(t, port, 200, 1)
  yield* rate(t, port, 200, PARALLEL)
  const only = process.env["BENCH_ONLY"]
  if (only !== undefined) {
    const r = yield* rate(t, port, Math.floor(2000 * SCALE), only === "parallel" ? PARALLEL : 1)
    console.log(JSON.stringify({ name: `handshake-${only}-profile`, handshakes_per_s: round(r.perSecond), dialer_cpu_us: round(r.cpuUs) }))
    return
  }
  const baseline = cryptoPerSecond(Math.max(200, Math.floor(2000 * SCALE)))
  const sequential = yield* rate(t, port, Math.max(100, Math.floor(1000 * SCALE)), 1)
  const parallel = yield* rate(t, port, Math.max(160, Math.floor(3200 * SCALE)), PARALLEL)
  const uptime = (yield* Effect.promise(() => import("node:os"))).loadavg()[0]!
  // dialer_cpu_us: CPU time (user + system) of the dialing process per handshake; the accepting side is similar.
  const line = (name: string, r: { perSecond: number; cpuUs: number }, extra: object) =>
    console.log(JSON.stringify({ name, ...extra, handshakes_per_s: round(r.perSecond), baseline: round(baseline), ratio: +(r.perSecond / baseline).toFixed(3), dialer_cpu_us: round(r.cpuUs), load1: +uptime.toFixed(2) }))
  line("handshake-sequential", sequential, {})
  line("handshake-parallel", parallel, { parallel: PARALLEL })
}))

Effect.runPromise(main).then(() => process.exit(0), (e) => {
  console.error(e)
  process.exit(1)
})

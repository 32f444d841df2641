/**
 * The other process of the TCP benchmarks. Modes (argv[2]):
 *   ours-sink SIZE COUNT   accept one connection, handshake, receive COUNT messages, reply with the CPU time spent
 *   ours-echo              accept one connection, handshake, echo every message
 *   ours-accept            accept and handshake connections forever (handshake rate, idle conns)
 *   raw-sink BYTES         accept a raw socket, open sealed frames until BYTES plaintext, reply likewise (1 frame)
 *   raw-echo               accept a raw socket, echo each sealed frame's plaintext in one sealed frame
 * Prints "PORT <n>" when listening, then runs until killed or done.
 */
import * as Net from "node:net"
import { Context, Effect, Layer, Scope } from "effect"
import * as TcpTransport from "../src/layers/TcpTransport.ts"
import * as NodeIdentity from "../src/layers/NodeIdentity.ts"
import { Transport } from "../src/services/Transport.ts"
import { FrameOpener, FrameSealer } from "../src/wire/FrameCipher.ts"
import { SecretReader, SecretWriter } from "../src/wire/SecretStream.ts"
import { defaultAead } from "../src/wire/SodiumAead.ts"
import { benchChannel, benchInfo, benchKey, benchMConnection, RAW_KEY_A, RAW_KEY_B } from "./_tcp-common.ts"

const [mode, arg1, arg2] = process.argv.slice(2)

/** CPU time (user + system) of this process, in µs. */
const cpuNow = () => {
  const u = process.cpuUsage()
  return u.user + u.system
}

/** The sinks' reply: the CPU time (µs) spent receiving, as a float64. */
const cpuReply = (us: number) => {
  const out = new Uint8Array(8)
  new DataView(out.buffer).setFloat64(0, us)
  return out
}

const ours = Effect.gen(function* () {
  const key = benchKey(2)
  const ctx = yield* Layer.build(TcpTransport.layer({ host: "127.0.0.1", port: 0, mconnection: benchMConnection }).pipe(Layer.provide(NodeIdentity.layer(key))))
  const t = Context.get(ctx, Transport)
  const [ep] = yield* t.endpoints
  console.log(`PORT ${ep!.port}`)
  const options = { nodeInfo: benchInfo(key), nodeKey: key, channels: [benchChannel] }
  if (mode === "ours-accept") {
    while (true) {
      const scope = yield* Scope.make()
      const conn = yield* Scope.provide(t.accept, scope)
      yield* Effect.forkDetach(Effect.ignore(conn.handshake(options)))
    }
  }
  const conn = yield* t.accept
  yield* conn.handshake(options)
  if (mode === "ours-sink") {
    const count = Number(arg2)
    yield* conn.receive
    const cpu = cpuNow()
    for (let i = 1; i < count; i++) yield* conn.receive
    yield* conn.send(benchChannel.id, cpuReply(cpuNow() - cpu))
    yield* Effect.sleep(1000)
    return
  }
  // Echo until the other side goes (then exit normally, so a profiled run writes its profile).
  // A plain loop: `Effect.forever` yields to the event loop (a setImmediate) every round.
  yield* Effect.gen(function* () {
    while (true) {
      const m = yield* conn.receive
      yield* conn.send(m.channelId, m.data)
    }
  }).pipe(Effect.ignore)
})

const raw = () => {
  const server = Net.createServer((socket) => {
    socket.setNoDelay(true)
    const reader = new SecretReader(new FrameOpener(RAW_KEY_A, { aead: defaultAead }))
    const writer = new SecretWriter(new FrameSealer(RAW_KEY_B, { aead: defaultAead }))
    let received = 0
    let cpu = 0
    const target = Number(arg1)
    socket.on("data", (chunk) => {
      if (cpu === 0) cpu = cpuNow()
      for (const pt of reader.push(chunk)) {
        if (mode === "raw-echo") socket.write(writer.seal(pt))
        else {
          received += pt.length
          if (received >= target) socket.write(writer.seal(cpuReply(cpuNow() - cpu)))
        }
      }
    })
  })
  server.listen(0, "127.0.0.1", () => console.log(`PORT ${(server.address() as Net.AddressInfo).port}`))
}

if (mode?.startsWith("raw")) raw()
else Effect.runPromise(Effect.scoped(ours)).then(() => process.exit(0), (e) => {
  console.error(e)
  process.exit(1)
})

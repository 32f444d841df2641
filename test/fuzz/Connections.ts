/**
 * The connection-level fuzzer: a whole node (TCP transport, router, PEX, SQLite peer store) takes
 * one raw peer after another. Each raw peer does a correct SecretConnection handshake and NodeInfo
 * exchange with a fresh key from a fresh loopback address, then sends a generated plaintext stream
 * (mutated sequences and crossovers of valid pings, pongs, PEX messages and channel messages,
 * sealed properly), then 1,100 zero bytes: whatever state the stream left the connection in, those
 * end it with an empty packet, which the node must refuse. One stream in four is sent in bad
 * frames instead (a flipped bit, or a length field past the frame). For every stream the node must close the connection
 * within a bound, and through all of them a friendly peer stays connected and answered, no fiber
 * of the node dies (a defect in any log line fails the run), and the node is left with only the
 * friend. Shared by `npm run fuzz` and the test file.
 *
 * The node under test never dials: fuzzed PEX addresses could name any host, so it and the friend
 * have no outbound slots (only the friend's persistent dial to the node is made).
 */
import { create, toBinary } from "@bufbuild/protobuf"
import { StringValueSchema } from "@bufbuild/protobuf/wkt"
import { createHash } from "node:crypto"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Cause, Context, Effect, Exit, Layer, Logger, References, Scope, Stream } from "effect"
import * as ChannelDescriptor from "../../src/domain/ChannelDescriptor.ts"
import * as Envelope from "../../src/domain/Envelope.ts"
import * as NodeAddress from "../../src/domain/NodeAddress.ts"
import * as NodeInfo from "../../src/domain/NodeInfo.ts"
import * as NodeKey from "../../src/domain/NodeKey.ts"
import * as Node from "../../src/layers/Node.ts"
import { addrsMessage, netAddress, requestMessage } from "../../src/domain/PexWire.ts"
import { MessageSchema } from "../../src/proto/tendermint/p2p/pex_pb.ts"
import { PeerManager } from "../../src/services/PeerManager.ts"
import { Router } from "../../src/services/Router.ts"
import { Transport } from "../../src/services/Transport.ts"
import { firstUp } from "../../src/testing/Assertions.ts"
import { concat, RawPeer } from "../../src/testing/RawPeer.ts"
import { within } from "../../src/testing/Within.ts"
import { encodePacketMsg, encodePing, encodePong } from "../../src/wire/PacketCodec.ts"
import { save, type Report } from "./Fuzz.ts"
import { generate, Random } from "./Mutator.ts"

/** The reactor channel both nodes run: every message is echoed back. */
const echo = ChannelDescriptor.make({ id: 0x30, messageType: StringValueSchema, recvMessageCapacity: 4096 })
const NETWORK = "fuzz"
/** How long the node may take to close a connection once the terminator is sent. */
const CLOSE_WITHIN_MS = 3000
/** Enough zeros to complete any partial packet (10-byte prefix + 1,034-byte body), then an empty packet. */
const TERMINATOR = new Uint8Array(1100)

const text = (value: string) => toBinary(StringValueSchema, create(StringValueSchema, { value }))
const seeds: ReadonlyArray<Uint8Array> = [
  concat(encodePing(), encodePong()),
  encodePacketMsg(0x00, true, toBinary(MessageSchema, requestMessage())),
  encodePacketMsg(0x00, true, toBinary(MessageSchema, addrsMessage([netAddress("ab".repeat(20), "10.1.2.3", 26656), netAddress("cd".repeat(20), "::1", 1)]))),
  concat(encodePacketMsg(0x30, true, text("hello")), encodePing()),
  // One message in three packets.
  (() => {
    const big = text("x".repeat(2500))
    return concat(encodePacketMsg(0x30, false, big.subarray(0, 1024)), encodePacketMsg(0x30, false, big.subarray(1024, 2048)), encodePacketMsg(0x30, true, big.subarray(2048)))
  })()
]

/** A node on a free port of `host`, with a temporary home (removed with the scope). */
const startNode = (moniker: string, host: string, config: Partial<Node.Config> = {}) =>
  Effect.gen(function* () {
    const home = yield* Effect.acquireRelease(Effect.sync(() => mkdtempSync(join(tmpdir(), "p2p-fuzz-"))), (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
    const context = yield* Layer.build(Node.layer({ home, network: NETWORK, moniker, listen: { host, port: 0 }, channels: [echo], maxOutboundPeers: 0, ...config }))
    const router = Context.get(context, Router)
    const channel = yield* router.openChannel(echo)
    yield* Effect.forkScoped(Stream.runForEach(channel.messages, (m) => channel.send(Envelope.to(m.from, m.message))))
    const [endpoint] = yield* Context.get(context, Transport).endpoints
    const info = yield* router.nodeInfo
    return { context, router, channel, port: endpoint!.port, info, address: NodeAddress.unsafeParse(`${info.nodeId}@${host}:${endpoint!.port}`) }
  })

/**
 * Sends the i-th stream. Three in four are valid frames carrying the fuzzed plaintext and the
 * terminator; the fourth corrupts the sealed bytes instead (one flipped bit, which the node must
 * refuse as a frame that does not open), or follows the plaintext with a frame whose length field
 * claims more than a frame holds.
 */
const sendFuzzed = (peer: RawPeer, i: number, input: Uint8Array) => {
  if (i % 4 !== 3 || input.length === 0) return peer.sendPlain(concat(input, TERMINATOR))
  if (i % 8 === 3) {
    const sealed = peer.secure.writer.seal(input)
    const at = (input[0]! * 257 + input.length) % sealed.length
    sealed[at]! ^= 1 << (input[input.length - 1]! % 8)
    return peer.write(sealed)
  }
  peer.sendPlain(input)
  peer.sendFrameClaiming(1025 + (input[0]! % 200) * 1000)
}

/** The i-th raw peer's source address: its own 127.x.y.z, so no per-IP strike or limit carries over. */
const sourceOf = (i: number) => `127.${70 + Math.floor(i / 62_500)}.${Math.floor(i / 250) % 250}.${1 + (i % 250)}`

/**
 * Runs `cases` fuzzed connections (or until `seconds` pass) against one node. A failure is a
 * stream after which the node did not close the connection in time, a friend that went down, a
 * defect logged by the node, or leftovers after the run; failing streams are saved under
 * `corpus/connection/` when `save`.
 */
export const fuzzConnections = (options: { readonly cases: number; readonly seconds?: number; readonly seed: number; readonly save: boolean }): Effect.Effect<Report> =>
  Effect.scoped(Effect.gen(function* () {
    const started = performance.now()
    const deadline = options.seconds === undefined ? Number.POSITIVE_INFINITY : started + options.seconds * 1000
    const examples: Array<{ message: string; saved: string | undefined }> = []
    let failures = 0
    const failed = (message: string, input?: Uint8Array) => {
      failures++
      if (examples.length < 5) examples.push({ message, saved: input !== undefined && options.save ? save("connection", input) : undefined })
    }
    const defects: Array<string> = []
    const watchDefects = Logger.make(({ cause, message }) => {
      if (Cause.hasDies(cause)) defects.push(`${Array.isArray(message) ? message.join(" ") : String(message)}: ${Cause.pretty(cause)}`)
    })
    const scope = yield* Scope.Scope
    const withLogger = <A, E>(effect: Effect.Effect<A, E, Scope.Scope>) =>
      effect.pipe(
        Scope.provide(scope),
        Effect.provideService(Logger.CurrentLoggers, new Set([watchDefects])),
        Effect.provideService(References.MinimumLogLevel, "Debug")
      )

    const victim = yield* withLogger(startNode("victim", "127.0.0.1"))
    const friend = yield* withLogger(startNode("friend", "127.0.0.2", { persistentPeers: [victim.address], pex: false }))
    const updates = yield* Context.get(victim.context, PeerManager).subscribe
    yield* within("10 seconds", "the friend to connect", firstUp(updates, friend.info.nodeId)).pipe(Effect.orDie)
    let friendDowns = 0
    const watch = yield* Context.get(victim.context, PeerManager).subscribe
    yield* Effect.forkScoped(Stream.runForEach(watch, (u) => Effect.sync(() => {
      if (u.nodeId === friend.info.nodeId && u.status === "down") friendDowns++
    })))

    const r = new Random(options.seed)
    let inputs = 0
    for (; inputs < options.cases && performance.now() < deadline; inputs++) {
      const input = generate(r, seeds, 4096)
      const key = NodeKey.fromSeed(new Uint8Array(createHash("sha256").update(`${options.seed}/${inputs}`).digest()))
      const info = NodeInfo.make({ nodeId: key.nodeId, listenAddr: "tcp://127.0.0.1:1", network: NETWORK, moniker: `raw-${inputs}`, channels: [0x00, 0x30] })
      const outcome = yield* Effect.exit(within(CLOSE_WITHIN_MS * 2, "a fuzzed connection", Effect.promise(async () => {
        const peer = await RawPeer.connect(victim.port, sourceOf(inputs))
        try {
          await peer.handshake(key, info)
        } catch (e) {
          peer.destroy()
          return `the handshake failed: ${String(e)}`
        }
        sendFuzzed(peer, inputs, input)
        const closed = await Promise.race([peer.closed.then(() => true), new Promise<false>((resolve) => setTimeout(() => resolve(false), CLOSE_WITHIN_MS))])
        peer.destroy()
        return closed ? undefined : `the node kept the connection open ${CLOSE_WITHIN_MS} ms after an empty packet`
      })))
      if (Exit.isFailure(outcome)) failed(`case ${inputs}: ${Cause.pretty(outcome.cause)}`, input)
      else if (outcome.value !== undefined) failed(`case ${inputs}: ${outcome.value}`, input)
    }

    // Afterwards: the friend is still there and answered, and nothing else is.
    if (friendDowns > 0) failed(`the friend went down ${friendDowns} times`)
    const answered = yield* Effect.exit(within("5 seconds", "the friend's echo", Effect.gen(function* () {
      yield* friend.channel.send(Envelope.to(victim.info.nodeId, create(StringValueSchema, { value: "still there?" })))
      return yield* Stream.runHead(Stream.filter(friend.channel.messages, (m) => m.message.value === "still there?"))
    })))
    if (Exit.isFailure(answered)) failed(`the node stopped answering the friend: ${Cause.pretty(answered.cause)}`)
    const leftovers = yield* Effect.exit(within("5 seconds", "the raw peers to be gone", Effect.gen(function* () {
      while ((yield* victim.router.peers).length > 1) yield* Effect.sleep("20 millis")
    })))
    if (Exit.isFailure(leftovers)) failed(`the node still routes ${(yield* victim.router.peers).length - 1} raw peers`)
    for (const d of defects.slice(0, 3)) failed(`a defect: ${d}`)
    if (defects.length > 3) failures += defects.length - 3
    return { target: "connection", inputs, failures, seconds: Number(((performance.now() - started) / 1000).toFixed(2)), seed: options.seed, examples }
  }).pipe(Effect.orDie))

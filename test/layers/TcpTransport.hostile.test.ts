/**
 * Hostile peers against the TCP transport. A "raw peer" (a `node:net` socket driven by hand with
 * the pure pieces of `src/wire`) does a correct SecretConnection handshake and NodeInfo exchange
 * and then misbehaves, or misbehaves earlier. For every case: the typed error our side gets, the
 * socket is closed (the raw peer sees 'close'), the connection's resources are freed
 * (`awaitClosed` completes), and the transport keeps accepting (a normal peer handshakes after).
 * Real sockets on 127.0.0.1; every wait is bounded.
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Duration, Effect, Exit, Fiber, Layer, Scope } from "effect"
import { create, toBinary } from "@bufbuild/protobuf"
import { randomBytes } from "node:crypto"
import * as Net from "node:net"
import * as ChannelDescriptor from "../../src/domain/ChannelDescriptor.ts"
import * as Endpoint from "../../src/domain/Endpoint.ts"
import * as NodeInfo from "../../src/domain/NodeInfo.ts"
import * as NodeKey from "../../src/domain/NodeKey.ts"
import * as TcpTransport from "../../src/layers/TcpTransport.ts"
import { AuthSigMessageSchema } from "../../src/proto/tendermint/p2p/conn_pb.ts"
import { MessageSchema } from "../../src/proto/tendermint/p2p/pex_pb.ts"
import * as NodeIdentity from "../../src/layers/NodeIdentity.ts"
import { Transport, type Connection, type HandshakeError, type HandshakeOptions } from "../../src/services/Transport.ts"
import { concat, delimited, RawPeer } from "../../src/testing/RawPeer.ts"
import { key, nodeInfo } from "../../src/testing/TransportSuite.ts"
import { within } from "../../src/testing/Within.ts"
import { SEALED_FRAME_SIZE } from "../../src/wire/FrameCipher.ts"
import { encodePacketMsg, encodePing, encodePong } from "../../src/wire/PacketCodec.ts"
import * as Crypto from "../../src/wire/SecretConnectionCrypto.ts"
import { encodeUvarint } from "../../src/wire/Uvarint.ts"
import { hex } from "../fixtures.ts"

// ---------------------------------------------------------------------------------------------
// The raw peer (effect-p2p/testing's RawPeer)

/** The uvarint 2^31 (2 GiB): `80 80 80 80 08`. */
const TWO_GIB = hex("8080808008")

/** A raw server on a free port; `accepted` is its first connection. */
const rawServer = Effect.acquireRelease(
  Effect.callback<{ readonly port: number; readonly server: Net.Server; readonly accepted: Promise<RawPeer> }>((resume) => {
    const server = Net.createServer()
    const accepted = new Promise<RawPeer>((resolve) => server.once("connection", (s) => resolve(new RawPeer(s))))
    server.listen({ host: "127.0.0.1", port: 0 }, () => {
      const address = server.address() as Net.AddressInfo
      resume(Effect.succeed({ port: address.port, server, accepted }))
    })
  }),
  ({ server }) => Effect.sync(() => server.close())
)

// ---------------------------------------------------------------------------------------------
// Our side

const OURS = key(1)
const NORMAL = key(2)
const RAW = key(3)
const HANDSHAKE_TIMEOUT = Duration.millis(300)
/** For the "rejected at once" cases: long enough that a timeout cannot pass for a rejection. */
const LONG_TIMEOUT = Duration.seconds(3)
/** What "at once" means here: far below LONG_TIMEOUT and the 300 ms handshake timeout. */
const PROMPT_MS = 250
/** Bound on every wait for something that should happen. */
const WAIT_MS = 2000

const makeTransport = (k: NodeKey.NodeKey, options: TcpTransport.Options = {}) =>
  Effect.map(
    Layer.build(TcpTransport.layer({ host: "127.0.0.1", port: 0, ...options }).pipe(Layer.provide(NodeIdentity.layer(k)))),
    (ctx) => Context.get(ctx, Transport)
  )

const portOf = (t: Transport["Service"]) => Effect.map(t.endpoints, (eps) => eps[0]!.port)

/** Runs a raw-peer step, bounded. A rejection is a test failure (a defect). */
const raw = <A>(what: string, f: () => Promise<A>, millis = WAIT_MS) => within(millis, what, Effect.promise(f)).pipe(Effect.orDie)

/** A raw client connects; our transport accepts it. */
const acceptRaw = (t: Transport["Service"]) =>
  Effect.gen(function* () {
    const port = yield* portOf(t)
    const peer = yield* raw("raw connect", () => RawPeer.connect(port))
    const conn = yield* within(WAIT_MS, "accept", t.accept).pipe(Effect.orDie)
    return { peer, conn }
  })

const ourOptions = (extra: Partial<HandshakeOptions> = {}): HandshakeOptions => ({
  nodeInfo: nodeInfo(OURS),
  nodeKey: OURS,
  timeout: HANDSHAKE_TIMEOUT,
  ...extra
})

/** Our handshake, in the background. */
const startHandshake = (conn: Connection, extra: Partial<HandshakeOptions> = {}) =>
  Effect.forkChild(conn.handshake(ourOptions(extra)))

/** The handshake's failure (a success fails the test), and how long after `since` it came. */
const handshakeFailure = (fiber: Fiber.Fiber<unknown, HandshakeError>, since = performance.now()) =>
  Effect.gen(function* () {
    const exit = yield* within(WAIT_MS + Duration.toMillis(LONG_TIMEOUT), "handshake to end", Fiber.await(fiber)).pipe(Effect.orDie)
    if (Exit.isSuccess(exit)) return yield* Effect.die(new Error("the handshake succeeded with a hostile peer"))
    const error = yield* Effect.flip(Fiber.join(fiber))
    return { error, elapsed: performance.now() - since }
  })

/** `receive`'s failure after the peer misbehaved, and how long after `since` it came. */
const receiveFailure = (conn: Connection, since = performance.now()) =>
  Effect.gen(function* () {
    const exit = yield* within(WAIT_MS, "receive to fail", Effect.exit(conn.receive)).pipe(Effect.orDie)
    if (Exit.isSuccess(exit)) return yield* Effect.die(new Error(`received ${JSON.stringify(exit.value.channelId)} instead of an error`))
    const error = yield* Effect.flip(conn.receive)
    return { error, elapsed: performance.now() - since }
  })

/**
 * The socket is closed on both ends and the connection's resources are released. After a failed
 * handshake the connection is closed for good: receive and send fail with ConnectionClosed, and it
 * cannot be handshaken again.
 */
const assertClosed = (peer: RawPeer, conn: Connection, phase: "handshake" | "mconnection" = "handshake") =>
  Effect.gen(function* () {
    yield* raw("the raw peer to see the socket close", () => peer.closed)
    yield* within(WAIT_MS, "awaitClosed", conn.awaitClosed).pipe(Effect.orDie)
    assert.isTrue(peer.isClosed)
    if (phase === "handshake") {
      assert.strictEqual(tagOf(yield* Effect.flip(conn.receive)), "ConnectionClosed")
      assert.strictEqual(tagOf(yield* Effect.flip(conn.send(0xf0, Uint8Array.of(1)))), "ConnectionClosed")
      assert.strictEqual(tagOf(yield* Effect.flip(conn.handshake(ourOptions()))), "HandshakeAuthFailed")
    }
  })

/** A normal node dials the transport, both handshake, and a message goes through. */
const assertStillAccepts = (t: Transport["Service"]) =>
  Effect.scoped(Effect.gen(function* () {
    const other = yield* makeTransport(NORMAL)
    const port = yield* portOf(t)
    const accepting = yield* Effect.forkChild(t.accept)
    const out = yield* other.dial(Endpoint.make({ protocol: "mconn", ip: "127.0.0.1", port }))
    const inbound = yield* Fiber.join(accepting)
    const [fromUs, fromThem] = yield* Effect.all([
      out.handshake({ nodeInfo: nodeInfo(NORMAL), nodeKey: NORMAL, expectedId: OURS.nodeId, timeout: LONG_TIMEOUT }),
      inbound.handshake({ nodeInfo: nodeInfo(OURS), nodeKey: OURS, timeout: LONG_TIMEOUT })
    ], { concurrency: 2 })
    assert.strictEqual(fromUs.nodeInfo.nodeId, OURS.nodeId)
    assert.strictEqual(fromThem.nodeInfo.nodeId, NORMAL.nodeId)
    yield* out.send(0xf0, Uint8Array.of(1, 2, 3))
    const got = yield* inbound.receive
    assert.deepStrictEqual([got.channelId, [...got.data]], [0xf0, [1, 2, 3]])
  })).pipe((e) => within(WAIT_MS * 2, "a normal peer to connect", e), Effect.orDie)

/** Connects a raw peer that completes the handshake correctly; returns both ends, ready. */
const established = (t: Transport["Service"], extra: Partial<HandshakeOptions> = {}) =>
  Effect.gen(function* () {
    const { peer, conn } = yield* acceptRaw(t)
    const ours = yield* startHandshake(conn, { timeout: LONG_TIMEOUT, ...extra })
    yield* raw("raw handshake", async () => {
      await peer.secretHandshake(RAW)
      const info = await peer.exchangeNodeInfo(nodeInfo(RAW))
      assert.strictEqual(info?.nodeId, OURS.nodeId)
    })
    const remote = yield* Fiber.join(ours)
    assert.strictEqual(remote.nodeInfo.nodeId, RAW.nodeId)
    return { peer, conn }
  })

/** A raw peer writes `bytes` as its opening: our handshake fails promptly with HandshakeAuthFailed mentioning `expected`, and the socket is closed. */
const refusedPromptly = (t: Transport["Service"], bytes: Uint8Array, expected: string) =>
  Effect.gen(function* () {
    const { peer, conn } = yield* acceptRaw(t)
    const fiber = yield* startHandshake(conn, { timeout: LONG_TIMEOUT })
    peer.write(bytes)
    const { error, elapsed } = yield* handshakeFailure(fiber)
    assert.strictEqual(error._tag, "HandshakeAuthFailed", Buffer.from(bytes).toString("hex"))
    assert.include(error.message, expected)
    assert.isBelow(elapsed, PROMPT_MS)
    yield* assertClosed(peer, conn)
  })

const live = (name: string, body: () => Effect.Effect<void, unknown, Scope.Scope>) =>
  it.live(name, () => Effect.scoped(body()))

const tagOf = (e: { readonly _tag: string }) => e._tag

// ---------------------------------------------------------------------------------------------

describe("TcpTransport against hostile peers", () => {
  describe("the inbound socket budget (maxInboundSockets)", () => {
    live("sockets over the budget are closed at accept; a slot freed by a close is taken by the next one", () =>
      Effect.gen(function* () {
        const t = yield* makeTransport(OURS, { maxInboundSockets: 2 })
        const port = yield* portOf(t)
        const held = [yield* acceptRaw(t), yield* acceptRaw(t)]
        const over = yield* raw("three more connects", () => Promise.all([RawPeer.connect(port), RawPeer.connect(port), RawPeer.connect(port)]))
        yield* raw("the three to be closed by the node", () => Promise.all(over.map((p) => p.closed)))
        assert.isFalse(held[0]!.peer.isClosed)
        held[0]!.peer.destroy()
        yield* within(WAIT_MS, "the freed socket to close", held[0]!.conn.awaitClosed)
        const next = yield* acceptRaw(t)
        assert.isFalse(next.peer.isClosed)
      }))
  })

  describe("before the SecretConnection is up (plaintext phase)", () => {
    live("a peer that connects and sends nothing is dropped at the handshake timeout", () =>
      Effect.gen(function* () {
        // One pending connection at most: the silent peer's slot must come free for the next one.
        const t = yield* makeTransport(OURS, { maxPendingConnections: 1 })
        const { peer, conn } = yield* acceptRaw(t)
        const start = performance.now()
        const { error, elapsed } = yield* handshakeFailure(yield* startHandshake(conn), start)
        assert.strictEqual(error._tag, "HandshakeTimeout")
        if (error._tag === "HandshakeTimeout") assert.strictEqual(error.timeoutMillis, 300)
        assert.isAtLeast(elapsed, 250)
        assert.isBelow(elapsed, 1500)
        yield* assertClosed(peer, conn)
        yield* assertStillAccepts(t)
      }))

    live("many silent peers at once each time out after one handshake timeout, not one after another", () =>
      Effect.gen(function* () {
        const t = yield* makeTransport(OURS, { maxPendingConnections: 8 })
        const start = performance.now()
        const pairs = yield* Effect.all(Array.from({ length: 6 }, () => acceptRaw(t)))
        const fibers = yield* Effect.all(pairs.map(({ conn }) => startHandshake(conn)))
        for (const [i, fiber] of fibers.entries()) {
          const { error } = yield* handshakeFailure(fiber)
          assert.strictEqual(error._tag, "HandshakeTimeout")
          yield* assertClosed(pairs[i]!.peer, pairs[i]!.conn)
        }
        assert.isBelow(performance.now() - start, 1500)
        yield* assertStillAccepts(t)
      }))

    live("a peer that hangs up mid-key fails the handshake with ConnectionClosed at once", () =>
      Effect.gen(function* () {
        const t = yield* makeTransport(OURS)
        const { peer, conn } = yield* acceptRaw(t)
        const fiber = yield* startHandshake(conn, { timeout: LONG_TIMEOUT })
        peer.write(hex("220a20aabbcc"))
        peer.socket.end()
        const start = performance.now()
        const { error, elapsed } = yield* handshakeFailure(fiber, start)
        assert.strictEqual(error._tag, "ConnectionClosed")
        assert.isBelow(elapsed, PROMPT_MS)
        yield* assertClosed(peer, conn)
        yield* assertStillAccepts(t)
      }))

    live("a peer that connects and resets before we accept: the handshake fails at once and awaitClosed completes", () =>
      Effect.gen(function* () {
        const t = yield* makeTransport(OURS)
        const port = yield* portOf(t)
        const peer = yield* raw("raw connect", () => RawPeer.connect(port))
        peer.write(hex("22"))
        peer.socket.resetAndDestroy()
        yield* raw("raw close", () => peer.closed)
        yield* Effect.sleep(50) // let the reset reach our socket before we accept it
        const conn = yield* within(WAIT_MS, "accept", t.accept).pipe(Effect.orDie)
        const { error, elapsed } = yield* handshakeFailure(yield* startHandshake(conn, { timeout: LONG_TIMEOUT }))
        assert.include(["ConnectionClosed", "ConnectionError"], error._tag)
        assert.isBelow(elapsed, PROMPT_MS)
        yield* within(WAIT_MS, "awaitClosed", conn.awaitClosed).pipe(Effect.orDie)
        yield* assertStillAccepts(t)
      }))

    live("random bytes instead of the ephemeral key fail with HandshakeAuthFailed", () =>
      Effect.gen(function* () {
        const t = yield* makeTransport(OURS)
        const variants = [
          // Random, with a first byte that is not 0x22.
          concat(Uint8Array.of(0x99), randomBytes(34)),
          // The right length prefix, then a body that is not `0a 20 <32 bytes>`.
          concat(Uint8Array.of(0x22, 0x12, 0x20), randomBytes(32)),
          concat(Uint8Array.of(0x22, 0x0a, 0x1f), randomBytes(32))
        ]
        for (const bytes of variants) yield* refusedPromptly(t, bytes, "ephemeral key")
        yield* assertStillAccepts(t)
      }))

    live("a valid ephemeral key followed by garbage instead of a sealed frame fails with HandshakeAuthFailed", () =>
      Effect.gen(function* () {
        const t = yield* makeTransport(OURS)
        // In one write, so the garbage arrives with the key and sits in the plaintext reader's leftover.
        yield* refusedPromptly(t, concat(Crypto.encodeEphemeralKey(Crypto.generateEphemeralKeyPair().publicKey), randomBytes(2 * SEALED_FRAME_SIZE + 5)), "decrypt")
        yield* assertStillAccepts(t)
      }))

    live("each low-order ephemeral key is refused with HandshakeAuthFailed", () =>
      Effect.gen(function* () {
        const t = yield* makeTransport(OURS)
        assert.strictEqual(Crypto.LOW_ORDER_POINTS.length, 7)
        for (const point of Crypto.LOW_ORDER_POINTS) yield* refusedPromptly(t, Crypto.encodeEphemeralKey(point), "low-order")
        yield* assertStillAccepts(t)
      }))

    live("a length prefix other than 0x22 is refused at once, without waiting for a body (2 GiB, 1 MiB + 1, 0x21, 0x23, 0)", () =>
      Effect.gen(function* () {
        const t = yield* makeTransport(OURS)
        // Only the prefix is sent: a reader that waited for the 34 body bytes (or the announced
        // length) would sit there until the handshake timeout.
        for (const prefix of [TWO_GIB, hex("818040"), hex("21"), hex("23"), hex("00"), hex("ffffffffffffffffffff01")]) {
          const { peer, conn } = yield* acceptRaw(t)
          const fiber = yield* startHandshake(conn, { timeout: LONG_TIMEOUT })
          const start = performance.now()
          peer.write(prefix)
          const { error, elapsed } = yield* handshakeFailure(fiber, start)
          assert.strictEqual(error._tag, "HandshakeAuthFailed", Buffer.from(prefix).toString("hex"))
          assert.isBelow(elapsed, PROMPT_MS, `prefix ${Buffer.from(prefix).toString("hex")} took ${elapsed} ms`)
          yield* assertClosed(peer, conn)
        }
        yield* assertStillAccepts(t)
      }))

    live("a peer that reflects our own bytes back fails to authenticate", () =>
      Effect.gen(function* () {
        const t = yield* makeTransport(OURS)
        const { peer, conn } = yield* acceptRaw(t)
        peer.socket.on("data", (c: Buffer) => peer.write(c))
        const { error, elapsed } = yield* handshakeFailure(yield* startHandshake(conn, { timeout: LONG_TIMEOUT }))
        assert.strictEqual(error._tag, "HandshakeAuthFailed")
        assert.isBelow(elapsed, PROMPT_MS)
        yield* assertClosed(peer, conn)
        yield* assertStillAccepts(t)
      }))
  })

  describe("authentication (AuthSigMessage)", () => {
    const authCase = (name: string, authSig: (challenge: Uint8Array) => Uint8Array, expected: string) =>
      live(name, () =>
        Effect.gen(function* () {
          const t = yield* makeTransport(OURS)
          const { peer, conn } = yield* acceptRaw(t)
          const fiber = yield* startHandshake(conn, { timeout: LONG_TIMEOUT })
          yield* raw("raw handshake", () => peer.secretHandshake(RAW, { authSig, verify: false }))
          const start = performance.now()
          const { error, elapsed } = yield* handshakeFailure(fiber, start)
          assert.strictEqual(error._tag, "HandshakeAuthFailed")
          assert.include(error.message, expected)
          assert.include(error.message, "127.0.0.1")
          assert.isBelow(elapsed, PROMPT_MS)
          yield* assertClosed(peer, conn)
          yield* assertStillAccepts(t)
        }))

    authCase(
      "a signature that does not verify over our challenge",
      (challenge) => Crypto.encodeAuthSigMessage(RAW.publicKey, NodeKey.sign(RAW, challenge.map((b, i) => (i === 0 ? b ^ 1 : b)))),
      "challenge verification failed"
    )
    authCase(
      "a valid signature by one key presented with another key",
      (challenge) => Crypto.encodeAuthSigMessage(key(7).publicKey, NodeKey.sign(RAW, challenge)),
      "challenge verification failed"
    )
    authCase(
      "a non-ed25519 key (secp256k1)",
      (challenge) =>
        delimited(toBinary(AuthSigMessageSchema, create(AuthSigMessageSchema, {
          pubKey: { sum: { case: "secp256k1", value: new Uint8Array(33).fill(2) } },
          sig: NodeKey.sign(RAW, challenge)
        }))),
      "expected ed25519 pubkey"
    )
    authCase(
      "no key at all (nil pub_key)",
      (challenge) => delimited(toBinary(AuthSigMessageSchema, create(AuthSigMessageSchema, { sig: NodeKey.sign(RAW, challenge) }))),
      "no pub_key"
    )
    authCase(
      "a 31-byte ed25519 key",
      (challenge) =>
        delimited(toBinary(AuthSigMessageSchema, create(AuthSigMessageSchema, {
          pubKey: { sum: { case: "ed25519", value: RAW.publicKey.subarray(0, 31) } },
          sig: NodeKey.sign(RAW, challenge)
        }))),
      "32 bytes"
    )
    authCase("garbage protobuf", () => delimited(hex("ffffffff")), "malformed AuthSigMessage")
    authCase("an AuthSigMessage length prefix of 2 GiB (no body sent)", () => TWO_GIB, "longer than 1048576")
    authCase("an AuthSigMessage length prefix of 1 MiB + 1 (no body sent)", () => hex("818040"), "longer than 1048576")

    live("a tampered first sealed frame fails the handshake", () =>
      Effect.gen(function* () {
        const t = yield* makeTransport(OURS)
        const { peer, conn } = yield* acceptRaw(t)
        const fiber = yield* startHandshake(conn, { timeout: LONG_TIMEOUT })
        const write = peer.write.bind(peer)
        let frames = 0
        // Flip one ciphertext bit of the first sealed frame (the AuthSigMessage).
        peer.write = (bytes) => write(frames++ === 1 ? bytes.map((b, i) => (i === 10 ? b ^ 0x40 : b)) : bytes)
        yield* raw("raw handshake", () => peer.secretHandshake(RAW, { verify: false }))
        const { error, elapsed } = yield* handshakeFailure(fiber)
        assert.strictEqual(error._tag, "HandshakeAuthFailed")
        assert.include(error.message, "decrypt")
        assert.isBelow(elapsed, PROMPT_MS)
        yield* assertClosed(peer, conn)
        yield* assertStillAccepts(t)
      }))

    live("dialing a node whose key is not the dialed ID fails with UnexpectedPeer", () =>
      Effect.gen(function* () {
        const t = yield* makeTransport(OURS)
        const server = yield* rawServer
        const conn = yield* t.dial(Endpoint.make({ protocol: "mconn", ip: "127.0.0.1", port: server.port }))
        const expected = key(5).nodeId
        const fiber = yield* startHandshake(conn, { expectedId: expected, timeout: LONG_TIMEOUT })
        const peer = yield* raw("raw accept", () => server.accepted)
        yield* raw("raw handshake", async () => {
          await peer.secretHandshake(RAW)
          await peer.exchangeNodeInfo(nodeInfo(RAW))
        })
        const { error, elapsed } = yield* handshakeFailure(fiber)
        assert.strictEqual(error._tag, "UnexpectedPeer")
        if (error._tag === "UnexpectedPeer") {
          assert.strictEqual(error.expected, expected)
          assert.strictEqual(error.got, RAW.nodeId)
        }
        assert.isBelow(elapsed, PROMPT_MS)
        yield* assertClosed(peer, conn)
        yield* assertStillAccepts(t)
      }))

    live("a NodeInfo claiming another node's ID fails with PeerKeyMismatch", () =>
      Effect.gen(function* () {
        const t = yield* makeTransport(OURS)
        const { peer, conn } = yield* acceptRaw(t)
        const fiber = yield* startHandshake(conn, { timeout: LONG_TIMEOUT })
        const claimed = key(6).nodeId
        yield* raw("raw handshake", async () => {
          await peer.secretHandshake(RAW)
          await peer.exchangeNodeInfo({ ...nodeInfo(RAW), nodeId: claimed })
        })
        const { error } = yield* handshakeFailure(fiber)
        assert.strictEqual(error._tag, "PeerKeyMismatch")
        if (error._tag === "PeerKeyMismatch") {
          assert.strictEqual(error.claimed, claimed)
          assert.strictEqual(error.authenticated, RAW.nodeId)
        }
        yield* assertClosed(peer, conn)
        yield* assertStillAccepts(t)
      }))
  })

  describe("NodeInfo exchange", () => {
    const nodeInfoCase = (name: string, send: () => Uint8Array, reason: string, prompt = true) =>
      live(name, () =>
        Effect.gen(function* () {
          const t = yield* makeTransport(OURS)
          const { peer, conn } = yield* acceptRaw(t)
          const fiber = yield* startHandshake(conn, { timeout: LONG_TIMEOUT })
          yield* raw("raw handshake", () => peer.secretHandshake(RAW))
          const start = performance.now()
          peer.sendPlain(send())
          const { error, elapsed } = yield* handshakeFailure(fiber, start)
          assert.strictEqual(error._tag, "InvalidPeerNodeInfo")
          if (error._tag === "InvalidPeerNodeInfo") assert.strictEqual(error.reason, reason)
          if (prompt) assert.isBelow(elapsed, PROMPT_MS)
          yield* assertClosed(peer, conn)
          yield* assertStillAccepts(t)
        }))

    nodeInfoCase("an empty moniker", () => delimited(NodeInfo.encode(nodeInfo(RAW, { moniker: "" }))), "moniker")
    nodeInfoCase("a listen address without a port", () => delimited(NodeInfo.encode(nodeInfo(RAW, { listenAddr: "tcp://127.0.0.1" }))), "listen_addr")
    nodeInfoCase("17 channels", () => delimited(NodeInfo.encode(nodeInfo(RAW, { channels: Uint8Array.from({ length: 17 }, (_, i) => i) }))), "channels")
    nodeInfoCase("bytes that are not a DefaultNodeInfo", () => delimited(hex("0a ff ff")), "encoding")
    nodeInfoCase("a NodeInfo of more than 10240 bytes", () => {
      const body = NodeInfo.encode(nodeInfo(RAW, { moniker: "m".repeat(11_000) }))
      assert.isAbove(body.length, NodeInfo.MAX_SIZE)
      return delimited(body)
    }, "size")
    // Only the prefix is sent: the limit must apply before the body is awaited or allocated.
    nodeInfoCase("a NodeInfo length prefix of 10241 (no body sent)", () => encodeUvarint(NodeInfo.MAX_SIZE + 1), "size")
    nodeInfoCase("a NodeInfo length prefix of 2 GiB (no body sent)", () => TWO_GIB, "size")

    live("a tampered frame during the NodeInfo exchange fails the handshake with ConnectionError decrypt", () =>
      Effect.gen(function* () {
        const t = yield* makeTransport(OURS)
        const { peer, conn } = yield* acceptRaw(t)
        const fiber = yield* startHandshake(conn, { timeout: LONG_TIMEOUT })
        yield* raw("raw handshake", () => peer.secretHandshake(RAW))
        const sealed = peer.secure.writer.seal(delimited(NodeInfo.encode(nodeInfo(RAW))))
        sealed[SEALED_FRAME_SIZE - 1]! ^= 1 // the tag
        peer.write(sealed)
        const { error, elapsed } = yield* handshakeFailure(fiber)
        assert.strictEqual(error._tag, "ConnectionError")
        if (error._tag === "ConnectionError") {
          assert.strictEqual(error.reason, "decrypt")
          assert.include(error.remote, "127.0.0.1")
        }
        assert.isBelow(elapsed, PROMPT_MS)
        yield* assertClosed(peer, conn)
        yield* assertStillAccepts(t)
      }))

    live("a peer that stops after the AuthSig is dropped at the handshake timeout", () =>
      Effect.gen(function* () {
        const t = yield* makeTransport(OURS)
        const { peer, conn } = yield* acceptRaw(t)
        const fiber = yield* startHandshake(conn)
        yield* raw("raw handshake", () => peer.secretHandshake(RAW))
        const { error } = yield* handshakeFailure(fiber)
        assert.strictEqual(error._tag, "HandshakeTimeout")
        yield* assertClosed(peer, conn)
        yield* assertStillAccepts(t)
      }))
  })

  describe("after the handshake (MConnection)", () => {
    const smallChannel = ChannelDescriptor.make({ id: 0xf0, messageType: MessageSchema, recvMessageCapacity: 100 })
    const otherChannel = ChannelDescriptor.make({ id: 0x0f, messageType: MessageSchema })

    const packetCase = (
      name: string,
      misbehave: (peer: RawPeer) => void,
      reason: string,
      extra: Partial<HandshakeOptions> = {}
    ) =>
      live(name, () =>
        Effect.gen(function* () {
          const t = yield* makeTransport(OURS)
          const { peer, conn } = yield* established(t, extra)
          const start = performance.now()
          misbehave(peer)
          const { error, elapsed } = yield* receiveFailure(conn, start)
          assert.strictEqual(error._tag, "ConnectionError")
          if (error._tag === "ConnectionError") {
            assert.strictEqual(error.reason, reason)
            assert.include(error.remote, "127.0.0.1")
          }
          assert.isBelow(elapsed, PROMPT_MS)
          yield* assertClosed(peer, conn, "mconnection")
          // Once failed, the connection stays failed.
          assert.strictEqual(tagOf(yield* Effect.flip(conn.receive)), "ConnectionError")
          assert.strictEqual(tagOf(yield* Effect.flip(conn.send(0xf0, Uint8Array.of(1)))), "ConnectionError")
          yield* assertStillAccepts(t)
        }))

    // Only the prefix is sent: the limit applies before the body is awaited or allocated.
    packetCase("a packet length prefix of 2 GiB", (p) => p.sendPlain(TWO_GIB), "too_large")
    packetCase("a packet length prefix of maxPacketMsgSize + 1 (1035)", (p) => p.sendPlain(encodeUvarint(1035)), "too_large")
    packetCase("a packet length prefix longer than 10 bytes", (p) => p.sendPlain(hex("ffffffffffffffffffff01")), "too_large")
    packetCase(
      "a message growing past the channel's recvMessageCapacity (before its eof)",
      (p) => p.sendPlain(concat(encodePacketMsg(0xf0, false, new Uint8Array(60)), encodePacketMsg(0xf0, false, new Uint8Array(60)))),
      "message_too_large",
      { channels: [smallChannel, otherChannel] }
    )
    packetCase(
      "a single packet larger than the channel's recvMessageCapacity",
      (p) => p.sendPlain(encodePacketMsg(0xf0, true, new Uint8Array(101))),
      "message_too_large",
      { channels: [smallChannel, otherChannel] }
    )
    packetCase("a packet on an unknown channel", (p) => p.sendPacketMsg(0x77, true, Uint8Array.of(1)), "unknown_channel")
    packetCase(
      "a packet on a negative channel id (int32 -1)",
      // Packet{msg{channel_id: -1 (10-byte varint), eof: true, data: 01}}
      (p) => p.sendPlain(delimited(concat(hex("1a10"), hex("08ffffffffffffffffff01"), hex("1001"), hex("1a0101")))),
      "unknown_channel"
    )
    packetCase("a tampered sealed frame", (p) => {
      const sealed = p.secure.writer.seal(encodePacketMsg(0xf0, true, Uint8Array.of(1, 2, 3)))
      sealed[100]! ^= 0x01
      p.write(sealed)
    }, "authentication")
    packetCase("a sealed frame whose length field claims more than 1024 bytes", (p) => p.sendFrameClaiming(1025), "chunk_length")
    packetCase("a sealed frame whose length field claims 2^32 - 1 bytes", (p) => p.sendFrameClaiming(0xffffffff), "chunk_length")
    packetCase("an unknown packet type (field 4)", (p) => p.sendPlain(hex("022200")), "unknown_packet_type")
    packetCase("an empty packet", (p) => p.sendPlain(hex("00")), "unknown_packet_type")
    packetCase("a malformed packet", (p) => p.sendPlain(hex("021a05")), "encoding")

    live("a truncated sealed frame followed by the end of the stream ends the connection with ConnectionClosed", () =>
      Effect.gen(function* () {
        const t = yield* makeTransport(OURS)
        const { peer, conn } = yield* established(t)
        const start = performance.now()
        peer.write(peer.secure.writer.seal(encodePacketMsg(0xf0, true, Uint8Array.of(1))).subarray(0, 500))
        peer.socket.end()
        const { error, elapsed } = yield* receiveFailure(conn, start)
        assert.strictEqual(error._tag, "ConnectionClosed")
        assert.isBelow(elapsed, PROMPT_MS)
        yield* assertClosed(peer, conn, "mconnection")
        yield* assertStillAccepts(t)
      }))

    live("silence after the handshake fails with ConnectionError pong_timeout", () =>
      Effect.gen(function* () {
        const t = yield* makeTransport(OURS, { mconnection: { pingInterval: 200, pongTimeout: 100 } })
        const { peer, conn } = yield* established(t)
        const start = performance.now()
        const { error, elapsed } = yield* receiveFailure(conn, start)
        assert.strictEqual(error._tag, "ConnectionError")
        if (error._tag === "ConnectionError") assert.strictEqual(error.reason, "pong_timeout")
        // docs/ARCHITECTURE.md#tcp-transport #118: within 2 x pongTimeout (plus scheduling slack).
        assert.isAtLeast(elapsed, 90)
        assert.isBelow(elapsed, 2 * 100 + 200)
        yield* assertClosed(peer, conn, "mconnection")
        yield* assertStillAccepts(t)
      }))

    live("a peer that answers our pings survives an aggressive keepalive", () =>
      Effect.gen(function* () {
        const t = yield* makeTransport(OURS, { mconnection: { pingInterval: 400, pongTimeout: 200 } })
        const { peer, conn } = yield* established(t)
        let pings = 0
        let stop = false
        const answering = (async () => {
          while (!stop && !peer.isClosed) {
            const packet = await peer.readPacket().catch(() => undefined)
            if (packet?._tag === "Ping") {
              pings++
              peer.sendPlain(encodePong())
            }
          }
        })()
        const exit = yield* Effect.exit(within(1100, "connection to close", conn.awaitClosed))
        assert.isTrue(Exit.isFailure(exit), "the connection closed although the peer answered every ping")
        assert.isAtLeast(pings, 2)
        stop = true
        peer.socket.end()
        yield* raw("answering loop", () => answering)
        assert.strictEqual(tagOf(yield* Effect.flip(within(WAIT_MS, "receive", conn.receive))), "ConnectionClosed")
        yield* within(WAIT_MS, "awaitClosed", conn.awaitClosed)
      }))

    live("three unsolicited pongs and three pings: each ping is answered, the connection stays up", () =>
      Effect.gen(function* () {
        const t = yield* makeTransport(OURS)
        const { peer, conn } = yield* established(t)
        peer.sendPlain(concat(encodePong(), encodePong(), encodePong()))
        for (let i = 0; i < 3; i++) {
          peer.sendPing()
          const packet = yield* raw(`pong ${i + 1}`, () => peer.readPacket(), 1000)
          assert.strictEqual(packet._tag, "Pong")
        }
        // A burst of pings in one write: pongs may be coalesced, but at least one comes.
        peer.sendPlain(concat(encodePing(), encodePing(), encodePing()))
        assert.strictEqual((yield* raw("pong to a burst", () => peer.readPacket(), 1000))._tag, "Pong")
        // Still up, both ways, and nothing was delivered for the pings and pongs.
        peer.sendPlain(encodePacketMsg(0xf0, true, Uint8Array.of(9, 8, 7)))
        const got = yield* within(1000, "message", conn.receive)
        assert.deepStrictEqual([got.channelId, [...got.data]], [0xf0, [9, 8, 7]])
        yield* conn.send(0x0f, Uint8Array.of(4, 5))
        let packet = yield* raw("message from us", () => peer.readPacket(), 1000)
        while (packet._tag === "Pong") packet = yield* raw("message from us", () => peer.readPacket(), 1000)
        assert.strictEqual(packet._tag, "Msg")
        if (packet._tag === "Msg") assert.deepStrictEqual([packet.channelId, packet.eof, [...packet.data]], [0x0f, true, [4, 5]])
        assert.isFalse(peer.isClosed)
        yield* conn.close
        yield* assertClosed(peer, conn, "mconnection")
        yield* assertStillAccepts(t)
      }))

    live("a flood of pings is answered with coalesced pongs, not one pong each, and the connection stays up", () =>
      Effect.gen(function* () {
        const t = yield* makeTransport(OURS)
        const { peer, conn } = yield* established(t)
        const pings = 5000
        peer.sendPlain(concat(...Array.from({ length: pings }, encodePing), encodePacketMsg(0xf0, true, Uint8Array.of(7))))
        const got = yield* within(1000, "message after the pings", conn.receive)
        assert.deepStrictEqual([...got.data], [7])
        yield* conn.send(0x0f, Uint8Array.of(8))
        let pongs = 0
        let packet = yield* raw("packet", () => peer.readPacket(), 1000)
        while (packet._tag === "Pong") {
          pongs++
          packet = yield* raw("packet", () => peer.readPacket(), 1000)
        }
        assert.strictEqual(packet._tag, "Msg")
        assert.isAtLeast(pongs, 1)
        assert.isBelow(pongs, pings / 10, `${pongs} pongs for ${pings} pings`)
        assert.isFalse(peer.isClosed)
      }))

    live("a peer whose every write is cut into tiny TCP segments still handshakes and exchanges messages", () =>
      Effect.gen(function* () {
        const t = yield* makeTransport(OURS)
        const { peer, conn } = yield* acceptRaw(t)
        peer.fragment = 97
        const fiber = yield* startHandshake(conn, { timeout: LONG_TIMEOUT })
        yield* raw("raw handshake", async () => {
          await peer.secretHandshake(RAW)
          await peer.exchangeNodeInfo(nodeInfo(RAW))
        })
        yield* Fiber.join(fiber)
        const big = Uint8Array.from({ length: 5000 }, (_, i) => i & 0xff)
        for (let i = 0; i < big.length; i += 1024) {
          peer.sendPlain(encodePacketMsg(0xf0, i + 1024 >= big.length, big.subarray(i, i + 1024)))
        }
        const got = yield* within(WAIT_MS, "reassembled message", conn.receive)
        assert.deepStrictEqual(got.data, big)
      }))

    live("packets in the same frame as the NodeInfo are not lost", () =>
      Effect.gen(function* () {
        const t = yield* makeTransport(OURS)
        const { peer, conn } = yield* acceptRaw(t)
        const fiber = yield* startHandshake(conn, { timeout: LONG_TIMEOUT })
        yield* raw("raw handshake", async () => {
          await peer.secretHandshake(RAW)
          await peer.exchangeNodeInfo(concat(delimited(NodeInfo.encode(nodeInfo(RAW))), encodePing(), encodePacketMsg(0xf0, true, Uint8Array.of(42))))
        })
        yield* Fiber.join(fiber)
        const got = yield* within(1000, "message", conn.receive)
        assert.deepStrictEqual([got.channelId, [...got.data]], [0xf0, [42]])
        assert.strictEqual((yield* raw("pong", () => peer.readPacket(), 1000))._tag, "Pong")
      }))
  })
})

describe("TcpTransport limits", () => {
  live("a peer that stops reading makes send fail with send_timeout and closes the connection", () =>
    Effect.gen(function* () {
      const t = yield* makeTransport(OURS, { mconnection: { sendTimeout: 300 } })
      const { peer, conn } = yield* established(t)
      peer.socket.pause() // never reads again: the TCP window and our buffers fill up
      const big = new Uint8Array(512 * 1024)
      const error = yield* Effect.flip(within(20_000, "send to block and time out", Effect.gen(function* () {
        for (let i = 0; i < 1000; i++) yield* conn.send(0xf0, big)
      })))
      assert.strictEqual(error._tag, "ConnectionError")
      if (error._tag === "ConnectionError") assert.strictEqual(error.reason, "send_timeout")
      yield* within(WAIT_MS, "awaitClosed", conn.awaitClosed)
    }))

  it.effect("MConnection settings are checked when the transport is built: pongTimeout must be below pingInterval", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(makeTransport(OURS, { mconnection: { pingInterval: 1000, pongTimeout: 1000 } }))
      assert.strictEqual(error._tag, "TransportListenError")
      assert.match(error.message, /pongTimeout/)
      const zero = yield* Effect.flip(makeTransport(OURS, { mconnection: { sendRate: 0 } }))
      assert.match(zero.message, /sendRate/)
    }).pipe(Effect.scoped))
})

describe("TcpTransport graceful close", () => {
  live("messages a peer sent just before hanging up are still delivered, then ConnectionClosed", () =>
    Effect.gen(function* () {
      const t = yield* makeTransport(OURS)
      const { peer, conn } = yield* established(t)
      peer.sendPlain(concat(encodePacketMsg(0xf0, true, Uint8Array.of(1, 2, 3)), encodePacketMsg(0xf0, true, Uint8Array.of(4))))
      peer.socket.end()
      yield* within(WAIT_MS, "awaitClosed", conn.awaitClosed)
      assert.deepStrictEqual((yield* within(WAIT_MS, "first", conn.receive)).data, Uint8Array.of(1, 2, 3))
      assert.deepStrictEqual((yield* within(WAIT_MS, "second", conn.receive)).data, Uint8Array.of(4))
      assert.strictEqual(tagOf(yield* Effect.flip(within(WAIT_MS, "end", conn.receive))), "ConnectionClosed")
    }))
})

// Slots an attacker cannot hold, with real sockets from many loopback addresses (the whole of
// 127.0.0.0/8 is local, so each /24 below plays another machine): silent connections, trickling
// and half-finished handshakes, on the accepting and on the dialing side.
import { assert, describe, it } from "@effect/vitest"
import { mkdtempSync } from "node:fs"
import * as Net from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Context, Effect, Fiber, Layer, Scope } from "effect"
import * as Endpoint from "../../src/domain/Endpoint.ts"
import * as NodeAddress from "../../src/domain/NodeAddress.ts"
import * as NodeInfo from "../../src/domain/NodeInfo.ts"
import * as Keys from "../../src/testing/Keys.ts"
import * as Node from "../../src/layers/Node.ts"
import * as TcpTransport from "../../src/layers/TcpTransport.ts"
import * as NodeIdentity from "../../src/layers/NodeIdentity.ts"
import { PeerManager } from "../../src/services/PeerManager.ts"
import { Router } from "../../src/services/Router.ts"
import { Transport } from "../../src/services/Transport.ts"
import * as Crypto from "../../src/wire/SecretConnectionCrypto.ts"
import { firstUp } from "../../src/testing/Assertions.ts"
import { within } from "../../src/testing/Within.ts"

/** A node on a free loopback port, with its home in a temporary directory. */
const node = (moniker: string, config: Partial<Node.Config> = {}) =>
  Effect.gen(function* () {
    const context = yield* Layer.build(Node.layer({
      home: mkdtempSync(join(tmpdir(), "p2p-flood-")),
      network: "flood",
      moniker,
      listen: { host: "127.0.0.1", port: 0 },
      ...config
    }))
    const [endpoint] = yield* Context.get(context, Transport).endpoints
    const info = yield* Context.get(context, Router).nodeInfo
    return { context, port: endpoint!.port, nodeId: info.nodeId, address: NodeAddress.unsafeParse(`${info.nodeId}@127.0.0.1:${endpoint!.port}`) }
  })

/** `count` TCP connections to `port` that send nothing, from `source(i)`; all closed with the scope. */
const silent = (port: number, count: number, source: (i: number) => string) =>
  Effect.acquireRelease(
    Effect.promise(() =>
      Promise.all(Array.from({ length: count }, (_, i) =>
        new Promise<Net.Socket>((resolve) => {
          const s = Net.connect({ port, host: "127.0.0.1", localAddress: source(i) })
          s.on("error", () => {})
          s.once("connect", () => resolve(s))
          s.once("close", () => resolve(s))
        })))
    ),
    (sockets) => Effect.sync(() => sockets.forEach((s) => s.destroy()))
  )

/** Milliseconds until `victim` sees a new node, which has `victim` as a persistent peer, come up. */
const legitimatePeerJoins = (victim: { readonly context: Context.Context<PeerManager>; readonly address: NodeAddress.NodeAddress }) =>
  Effect.gen(function* () {
    const updates = yield* Context.get(victim.context, PeerManager).subscribe
    const started = performance.now()
    const peer = yield* node("legitimate", { persistentPeers: [victim.address] })
    yield* within("10 seconds", "the legitimate peer to come up", firstUp(updates, peer.nodeId))
    return performance.now() - started
  })

describe("silent connections cannot lock a node out", () => {
  it.live("1,000 silent connections from 1,000 addresses in 1,000 networks: a legitimate peer still connects within 5 s", () =>
    Effect.gen(function* () {
      const victim = yield* node("victim")
      // 127.10.0.1 ... 127.13.249.1: every connection from its own /24.
      yield* silent(victim.port, 1000, (i) => `127.${10 + Math.floor(i / 250)}.${i % 250}.1`)
      const ms = yield* legitimatePeerJoins(victim)
      console.log(`flood: a legitimate peer connected ${ms.toFixed(0)} ms into 1,000 silent connections from 1,000 networks`)
      assert.isBelow(ms, 5_000)
    }).pipe(Effect.scoped), 60_000)

  it.live("1,000 silent connections from one /24: refused past the network's share; a legitimate peer connects within 5 s", () =>
    Effect.gen(function* () {
      const victim = yield* node("victim")
      const sockets = yield* silent(victim.port, 1000, (i) => `127.20.0.${1 + (i % 250)}`)
      // Past the network's share (32 handshakes in progress, 64 connections) the node closes them.
      yield* within("5 seconds", "the node to close the excess", Effect.promise(async () => {
        while (sockets.filter((s) => !s.destroyed && s.readyState === "open").length > 64) await new Promise((r) => setTimeout(r, 50))
      }))
      const ms = yield* legitimatePeerJoins(victim)
      console.log(`flood: a legitimate peer connected ${ms.toFixed(0)} ms into 1,000 silent connections from one /24`)
      assert.isBelow(ms, 5_000)
    }).pipe(Effect.scoped), 60_000)
})

describe("every inbound connection is bounded in time from its accept", () => {
  const transport = (options: TcpTransport.Options) =>
    Effect.map(
      Layer.build(TcpTransport.layer({ host: "127.0.0.1", port: 0, ...options }).pipe(Layer.provide(NodeIdentity.layer(Keys.key(7))))),
      (ctx) => Context.get(ctx, Transport)
    )
  const key = Keys.key(7)
  const info = NodeInfo.make({ nodeId: key.nodeId, listenAddr: "127.0.0.1:0", network: "flood", moniker: "t" })
  const connect = (port: number) =>
    Effect.promise(() => new Promise<Net.Socket>((resolve) => {
      const s = Net.connect(port, "127.0.0.1", () => resolve(s))
      s.on("error", () => {})
      s.resume()
    }))
  const closedWithin = (s: Net.Socket, ms: number, what: string) =>
    within(ms, what, Effect.promise(() => new Promise<void>((resolve) => (s.destroyed ? resolve() : s.once("close", () => resolve())))))

  it.live("a connection nobody handshakes is closed at the handshake bound", () =>
    Effect.gen(function* () {
      const t = yield* transport({ handshakeTimeout: 300 })
      const port = (yield* t.endpoints)[0]!.port
      const s = yield* connect(port)
      const start = performance.now()
      yield* closedWithin(s, 2_000, "the watchdog to close the socket")
      assert.isAtLeast(performance.now() - start, 250)
    }).pipe(Effect.scoped))

  it.live("a peer trickling its ephemeral key, one byte at a time, is dropped at the ephemeral-key bound", () =>
    Effect.gen(function* () {
      const t = yield* transport({ ephemeralKeyTimeout: 400, handshakeTimeout: 10_000 })
      const s = yield* connect((yield* t.endpoints)[0]!.port)
      const conn = yield* t.accept
      const bytes = Crypto.encodeEphemeralKey(Crypto.generateEphemeralKeyPair().publicKey)
      let sent = 0
      const trickle = setInterval(() => void (sent < bytes.length && !s.destroyed && s.write(bytes.subarray(sent, ++sent))), 100)
      yield* Effect.addFinalizer(() => Effect.sync(() => clearInterval(trickle)))
      const start = performance.now()
      const error = yield* Effect.flip(conn.handshake({ nodeInfo: info, nodeKey: key, timeout: 10_000 }))
      assert.strictEqual(error._tag, "HandshakeTimeout")
      assert.include(error.message, "ephemeral key")
      assert.isBelow(performance.now() - start, 2_000)
      assert.isBelow(sent, bytes.length)
      yield* closedWithin(s, 2_000, "the trickler's socket to close")
    }).pipe(Effect.scoped))

  it.live("a peer that sends its ephemeral key and then nothing is dropped at the bound counted from its accept, not from the handshake call", () =>
    Effect.gen(function* () {
      const t = yield* transport({ handshakeTimeout: 600 })
      const s = yield* connect((yield* t.endpoints)[0]!.port)
      const acceptedAt = performance.now()
      const conn = yield* t.accept
      s.write(Crypto.encodeEphemeralKey(Crypto.generateEphemeralKeyPair().publicKey))
      yield* Effect.sleep(300) // the node was busy: this wait counts against the bound
      const error = yield* Effect.flip(conn.handshake({ nodeInfo: info, nodeKey: key, timeout: 10_000 }))
      assert.strictEqual(error._tag, "HandshakeTimeout")
      const elapsed = performance.now() - acceptedAt
      assert.isAtLeast(elapsed, 550)
      assert.isBelow(elapsed, 1_500)
    }).pipe(Effect.scoped))
})

describe("the dialing side", () => {
  it.live("a peer that accepts our dial and says nothing costs the dial slot no longer than the ephemeral-key bound", () =>
    Effect.gen(function* () {
      const held: Array<Net.Socket> = []
      const server = Net.createServer((s) => void held.push(s.on("error", () => {})))
      yield* Effect.acquireRelease(
        Effect.callback<void>((resume) => void server.listen(0, "127.0.0.1", () => resume(Effect.void))),
        () => Effect.sync(() => {
          held.forEach((s) => s.destroy())
          server.close()
        })
      )
      const port = (server.address() as Net.AddressInfo).port
      const key = Keys.key(9)
      const t = yield* Effect.map(
        Layer.build(TcpTransport.layer({ ephemeralKeyTimeout: 500 }).pipe(Layer.provide(NodeIdentity.layer(key)))),
        (ctx) => Context.get(ctx, Transport)
      )
      const start = performance.now()
      const scope = yield* Scope.make()
      const conn = yield* Scope.provide(t.dial(Endpoint.make({ protocol: "mconn", ip: "127.0.0.1", port })), scope)
      const info = NodeInfo.make({ nodeId: key.nodeId, listenAddr: "127.0.0.1:0", network: "flood", moniker: "d" })
      const fiber = yield* Effect.forkChild(Effect.flip(conn.handshake({ nodeInfo: info, nodeKey: key, timeout: 20_000 })))
      const error = yield* within(3_000, "the dial's handshake to give up", Fiber.join(fiber))
      assert.strictEqual(error._tag, "HandshakeTimeout")
      assert.isBelow(performance.now() - start, 1_500)
      yield* Scope.close(scope, { _tag: "Success", value: undefined } as never)
    }).pipe(Effect.scoped))
})

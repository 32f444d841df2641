import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Fiber, Layer } from "effect"
import * as Endpoint from "../../src/domain/Endpoint.ts"
import * as MemoryNetwork from "../../src/layers/MemoryNetwork.ts"
import * as MemoryTransport from "../../src/layers/MemoryTransport.ts"
import * as NodeIdentity from "../../src/layers/NodeIdentity.ts"
import { Transport } from "../../src/services/Transport.ts"
import * as TransportSuite from "../../src/testing/TransportSuite.ts"

const transportLayer = (key: ReturnType<typeof TransportSuite.key>) => MemoryTransport.layer.pipe(Layer.provide(NodeIdentity.layer(key)))

TransportSuite.run({
  name: "memory",
  environment: MemoryNetwork.layer,
  transport: transportLayer,
  invalidEndpoints: [Endpoint.make({ protocol: "memory" }), Endpoint.make({ protocol: "memory", path: "not-a-node-id" })]
})

const build = (n: number) => Effect.map(Layer.build(transportLayer(TransportSuite.key(n))), (ctx) => Context.get(ctx, Transport))

describe("MemoryTransport", () => {
  it.effect("dialing a node that is not on the network fails with DialError unknown_peer", () =>
    Effect.gen(function* () {
      const a = yield* build(1)
      const err = yield* Effect.flip(a.dial(MemoryTransport.endpoint(TransportSuite.key(9).nodeId)))
      assert.strictEqual(err._tag, "DialError")
      assert.strictEqual(err.reason, "unknown_peer")
      assert.include(err.message, TransportSuite.key(9).nodeId)
    }).pipe(Effect.scoped, Effect.provide(MemoryNetwork.layer)))

  it.effect("a node ID can join the network only once", () =>
    Effect.gen(function* () {
      yield* build(1)
      const err = yield* Effect.flip(build(1))
      assert.strictEqual(err._tag, "DuplicateNode")
    }).pipe(Effect.scoped, Effect.provide(MemoryNetwork.layer)))

  it.effect("removing a node from the network closes its connections and later dials to it fail", () =>
    Effect.gen(function* () {
      const network = yield* MemoryNetwork.MemoryNetwork
      const a = yield* build(1)
      const b = yield* build(2)
      const accepting = yield* Effect.forkChild(b.accept)
      const ab = yield* a.dial(MemoryTransport.endpoint(TransportSuite.key(2).nodeId))
      yield* Fiber.join(accepting)
      assert.deepStrictEqual(yield* network.nodes, [TransportSuite.key(1).nodeId, TransportSuite.key(2).nodeId])
      yield* network.remove(TransportSuite.key(2).nodeId)
      assert.strictEqual((yield* Effect.flip(ab.receive))._tag, "ConnectionClosed")
      assert.strictEqual((yield* Effect.flip(a.dial(MemoryTransport.endpoint(TransportSuite.key(2).nodeId))))._tag, "DialError")
      assert.deepStrictEqual(yield* network.nodes, [TransportSuite.key(1).nodeId])
    }).pipe(Effect.scoped, Effect.provide(MemoryNetwork.layer)))

  it.effect("a full connection buffer makes the sender wait until the receiver reads (backpressure)", () =>
    Effect.gen(function* () {
      const a = yield* build(1)
      const b = yield* build(2)
      const accepting = yield* Effect.forkChild(b.accept)
      const ab = yield* a.dial(MemoryTransport.endpoint(TransportSuite.key(2).nodeId))
      const ba = yield* Fiber.join(accepting)
      for (let i = 0; i < 2; i++) yield* ab.send(1, Uint8Array.of(i))
      const blocked = yield* Effect.forkChild(ab.send(1, Uint8Array.of(2)))
      yield* Effect.yieldNow
      assert.isUndefined(blocked.pollUnsafe())
      assert.deepStrictEqual((yield* ba.receive).data, Uint8Array.of(0))
      yield* Fiber.join(blocked)
    }).pipe(Effect.scoped, Effect.provide(MemoryNetwork.layerWith({ bufferSize: 2 }))))

  it.effect("closing the transport's scope closes its connections and leaves no fiber running", () =>
    Effect.gen(function* () {
      const outer = yield* Effect.scoped(Effect.gen(function* () {
        const a = yield* build(1)
        const b = yield* build(2)
        const accepting = yield* Effect.forkChild(b.accept)
        const ab = yield* a.dial(MemoryTransport.endpoint(TransportSuite.key(2).nodeId))
        const ba = yield* Fiber.join(accepting)
        const reader = yield* Effect.forkDetach(Effect.exit(ba.receive))
        return { ab, reader }
      }))
      const exit = yield* Fiber.join(outer.reader)
      assert.strictEqual(exit._tag, "Failure")
      assert.strictEqual((yield* Effect.flip(outer.ab.send(1, Uint8Array.of(1))))._tag, "ConnectionClosed")
      const network = yield* MemoryNetwork.MemoryNetwork
      assert.deepStrictEqual(yield* network.nodes, [])
    }).pipe(Effect.provide(MemoryNetwork.layer)))
})

describe("MemoryTransport handshake", () => {
  /** `a` dials node 2 (`b`); returns both ends. */
  const connect = (a: Transport["Service"], b: Transport["Service"]) =>
    Effect.gen(function* () {
      const accepting = yield* Effect.forkChild(b.accept)
      const conn = yield* a.dial(MemoryTransport.endpoint(TransportSuite.key(2).nodeId))
      return [conn, yield* Fiber.join(accepting)] as const
    })

  it.effect("a side presenting a public key whose private half it does not hold is refused with HandshakeAuthFailed", () =>
    Effect.gen(function* () {
      const a = yield* build(1)
      const b = yield* build(2)
      const [ab, ba] = yield* connect(a, b)
      // Node 1's key pair presenting node 3's public key and ID.
      const impostor = { ...TransportSuite.key(1), publicKey: TransportSuite.key(3).publicKey, nodeId: TransportSuite.key(3).nodeId }
      const [, fromB] = yield* Effect.all([
        Effect.exit(ab.handshake({ nodeInfo: TransportSuite.nodeInfo(TransportSuite.key(3)), nodeKey: impostor })),
        Effect.flip(ba.handshake({ nodeInfo: TransportSuite.nodeInfo(TransportSuite.key(2)), nodeKey: TransportSuite.key(2) }))
      ], { concurrency: 2 })
      assert.strictEqual(fromB._tag, "HandshakeAuthFailed")
      assert.include(fromB.message, "could not prove it holds the key it presented")
      // An honest key is accepted: the same pair with node 1's own public key handshakes.
      const [c1, c2] = yield* connect(a, b)
      const [p1, p2] = yield* Effect.all([
        c1.handshake({ nodeInfo: TransportSuite.nodeInfo(TransportSuite.key(1)), nodeKey: TransportSuite.key(1) }),
        c2.handshake({ nodeInfo: TransportSuite.nodeInfo(TransportSuite.key(2)), nodeKey: TransportSuite.key(2) })
      ], { concurrency: 2 })
      assert.strictEqual(p1.nodeInfo.nodeId, TransportSuite.key(2).nodeId)
      assert.strictEqual(p2.nodeInfo.nodeId, TransportSuite.key(1).nodeId)
    }).pipe(Effect.scoped, Effect.provide(MemoryNetwork.layer)))
})

// The README's examples, run as tests so they stay true.
import { assert, describe, it } from "@effect/vitest"
import { create } from "@bufbuild/protobuf"
import { StringValueSchema } from "@bufbuild/protobuf/wkt"
import { Context, Effect, Fiber, Layer } from "effect"
import { Envelope, MemoryNetwork, MemoryTransport, NodeAddress, NodeId, NodeIdentity, NodeInfo, NodeKey, PeerManager, Router, Transport } from "effect-p2p"
import { Assertions, TestNetwork } from "effect-p2p/testing"
import { EchoReactor, echo } from "./EchoReactor.ts"

describe("README examples", () => {
  it.effect("domain types", () =>
    Effect.gen(function* () {
      const key = yield* NodeKey.generate()
      const id = yield* NodeId.decode("ABCD".repeat(10))
      const addr = yield* NodeAddress.parse(`${id}@127.0.0.1:26656`)
      assert.strictEqual(NodeAddress.format(addr), `mconn://${"abcd".repeat(10)}@127.0.0.1:26656`)
      assert.include(NodeKey.toJson(key), "tendermint/PrivKeyEd25519")
      const err = yield* Effect.flip(NodeAddress.parse(`mconn://${id}@1.2.3.4:99999`))
      assert.strictEqual(err.reason, "invalid-port")
    }))

  it.effect("a peer echoes what it receives", () =>
    Effect.gen(function* () {
      const net = yield* TestNetwork.make({ nodes: 2, channels: [echo] })
      const [a, b] = net.nodes
      const [chA, chB] = yield* net.openChannel(echo)
      const inbox = yield* Assertions.probe(chB!.messages)
      const hi = create(StringValueSchema, { value: "hi" })
      yield* chA!.send(Envelope.to(b!.nodeId, hi))
      yield* Assertions.receive(inbox, { from: a!.nodeId, channelId: echo.id, message: hi })
      yield* Assertions.empty(inbox)
    }).pipe(Effect.scoped))

  it.effect("two memory transports handshake by hand", () =>
    Effect.gen(function* () {
      const transportFor = (key: NodeKey.NodeKey) =>
        Layer.build(MemoryTransport.layer.pipe(Layer.provide(NodeIdentity.layer(key)))).pipe(
          Effect.map((ctx) => Context.get(ctx, Transport.Transport)))
      const [ka, kb] = [yield* NodeKey.generate(), yield* NodeKey.generate()]
      const [a, b] = [yield* transportFor(ka), yield* transportFor(kb)]
      const accepting = yield* Effect.forkChild(b.accept)
      const ab = yield* a.dial(MemoryTransport.endpoint(kb.nodeId))
      const ba = yield* Fiber.join(accepting)
      const info = (k: NodeKey.NodeKey) => NodeInfo.make({ nodeId: k.nodeId, listenAddr: "0.0.0.0:0", network: "demo", moniker: "m" })
      const [peerB] = yield* Effect.all([
        ab.handshake({ nodeInfo: info(ka), nodeKey: ka, expectedId: kb.nodeId }),
        ba.handshake({ nodeInfo: info(kb), nodeKey: kb })
      ], { concurrency: 2 })
      yield* ab.send(0x30, new Uint8Array([1, 2, 3]))
      const got = yield* ba.receive
      assert.strictEqual(peerB.nodeInfo.nodeId, kb.nodeId)
      assert.deepStrictEqual(got, { channelId: 0x30, data: new Uint8Array([1, 2, 3]) })
    }).pipe(Effect.scoped, Effect.provide(MemoryNetwork.layer)))

  it.effect("the echo reactor answers and greets over a test network", () =>
    Effect.gen(function* () {
      const net = yield* TestNetwork.make({ nodes: 2, channels: [echo], mesh: false })
      const [a, b] = net.nodes
      // b runs the EchoReactor; a talks to it through a plain channel.
      yield* Layer.build(EchoReactor.pipe(Layer.provide(Layer.mergeAll(
        Layer.succeed(Router.Router, b!.router),
        Layer.succeed(PeerManager.PeerManager, b!.peerManager)
      ))))
      const [chA] = [yield* a!.router.openChannel(echo)]
      const inbox = yield* Assertions.probe(chA.messages)
      yield* net.connect(a!, b!)
      yield* Assertions.receive(inbox, { from: b!.nodeId, channelId: echo.id, message: create(StringValueSchema, { value: "hello" }) })
      const ping = create(StringValueSchema, { value: "ping" })
      yield* chA.send(Envelope.to(b!.nodeId, ping))
      yield* Assertions.receive(inbox, { from: b!.nodeId, channelId: echo.id, message: ping })
    }).pipe(Effect.scoped))
})

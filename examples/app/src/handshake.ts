import { NodeRuntime } from "@effect/platform-node"
import { Console, Context, Effect, Fiber, Layer } from "effect"
import { MemoryNetwork, MemoryTransport, NodeIdentity, NodeInfo, NodeKey, Transport } from "effect-p2p"

// A memory transport for a key, on the MemoryNetwork of the program.
const transportFor = (key: NodeKey.NodeKey) =>
  Layer.build(MemoryTransport.layer.pipe(Layer.provide(NodeIdentity.layer(key)))).pipe(
    Effect.map((context) => Context.get(context, Transport.Transport)))

const info = (key: NodeKey.NodeKey) => NodeInfo.make({ nodeId: key.nodeId, listenAddr: "0.0.0.0:0", network: "demo", moniker: "m" })

const program = Effect.gen(function* () {
  const [ka, kb] = [yield* NodeKey.generate(), yield* NodeKey.generate()]
  const [a, b] = [yield* transportFor(ka), yield* transportFor(kb)]
  const accepting = yield* Effect.forkChild(b.accept)
  const ab = yield* a.dial(MemoryTransport.endpoint(kb.nodeId))
  const ba = yield* Fiber.join(accepting)
  // Both sides at once: keys proven, NodeInfo exchanged and checked.
  const [peerOfA] = yield* Effect.all([
    ab.handshake({ nodeInfo: info(ka), nodeKey: ka, expectedId: kb.nodeId }),
    ba.handshake({ nodeInfo: info(kb), nodeKey: kb })
  ], { concurrency: 2 })
  yield* ab.send(0x30, new Uint8Array([1, 2, 3]))
  const received = yield* ba.receive
  yield* Console.log(`a reached ${peerOfA.nodeInfo.nodeId === kb.nodeId ? "b" : "someone else"}; b received ${received.data.length} bytes on channel ${received.channelId}`)
}).pipe(Effect.scoped, Effect.provide(MemoryNetwork.layer))

NodeRuntime.runMain(program)

import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { create } from "@bufbuild/protobuf"
import { StringValueSchema } from "@bufbuild/protobuf/wkt"
import { NodeRuntime } from "@effect/platform-node"
import { Console, Context, Effect, Layer, Queue, Stream } from "effect"
import { Envelope, Node, NodeAddress, PeerManager, Router, Transport } from "effect-p2p"
import { EchoReactor, echo } from "./EchoReactor.ts"

// A service of the application: the texts its node received.
class Inbox extends Context.Service<Inbox, Queue.Queue<string>>()("app/Inbox") {}
const InboxLive = Layer.effect(Inbox, Queue.unbounded<string>())

// A second reactor: keeps what arrives on the echo channel, and says "ping" to every new peer.
const Client = Layer.effectDiscard(Effect.gen(function* () {
  const inbox = yield* Inbox
  const channel = yield* (yield* Router.Router).openChannel(echo)
  yield* Effect.forkScoped(Stream.runForEach(channel.messages, (m) => Queue.offer(inbox, m.message.value)))
  yield* Effect.forkScoped(Stream.runForEach(yield* (yield* PeerManager.PeerManager).subscribe, (u) =>
    u.status === "up" ? channel.send(Envelope.to(u.nodeId, create(StringValueSchema, { value: "ping" }))) : Effect.void))
}))

// A TCP node on a free loopback port, with its node key and peer store in a temporary home.
const homes: Array<string> = []
const node = (moniker: string, persistentPeers: Array<NodeAddress.NodeAddress> = []) => {
  homes.push(mkdtempSync(join(tmpdir(), `${moniker}-`)))
  return Node.layer({ home: homes.at(-1)!, network: "example", moniker, listen: { host: "127.0.0.1", port: 0 }, persistentPeers, channels: [echo] })
}

const program = Effect.gen(function* () {
  // Alice: a node and the EchoReactor, one layer graph.
  const alice = yield* Layer.build(EchoReactor.pipe(Layer.provideMerge(node("alice"))))
  const [endpoint] = yield* Context.get(alice, Transport.Transport).endpoints
  const { nodeId } = yield* Context.get(alice, Router.Router).nodeInfo
  // Bob: a node, the Client reactor and the Inbox service, with Alice as a persistent peer.
  const bob = yield* Layer.build(Client.pipe(
    Layer.provideMerge(InboxLive),
    Layer.provideMerge(node("bob", [NodeAddress.unsafeParse(`${nodeId}@${endpoint!.ip}:${endpoint!.port}`)]))
  ))
  const inbox = Context.get(bob, Inbox)
  const texts = [yield* Queue.take(inbox), yield* Queue.take(inbox)].sort() // Alice's greeting and the echo
  yield* Console.log(`bob received "${texts.join('" and "')}" from alice over TCP`)
}).pipe(
  Effect.scoped,
  Effect.timeout("10 seconds"),
  Effect.ensuring(Effect.sync(() => homes.forEach((home) => rmSync(home, { recursive: true, force: true }))))
)

NodeRuntime.runMain(program)

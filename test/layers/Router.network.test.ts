/**
 * docs/ARCHITECTURE.md#router (88-91, 93, 100, 101) and §8.13 (136): the Router on in-memory test networks — unicast,
 * broadcast, dropping rules, peer errors, channel compatibility — plus broadcast at scale,
 * backpressure from a reactor that stops reading, channel lifecycle, undecodable messages and a
 * clean shutdown. Skipped: 92 (Wrapper channels are not implemented; reactors use protobuf oneofs).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Scope, Stream } from "effect"
import type * as ChannelDescriptor from "../../src/domain/ChannelDescriptor.ts"
import * as Envelope from "../../src/domain/Envelope.ts"
import type * as NodeId from "../../src/domain/NodeId.ts"
import { PeerError } from "../../src/domain/PeerError.ts"
import * as PeerUpdate from "../../src/domain/PeerUpdate.ts"
import type { Channel } from "../../src/services/Router.ts"
import * as Assertions from "../../src/testing/Assertions.ts"
import * as TestNetwork from "../../src/testing/TestNetwork.ts"
import { settle, within } from "../../src/testing/Within.ts"
import * as F from "./Router.fixtures.ts"

const ch1 = F.stringChannel(1)
const ch2 = F.stringChannel(2)
const ch3 = F.stringChannel(3)
const ch9 = F.stringChannel(9, { name: "other" })

const msg = (from: NodeId.NodeId, value: string, channelId = 1) => ({ from, channelId, message: F.str(value) })

/** Replies to every message with the same message, to its sender. */
const echo = <D extends ChannelDescriptor.ChannelDescriptor>(channel: Channel<D["messageType"]>) =>
  Effect.forkScoped(Stream.runForEach(channel.messages, (env) => channel.send(Envelope.to(env.from, env.message))))

/** Whether a forked fiber is still suspended after everything runnable ran. */
const isSuspended = <A, E>(fiber: Fiber.Fiber<A, E>) => Effect.map(settle(1), () => fiber.pollUnsafe() === undefined)

const probes = <A>(streams: ReadonlyArray<Stream.Stream<A, unknown>>) => Effect.forEach(streams, (s) => Assertions.probe(s))

describe("Router on a memory network", () => {
  it.effect("88: eight nodes with echo reactors: unicast and broadcast come back from every peer; a fatal PeerError gives down then up (re-dial)", () =>
    Effect.gen(function* () {
      const net = yield* TestNetwork.make({ nodes: 8, channels: [ch1] })
      const channels = yield* net.openChannel(ch1)
      const local = net.nodes[3]!
      const peers = net.peersOf(local.nodeId)
      for (const p of peers) yield* echo(channels[p.index]!)
      const inbox = yield* Assertions.probe(channels[local.index]!.messages)
      const updates = yield* Assertions.probe(yield* local.peerManager.subscribe)

      for (const p of peers) {
        yield* channels[local.index]!.send(Envelope.to(p.nodeId, F.str("foo")))
        yield* Assertions.receive(inbox, msg(p.nodeId, "foo"))
      }
      yield* channels[local.index]!.send(Envelope.broadcast(F.str("bar")))
      yield* Assertions.receiveUnordered(inbox, peers.map((p) => msg(p.nodeId, "bar")))
      yield* Assertions.empty(inbox)

      // Fatal: the peer is disconnected, then dialed again (the original's "Down then Up").
      yield* channels[local.index]!.sendError(new PeerError({ nodeId: peers[0]!.nodeId, message: "boom", fatal: true }))
      yield* Assertions.updates(updates, [[peers[0]!.nodeId, "down"], [peers[0]!.nodeId, "up"]], 2_000)
      // ...and it is routed again: the echo still works.
      yield* channels[local.index]!.send(Envelope.to(peers[0]!.nodeId, F.str("again")))
      yield* Assertions.receive(inbox, msg(peers[0]!.nodeId, "again"))
    }).pipe(Effect.scoped))

  it.effect("88: a non-fatal PeerError on an unlimited node lowers the peer's score and keeps it connected", () =>
    Effect.gen(function* () {
      const net = yield* TestNetwork.make({ nodes: 3, channels: [ch1] })
      const [a, b] = net.nodes
      const [cha] = yield* net.openChannel(ch1)
      const updates = yield* Assertions.probe(yield* a!.peerManager.subscribe)
      const before = (yield* a!.peerManager.scores).get(b!.nodeId)!
      yield* cha!.sendError(new PeerError({ nodeId: b!.nodeId, message: "meh", fatal: false }))
      yield* settle(50)
      assert.strictEqual((yield* a!.peerManager.scores).get(b!.nodeId), before - 1)
      yield* Assertions.noUpdates(updates)
      assert.include((yield* a!.router.peers).map((p) => p.nodeId), b!.nodeId)
    }).pipe(Effect.scoped))

  it.effect("89: a router without peers: open channel 1 (advertised), again (ChannelAlreadyOpen), channel 2; sends to an unknown peer or to self are accepted and dropped", () =>
    Effect.gen(function* () {
      const node = yield* F.makeNode({ channels: [] })
      const one = yield* node.router.openChannel(ch1)
      assert.include([...(yield* node.router.nodeInfo).channels], 1)
      const again = yield* Effect.flip(node.router.openChannel(ch1))
      assert.strictEqual(again._tag, "ChannelAlreadyOpen")
      assert.strictEqual((again as { channelId: number }).channelId, 1)
      yield* node.router.openChannel(ch2)
      assert.sameMembers([...(yield* node.router.nodeInfo).channels], [1, 2])
      const inbox = yield* Assertions.probe(one.messages)
      yield* within(10, "send to an unknown peer", one.send(Envelope.to(F.key(77).nodeId, F.str("foo"))))
      yield* within(10, "send to self", one.send(Envelope.to(node.key.nodeId, F.str("foo"))))
      yield* within(10, "broadcast to nobody", one.send(Envelope.broadcast(F.str("foo"))))
      yield* Assertions.empty(inbox)
    }).pipe(Effect.scoped))

  it.effect("opening an open channel fails with ChannelAlreadyOpen; once its scope closes it can be opened again, and an undeclared channel leaves the NodeInfo", () =>
    Effect.gen(function* () {
      const net = yield* TestNetwork.make({ nodes: 1, channels: [ch1] })
      const router = net.nodes[0]!.router
      const scope = yield* Scope.make()
      yield* Scope.provide(router.openChannel(ch2), scope)
      yield* Scope.provide(router.openChannel(ch1), scope)
      const e = yield* Effect.flip(router.openChannel(F.boolChannel(1)))
      assert.strictEqual(e._tag, "ChannelAlreadyOpen")
      assert.include(e.message, "0x01")
      assert.sameMembers([...(yield* router.nodeInfo).channels], [1, 2])
      yield* Scope.close(scope, Exit.void)
      // Channel 1 was declared up front, so it stays advertised; channel 2 was not.
      assert.deepStrictEqual([...(yield* router.nodeInfo).channels], [1])
      yield* router.openChannel(ch1)
      yield* router.openChannel(ch2)
    }).pipe(Effect.scoped))

  it.effect("an invalid descriptor fails with InvalidChannelDescriptor", () =>
    Effect.gen(function* () {
      const node = yield* F.makeNode()
      const e = yield* Effect.flip(node.router.openChannel(F.stringChannel(256)))
      assert.strictEqual(e._tag, "InvalidChannelDescriptor")
    }).pipe(Effect.scoped))

  it.effect("90: three nodes with channels 1 and 9: unicast reaches only its target; bad envelopes are dropped; sends to a removed node are dropped; channel 9 stays silent", () =>
    Effect.gen(function* () {
      const net = yield* TestNetwork.make({ nodes: 3, channels: [ch1, ch9] })
      const [a, b, c] = net.nodes
      const ones = yield* net.openChannel(ch1)
      const nines = yield* net.openChannel(ch9)
      const [pa, pb, pc] = yield* probes(ones.map((ch) => ch.messages))
      const others = yield* probes(nines.map((ch) => ch.messages))
      const cha = ones[0]!

      yield* cha.send(Envelope.to(b!.nodeId, F.str("foo")))
      yield* Assertions.receive(pb!, msg(a!.nodeId, "foo"))
      yield* Assertions.empty(pa!)
      yield* Assertions.empty(pc!)

      const dropped: ReadonlyArray<readonly [string, Envelope.Outbound<ReturnType<typeof F.str>>]> = [
        ["a nil message", { to: b!.nodeId, message: undefined as unknown as ReturnType<typeof F.str> }],
        ["a message of another type", { to: b!.nodeId, message: F.bool(true) as unknown as ReturnType<typeof F.str> }],
        ["an unknown peer", Envelope.to(F.key(77).nodeId, F.str("unknown"))],
        ["a missing To", { message: F.str("nobody") } as unknown as Envelope.Outbound<ReturnType<typeof F.str>>],
        ["To = self", Envelope.to(a!.nodeId, F.str("self"))]
      ]
      for (const [what, envelope] of dropped) yield* within(10, `sending ${what}`, cha.send(envelope))
      yield* Assertions.empty(pa!)
      yield* Assertions.empty(pb!)
      yield* Assertions.empty(pc!)

      yield* net.remove(b!.nodeId)
      yield* within(1_000, "a to see b gone", Effect.repeat(a!.router.peers, { until: (ps) => ps.every((p) => p.nodeId !== b!.nodeId) }))
      yield* within(10, "sending to the removed node", cha.send(Envelope.to(b!.nodeId, F.str("gone"))))

      yield* ones[2]!.send(Envelope.to(a!.nodeId, F.str("bar")))
      yield* Assertions.receive(pa!, msg(c!.nodeId, "bar"))
      yield* Assertions.empty(pc!)
      for (const p of [others[0]!, others[2]!]) yield* Assertions.empty(p)
    }).pipe(Effect.scoped))

  it.effect("91: four nodes: a broadcast reaches every other node once; after one is removed, broadcasts reach the rest", () =>
    Effect.gen(function* () {
      const net = yield* TestNetwork.make({ nodes: 4, channels: [ch1] })
      const [a, b, , d] = net.nodes
      const chans = yield* net.openChannel(ch1)
      const [pa, pb, pc, pd] = yield* probes(chans.map((ch) => ch.messages))
      yield* chans[1]!.send(Envelope.broadcast(F.str("foo")))
      for (const p of [pa!, pc!, pd!]) yield* Assertions.receive(p, msg(b!.nodeId, "foo"))
      yield* settle(10)
      for (const p of [pa!, pb!, pc!, pd!]) yield* Assertions.empty(p, 0)

      yield* net.remove(d!.nodeId)
      yield* within(1_000, "a to see d gone", Effect.repeat(a!.router.peers, { until: (ps) => ps.length === 2 }))
      yield* chans[0]!.send(Envelope.broadcast(F.str("bar")))
      for (const p of [pb!, pc!]) yield* Assertions.receive(p, msg(a!.nodeId, "bar"))
      yield* settle(10)
      for (const p of [pa!, pb!, pc!]) yield* Assertions.empty(p, 0)
    }).pipe(Effect.scoped))

  it.effect("93: with a channel opened after the network started, a fatal PeerError on b gives down then up for b on a", () =>
    Effect.gen(function* () {
      const net = yield* TestNetwork.make({ nodes: 3 })
      const [a, b] = net.nodes
      const [cha] = yield* net.openChannel(ch1)
      const updates = yield* Assertions.probe(yield* a!.peerManager.subscribe)
      yield* cha!.sendError(new PeerError({ nodeId: b!.nodeId, message: "bad block", fatal: true }))
      yield* Assertions.updates(updates, [[b!.nodeId, "down"], [b!.nodeId, "up"]], 2_000)
    }).pipe(Effect.scoped))

  it.effect("100: a peer serving only channel 3 is refused by a node serving 1 and 2; the refusing side does not create it", () =>
    Effect.gen(function* () {
      const net = yield* TestNetwork.make({ nodes: 2, mesh: false })
      const [x, y] = net.nodes
      yield* x!.router.openChannel(ch1)
      yield* x!.router.openChannel(ch2)
      yield* y!.router.openChannel(ch3)
      const [ux, uy] = yield* probes(yield* net.subscribe)
      assert.isTrue(yield* x!.peerManager.add(y!.address))
      yield* settle(100)
      yield* Assertions.noUpdates(ux!)
      yield* Assertions.noUpdates(uy!)
      assert.deepStrictEqual(yield* x!.router.peers, [])
      assert.deepStrictEqual(yield* y!.router.peers, [])
      // y learned of x only through the refused handshake: Inactivate does not create it.
      assert.deepStrictEqual(yield* y!.peerManager.peers, [])
      // x dialed y, so it knows y, and marks it inactive.
      const known = (yield* x!.peerManager.peers).find((p) => p.nodeId === y!.nodeId)
      assert.isTrue(known!.inactive)
    }).pipe(Effect.scoped))

  it.effect("101: a message on channel 1 to a peer serving only channel 2 is silently dropped; the router keeps working and stops cleanly", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const net = yield* Scope.provide(TestNetwork.make({ nodes: 2, mesh: false }), scope)
      const [x, y] = net.nodes
      const x1 = yield* Scope.provide(x!.router.openChannel(ch1), scope)
      const x2 = yield* Scope.provide(x!.router.openChannel(ch2), scope)
      const y2 = yield* Scope.provide(y!.router.openChannel(ch2), scope)
      yield* Scope.provide(net.connect(x!, y!), scope)
      const inbox = yield* Scope.provide(Assertions.probe(y2.messages), scope)
      const [routed] = yield* x!.router.peers
      assert.deepStrictEqual([...routed!.channels], [2])
      yield* within(10, "send on a channel the peer lacks", x1.send(Envelope.to(y!.nodeId, F.str("nope"))))
      yield* x2.send(Envelope.to(y!.nodeId, F.str("yes")))
      yield* Assertions.receive(inbox, msg(x!.nodeId, "yes", 2))
      yield* Assertions.empty(inbox)
      yield* within(100, "the network to stop", Scope.close(scope, Exit.void))
    }))

  it.effect("messages on a channel the receiver closed are dropped (not delivered when it reopens), and the connection stays up", () =>
    Effect.gen(function* () {
      const net = yield* TestNetwork.make({ nodes: 2, channels: [ch1] })
      const [a, b] = net.nodes
      const sender = yield* a!.router.openChannel(ch1)
      const first = yield* Scope.make()
      yield* Scope.provide(b!.router.openChannel(ch1), first)
      yield* Scope.close(first, Exit.void)
      yield* within(10, "send to the closed channel", sender.send(Envelope.to(b!.nodeId, F.str("lost"))))
      yield* settle(10)
      const reopened = yield* b!.router.openChannel(ch1)
      const inbox = yield* Assertions.probe(reopened.messages)
      yield* sender.send(Envelope.to(b!.nodeId, F.str("kept")))
      yield* Assertions.receive(inbox, msg(a!.nodeId, "kept"))
      yield* Assertions.empty(inbox)
      assert.strictEqual((yield* a!.router.peers).length, 1)
    }).pipe(Effect.scoped))

  it.effect("undecodable messages (a BoolValue channel talking to a StringValue channel) are dropped and lower the sender's score", () =>
    Effect.gen(function* () {
      const net = yield* TestNetwork.make({ nodes: 2, channels: [ch1] })
      const [a, b] = net.nodes
      const sender = yield* a!.router.openChannel(F.boolChannel(1))
      const receiver = yield* b!.router.openChannel(ch1)
      const inbox = yield* Assertions.probe(receiver.messages)
      const updates = yield* Assertions.probe(yield* b!.peerManager.subscribe)
      const before = (yield* b!.peerManager.scores).get(a!.nodeId)!
      yield* sender.send(Envelope.to(b!.nodeId, F.bool(true)))
      yield* sender.send(Envelope.to(b!.nodeId, F.bool(true)))
      yield* within(100, "the score to drop twice", Effect.repeat(b!.peerManager.scores, { until: (s) => s.get(a!.nodeId) === before - 2 }))
      yield* Assertions.empty(inbox)
      yield* Assertions.noUpdates(updates)
      assert.strictEqual((yield* b!.router.peers).length, 1)
    }).pipe(Effect.scoped))

  it.effect("a channel's messages stream ends (successfully) when the channel's scope closes", () =>
    Effect.gen(function* () {
      const net = yield* TestNetwork.make({ nodes: 2, channels: [ch1] })
      const [a, b] = net.nodes
      const sender = yield* a!.router.openChannel(ch1)
      const scope = yield* Scope.make()
      const receiver = yield* Scope.provide(b!.router.openChannel(ch1), scope)
      const consumer = yield* Effect.forkChild(Stream.runCollect(receiver.messages))
      yield* sender.send(Envelope.to(b!.nodeId, F.str("one")))
      yield* settle(10)
      yield* Scope.close(scope, Exit.void)
      const exit = yield* within(10, "the consumer to finish", Fiber.await(consumer))
      assert.isTrue(Exit.isSuccess(exit), `consumer ended with ${String(exit)}`)
      assert.deepStrictEqual(Exit.isSuccess(exit) ? exit.value.map((e) => e.message.value) : [], ["one"])
    }).pipe(Effect.scoped))
})

describe("Router at scale and under load", () => {
  it.effect("a broadcast from a hub reaches each of 50 peers exactly once", () =>
    Effect.gen(function* () {
      const net = yield* TestNetwork.make({ nodes: 51, mesh: false, channels: [ch1] })
      const [hub, ...leaves] = net.nodes
      for (const leaf of leaves) yield* net.connect(hub!, leaf)
      assert.strictEqual((yield* hub!.router.peers).length, 50)
      const chans = yield* net.openChannel(ch1)
      const inboxes = yield* probes(chans.slice(1).map((ch) => ch.messages))
      yield* chans[0]!.send(Envelope.broadcast(F.str("hello")))
      for (const p of inboxes) yield* Assertions.receive(p, msg(hub!.nodeId, "hello"))
      yield* settle(10)
      for (const p of inboxes) yield* Assertions.empty(p, 0)
    }).pipe(Effect.scoped))

  for (const queueType of ["fifo", "priority"] as const) {
    it.effect(`${queueType} queues: a reactor that stops reading pushes back to the sender: its send suspends with every queue at capacity; reading again delivers everything in order`, () =>
      Effect.gen(function* () {
        const recvBufferCapacity = 2
        const peerQueueSize = 4
        const bufferSize = 2
        const slow = F.stringChannel(1, { sendQueueCapacity: 1, recvBufferCapacity })
        const net = yield* TestNetwork.make({ nodes: 2, channels: [slow], bufferSize, router: { peerQueueSize, queueType } })
        const [a, b] = net.nodes
        const [cha, chb] = yield* net.openChannel(slow)
        const total = 200
        let sent = 0
        const sender = yield* Effect.forkChild(Effect.forEach(Array.from({ length: total }, (_, i) => i), (i) =>
          Effect.andThen(cha!.send(Envelope.to(b!.nodeId, F.str(`m${i}`))), Effect.sync(() => void sent++)), { discard: true }))
        yield* settle(50)
        const stalledAt = sent
        assert.isTrue(yield* isSuspended(sender), "the sender is suspended")
        yield* settle(50)
        assert.strictEqual(sent, stalledAt, "no progress while the reactor does not read")
        // Everything the sender got rid of sits in bounded buffers: the peer queue plus the message
        // in the send loop's hand (the fifo send loop takes the queue in batches, so up to twice its
        // size), the connection's buffer plus the batch the receiving end took from it (its receive
        // loop's hand included), and the channel's inbound queue.
        const peerStage = queueType === "fifo" ? 2 * peerQueueSize : peerQueueSize + 1
        const bound = peerStage + 2 * bufferSize + recvBufferCapacity
        assert.isAtMost(stalledAt, bound, `at most ${bound} messages buffered, got ${stalledAt}`)
        assert.isAtLeast(stalledAt, peerQueueSize + bufferSize + recvBufferCapacity, "every stage filled before the sender stalled")

        const received = yield* within(2_000, "all messages", Stream.runCollect(Stream.take(chb!.messages, total)))
        assert.deepStrictEqual(received.map((e) => e.message.value), Array.from({ length: total }, (_, i) => `m${i}`))
        assert.isTrue(received.every((e) => e.from === a!.nodeId))
        yield* within(100, "the sender to finish", Fiber.join(sender))
      }).pipe(Effect.scoped))
  }

  it.effect("a sender blocked on a slow peer is released when that peer goes away", () =>
    Effect.gen(function* () {
      const slow = F.stringChannel(1, { sendQueueCapacity: 1, recvBufferCapacity: 1 })
      const net = yield* TestNetwork.make({ nodes: 2, channels: [slow], bufferSize: 1, router: { peerQueueSize: 1 } })
      const [a, b] = net.nodes
      const [cha] = yield* net.openChannel(slow)
      const sender = yield* Effect.forkChild(Effect.forEach(Array.from({ length: 50 }, (_, i) => i), (i) =>
        cha!.send(Envelope.to(b!.nodeId, F.str(`m${i}`))), { discard: true }))
      yield* settle(20)
      assert.isTrue(yield* isSuspended(sender))
      yield* net.remove(b!.nodeId)
      yield* within(1_000, "the blocked sender to be released", Fiber.join(sender))
      assert.deepStrictEqual(yield* a!.router.peers, [])
    }).pipe(Effect.scoped))
})

describe("Test network and shutdown", () => {
  it.effect("136: meshing n nodes gives every node n-1 ups and every peer manager the others' addresses; removing a node gives a down on every other node", () =>
    Effect.gen(function* () {
      const n = 4
      const net = yield* TestNetwork.make({ nodes: n, mesh: false })
      const updates = yield* probes(yield* net.subscribe)
      for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) yield* net.connect(net.nodes[i]!, net.nodes[j]!)
      for (const node of net.nodes) {
        const others = net.peersOf(node.nodeId)
        yield* Assertions.receiveUnordered(updates[node.index]!, others.map((o) => PeerUpdate.up(o.nodeId, [])))
        yield* Assertions.noUpdates(updates[node.index]!)
        const known = yield* Effect.forEach(others, (o) => node.peerManager.addresses(o.nodeId))
        assert.deepStrictEqual(known.map((as) => as.length), others.map(() => 1))
        assert.strictEqual((yield* node.router.peers).length, n - 1)
      }
      const gone = net.nodes[1]!
      yield* net.remove(gone.nodeId)
      for (const node of net.nodes) yield* Assertions.update(updates[node.index]!, gone.nodeId, "down")
    }).pipe(Effect.scoped))

  it.effect("closing the network's scope ends channel streams and subscriptions (after the last message and the peers' downs) and leaves no peer, connection or node behind", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const net = yield* Scope.provide(TestNetwork.make({ nodes: 3, channels: [ch1] }), scope)
      const nodes = [...net.nodes]
      // Channels outlive the network: the routers' shutdown must end their streams by itself.
      const chans = yield* net.openChannel(ch1)
      const consumers = yield* Effect.forEach(chans, (ch) => Effect.forkChild(Stream.runCollect(ch.messages)))
      // So do subscriptions: each must see its peers go down, then end.
      const watchers = yield* Effect.forEach(yield* net.subscribe, (s) => Effect.forkChild(Stream.runCollect(s)))
      yield* chans[0]!.send(Envelope.broadcast(F.str("last")))
      yield* settle(10)
      yield* within(1_000, "the network to stop", Scope.close(scope, Exit.void))
      const exits = yield* within(100, "every channel consumer to finish", Effect.forEach(consumers, Fiber.await))
      for (const exit of exits) assert.isTrue(Exit.isSuccess(exit), `a consumer ended with ${String(exit)}`)
      assert.deepStrictEqual(exits.map((e) => (Exit.isSuccess(e) ? e.value.length : -1)), [0, 1, 1])
      const seen = yield* within(100, "every subscription to end", Effect.forEach(watchers, Fiber.await))
      seen.forEach((exit, i) => {
        assert.isTrue(Exit.isSuccess(exit), `subscription ${i} ended with ${String(exit)}`)
        const downs = Exit.isSuccess(exit) ? exit.value.filter((u) => u.status === "down").map((u) => u.nodeId) : []
        assert.sameMembers(downs, nodes.filter((n) => n.index !== i).map((n) => n.nodeId), `node ${i} saw its peers go down`)
      })
      assert.deepStrictEqual(yield* net.network.nodes, [])
      for (const node of nodes) {
        assert.deepStrictEqual(yield* node.router.peers, [])
        assert.isTrue((yield* node.peerManager.peers).every((p) => p.state === "candidate"), "no peer is left connected or dialing")
        assert.deepStrictEqual(yield* node.transport.endpoints, [])
      }
      // Sending after shutdown is a no-op, not a hang.
      yield* within(10, "a send after shutdown", chans[0]!.send(Envelope.broadcast(F.str("late"))))
    }))

  it.effect("closing the network's scope reports every peer down to subscribers that outlive it", () =>
    Effect.gen(function* () {
      const net = yield* TestNetwork.make({ nodes: 3 })
      const [a, b, c] = net.nodes
      const updates = yield* Assertions.probe(yield* a!.peerManager.subscribe)
      // Stopping b and c (not a): a sees both go down.
      yield* Scope.close(b!.scope, Exit.void)
      yield* Scope.close(c!.scope, Exit.void)
      yield* Assertions.receiveUnordered(updates, [PeerUpdate.down(b!.nodeId), PeerUpdate.down(c!.nodeId)])
    }).pipe(Effect.scoped))
})

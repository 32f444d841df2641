import { assert, describe, it } from "@effect/vitest"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Context, Effect, Layer, Stream } from "effect"
import * as MemoryNetwork from "../../src/layers/MemoryNetwork.ts"
import * as MemoryTransport from "../../src/layers/MemoryTransport.ts"
import * as Node from "../../src/layers/Node.ts"
import * as NodeAddress from "../../src/domain/NodeAddress.ts"
import * as NodeKey from "../../src/domain/NodeKey.ts"
import { PeerManager } from "../../src/services/PeerManager.ts"
import { Router } from "../../src/services/Router.ts"
import { key } from "../../src/testing/Keys.ts"
import { RawPeer } from "../../src/testing/RawPeer.ts"
import { eventually, within } from "../../src/testing/Within.ts"
import * as Assertions from "../../src/testing/Assertions.ts"
import { firstUp } from "../../src/testing/Assertions.ts"
import * as ChannelDescriptor from "../../src/domain/ChannelDescriptor.ts"
import * as Envelope from "../../src/domain/Envelope.ts"
import { create } from "@bufbuild/protobuf"
import { StringValueSchema } from "@bufbuild/protobuf/wkt"
import { Transport } from "../../src/services/Transport.ts"

const memoryAddress = (k: NodeKey.NodeKey) => NodeAddress.make({ protocol: MemoryTransport.PROTOCOL, nodeId: k.nodeId })

describe("Node", () => {
  it.effect("memory nodes told only of a bootstrap node find each other through PEX", () =>
    Effect.gen(function* () {
      const network = yield* MemoryNetwork.make()
      const [k0, k1, k2, k3] = [key(1), key(2), key(3), key(4)]
      const build = (k: NodeKey.NodeKey, bootstrap: ReadonlyArray<NodeKey.NodeKey>) =>
        Effect.map(Layer.build(Node.layerMemory(network, { network: "test", moniker: `m${k.nodeId.slice(0, 4)}`, nodeKey: k, bootstrapPeers: bootstrap.map(memoryAddress) })), (ctx) => ({
          router: Context.get(ctx, Router),
          peerManager: Context.get(ctx, PeerManager)
        }))
      yield* build(k0, [])
      const nodes = [yield* build(k1, [k0]), yield* build(k2, [k0]), yield* build(k3, [k0])]
      yield* eventually("60 seconds", "every node to know the three others", Effect.map(
        Effect.forEach(nodes, (n) => n.peerManager.peers),
        (lists) => lists.every((peers) => peers.length === 3)
      ))
      const routed = yield* nodes[0]!.router.peers
      assert.isTrue(routed.length >= 1)
      assert.include([...(yield* nodes[0]!.router.nodeInfo).channels], 0x00)
    }).pipe(Effect.scoped))

  it.live("handshake_timeout bounds inbound connections from accept, in the transport too (a silent socket is closed after 300 ms, not 20 s)", () =>
    Effect.gen(function* () {
      const ctx = yield* Layer.build(Node.layer({ home: mkdtempSync(join(tmpdir(), "p2p-node-")), network: "test", moniker: "timeout", listen: { host: "127.0.0.1", port: 0 }, handshakeTimeout: 300 }))
      const [endpoint] = yield* Context.get(ctx, Transport).endpoints
      const started = performance.now()
      const silent = yield* Effect.promise(() => RawPeer.connect(endpoint!.port))
      yield* within("3 seconds", "the node to close the silent connection", Effect.promise(() => silent.closed))
      const ms = performance.now() - started
      assert.isAbove(ms, 250)
      assert.isBelow(ms, 2_000)
    }).pipe(Effect.scoped))

  it.live("a TCP node keeps its key and known peers in its home directory across restarts", () =>
    Effect.gen(function* () {
      const home = mkdtempSync(join(tmpdir(), "p2p-node-"))
      const peer = NodeAddress.unsafeParse(`${key(9).nodeId}@127.0.0.1:1`)
      const run = Effect.scoped(Effect.gen(function* () {
        const ctx = yield* Layer.build(Node.layer({ home, network: "test", moniker: "tcp-node", listen: { host: "127.0.0.1", port: 0 }, persistentPeers: [peer], pex: false }))
        const pm = Context.get(ctx, PeerManager)
        const info = yield* Context.get(ctx, Router).nodeInfo
        return { id: info.nodeId, peers: (yield* pm.peers).map((p) => p.nodeId) }
      }))
      const first = yield* run
      const second = yield* run
      assert.strictEqual(first.id, second.id)
      assert.deepStrictEqual(second.peers, [key(9).nodeId])
    }))

  it.live("a channel opened after a TCP connection exists is not on that connection: its messages are dropped, the peer stays (our doing, not the peer's)", () =>
    Effect.gen(function* () {
      const late = ChannelDescriptor.make({ id: 0x77, messageType: StringValueSchema })
      const shared = ChannelDescriptor.make({ id: 0x66, messageType: StringValueSchema })
      const tcpNode = (moniker: string, persistentPeers: ReadonlyArray<NodeAddress.NodeAddress> = [], channels: ReadonlyArray<ChannelDescriptor.ChannelDescriptor> = []) =>
        Effect.gen(function* () {
          const ctx = yield* Layer.build(Node.layer({ home: mkdtempSync(join(tmpdir(), "p2p-node-")), network: "test", moniker, listen: { host: "127.0.0.1", port: 0 }, persistentPeers, pex: false, channels }))
          const router = Context.get(ctx, Router)
          const [endpoint] = yield* Context.get(ctx, Transport).endpoints
          const info = yield* router.nodeInfo
          return { router, peerManager: Context.get(ctx, PeerManager), address: NodeAddress.unsafeParse(`${info.nodeId}@127.0.0.1:${endpoint!.port}`), nodeId: info.nodeId }
        })
      const a = yield* tcpNode("a", [], [shared])
      const updates = yield* a.peerManager.subscribe
      // b declares the channel up front, so a learns that b serves it; a opens it only later.
      const b = yield* tcpNode("b", [a.address], [shared, late])
      yield* within("5 seconds", "b to come up at a", firstUp(updates, b.nodeId))
      const [onA, onB] = [yield* a.router.openChannel(late), yield* b.router.openChannel(late)]
      const inbox = yield* Assertions.probe(onB.messages)
      const downs = yield* Assertions.probe(Stream.filter(updates, (u) => u.nodeId === b.nodeId && u.status === "down"))
      for (let i = 0; i < 3; i++) yield* onA.send(Envelope.to(b.nodeId, create(StringValueSchema, { value: `late ${i}` })))
      yield* Effect.sleep("300 millis")
      yield* Assertions.empty(inbox, 0)
      yield* Assertions.empty(downs, 0)
      assert.include((yield* a.router.peers).map((p) => p.nodeId), b.nodeId)
      assert.deepStrictEqual(yield* a.peerManager.bans, [])
    }).pipe(Effect.scoped))
})


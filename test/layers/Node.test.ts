import { assert, describe, it } from "@effect/vitest"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Context, Effect, Layer } from "effect"
import * as MemoryNetwork from "../../src/layers/MemoryNetwork.ts"
import * as MemoryTransport from "../../src/layers/MemoryTransport.ts"
import * as Node from "../../src/layers/Node.ts"
import * as NodeAddress from "../../src/domain/NodeAddress.ts"
import * as NodeKey from "../../src/domain/NodeKey.ts"
import { PeerManager } from "../../src/services/PeerManager.ts"
import { Router } from "../../src/services/Router.ts"
import { key } from "../../src/testing/Keys.ts"
import { eventually } from "../../src/testing/Within.ts"

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
})

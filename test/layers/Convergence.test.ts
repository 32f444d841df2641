// Convergence: 50 memory nodes, each told only of one bootstrap node, find enough peers through PEX.
import { assert, describe, it } from "@effect/vitest"
import { Clock, Context, Effect, Layer } from "effect"
import * as NodeAddress from "../../src/domain/NodeAddress.ts"
import * as Keys from "../../src/testing/Keys.ts"
import * as MemoryNetwork from "../../src/layers/MemoryNetwork.ts"
import * as MemoryTransport from "../../src/layers/MemoryTransport.ts"
import * as Node from "../../src/layers/Node.ts"
import { Router } from "../../src/services/Router.ts"
import { eventually } from "../../src/testing/Within.ts"

const NODES = 50
/** Every node should reach its outbound target (maxOutboundPeers, 10 by default). */
const TARGET = 10

describe("PEX convergence", () => {
  it.effect(`${NODES} nodes told only of a bootstrap node each reach ${TARGET} peers within 60 virtual seconds`, () =>
    Effect.gen(function* () {
      const wallStart = Date.now()
      const network = yield* MemoryNetwork.make()
      const keys = Array.from({ length: NODES }, (_, i) => Keys.key(i + 1))
      const bootstrap = NodeAddress.make({ protocol: MemoryTransport.PROTOCOL, nodeId: keys[0]!.nodeId })
      const routers: Array<Router["Service"]> = []
      for (const [i, nodeKey] of keys.entries()) {
        const ctx = yield* Layer.build(Node.layerMemory(network, {
          network: "convergence",
          moniker: `n${i}`,
          nodeKey,
          bootstrapPeers: i === 0 ? [] : [bootstrap]
        }))
        routers.push(Context.get(ctx, Router))
      }
      const start = yield* Clock.currentTimeMillis
      const counts = () => Effect.forEach(routers, (r) => Effect.map(r.peers, (p) => p.length))
      yield* eventually("60 seconds", `every node to reach ${TARGET} peers`, Effect.map(counts(), (c) => c.every((n) => n >= TARGET)), 100)
      const virtual = (yield* Clock.currentTimeMillis) - start
      const final = yield* counts()
      console.log(`convergence: ${NODES} nodes reached >= ${TARGET} peers after ${virtual} ms virtual, ${Date.now() - wallStart} ms wall; peers min ${Math.min(...final)}, max ${Math.max(...final)}`)
      assert.isTrue(final.every((n) => n >= TARGET))
      assert.isTrue(final.every((n) => n <= 50))
    }).pipe(Effect.scoped), 120_000)
})

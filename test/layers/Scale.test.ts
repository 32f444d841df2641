// Scale: 200 memory nodes with default limits, each told only of node 0, an ordinary (not
// seed-mode) bootstrap node, all find their outbound peers through PEX. The 1,000-node version is
// `npm run bench -- scale`.
import { assert, describe, it } from "@effect/vitest"
import { Clock, Context, Effect, Layer } from "effect"
import { TestClock } from "effect/testing"
import * as NodeAddress from "../../src/domain/NodeAddress.ts"
import * as MemoryNetwork from "../../src/layers/MemoryNetwork.ts"
import * as MemoryTransport from "../../src/layers/MemoryTransport.ts"
import * as Node from "../../src/layers/Node.ts"
import { Router } from "../../src/services/Router.ts"
import * as Keys from "../../src/testing/Keys.ts"

const NODES = 200
/** `maxOutboundPeers` and `maxInboundPeers` defaults of `Node.Config`. */
const OUTBOUND = 10
const INBOUND = 40
/**
 * Virtual time by which every node has a peer. Measured: ~7 s. All 199 nodes dial the bootstrap
 * at once; it admits 40 inbound and 32 more on grace (Node.GRACE_PEERS), and the other ~127 are
 * refused and stay at zero peers until a retry, which waits minRetryTime (250 ms) plus up to 5 s
 * of jitter (PeerManager defaults), and may be refused again while the grace slots are busy.
 * Twice the measured time, so a slower admission path fails here rather than passing unnoticed.
 */
const ALL_HAVE_PEER_MS = 15_000
/**
 * Virtual time by which every node but the bootstrap has its 10 outbound peers. Measured: ~7-7.5 s
 * (a node that gets addresses from the bootstrap dials 10 of them within a step or two, so this
 * tracks the time above). 4× margin: the bound is about "converges", not about the jitter draw.
 */
const CONVERGED_MS = 30_000
/** TestClock step. */
const STEP = 100

describe("scale", () => {
  it.effect(`${NODES} nodes told only of an ordinary bootstrap node all reach ${OUTBOUND} outbound peers within ${CONVERGED_MS / 1000} virtual seconds`, () =>
    Effect.gen(function* () {
      const wallStart = Date.now()
      const network = yield* MemoryNetwork.make()
      const keys = Array.from({ length: NODES }, (_, i) => Keys.key(i + 1))
      const bootstrap = NodeAddress.make({ protocol: MemoryTransport.PROTOCOL, nodeId: keys[0]!.nodeId })
      const routers: Array<Router["Service"]> = []
      for (const [i, nodeKey] of keys.entries()) {
        const ctx = yield* Layer.build(Node.layerMemory(network, {
          network: "scale",
          moniker: `n${i}`,
          nodeKey,
          bootstrapPeers: i === 0 ? [] : [bootstrap]
        }))
        routers.push(Context.get(ctx, Router))
      }
      const built = Date.now()
      const start = yield* Clock.currentTimeMillis
      let elapsed = 0
      let allHavePeer: number | undefined
      let converged: number | undefined
      let bootstrapMaxInbound = 0
      let maxOutbound = 0
      let total: Array<number> = []
      let outbound: Array<number> = []
      while (true) {
        const peers = yield* Effect.forEach(routers, (r) => r.peers)
        total = peers.map((p) => p.length)
        outbound = peers.map((p) => p.filter((x) => x.direction === "outgoing").length)
        // The router routes a peer only after the PeerManager admitted it, and drops it before
        // telling the PeerManager it left, so these are bounded by the PeerManager's limits:
        // inbound 40 + 32 on grace, outbound 10 (dials in flight included). Sampled every step.
        bootstrapMaxInbound = Math.max(bootstrapMaxInbound, total[0]! - outbound[0]!)
        maxOutbound = Math.max(maxOutbound, ...outbound)
        if (allHavePeer === undefined && total.every((n) => n > 0)) allHavePeer = elapsed
        if (outbound.every((n, i) => i === 0 || n >= OUTBOUND)) {
          converged = elapsed
          break
        }
        if (elapsed >= CONVERGED_MS) break
        yield* TestClock.adjust(STEP)
        elapsed = (yield* Clock.currentTimeMillis) - start
      }
      const stragglers = outbound.filter((n, i) => i > 0 && n < OUTBOUND).length
      console.log(
        `scale: ${NODES} nodes, build ${built - wallStart} ms wall; every node had a peer at ${allHavePeer} ms virtual, ` +
          `converged at ${converged} ms virtual (${stragglers} stragglers), ${Date.now() - wallStart} ms wall; ` +
          `peers min ${Math.min(...total)} max ${Math.max(...total)}, bootstrap inbound at most ${bootstrapMaxInbound}`
      )
      assert.isDefined(allHavePeer, `some node still had no peer after ${elapsed} ms virtual`)
      assert.isAtMost(allHavePeer!, ALL_HAVE_PEER_MS, "every node has a peer")
      assert.isDefined(converged, `${stragglers} nodes below ${OUTBOUND} outbound peers after ${elapsed} ms virtual`)
      assert.isAtMost(bootstrapMaxInbound, INBOUND + Node.GRACE_PEERS, "the bootstrap node's inbound peers stay within maxInboundPeers + GRACE_PEERS")
      assert.isAtMost(maxOutbound, OUTBOUND, "no node has more outbound peers than maxOutboundPeers")
    }).pipe(Effect.scoped), 60_000)
})

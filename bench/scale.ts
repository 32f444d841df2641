/**
 * scale: N memory nodes (`Node.layerMemory`, default options) on one `MemoryNetwork` under
 * `TestClock`, each told only of node 0, an ordinary (not seed-mode) bootstrap node. The clock is
 * stepped 100 ms at a time until every node but the bootstrap has its outbound target
 * (`maxOutboundPeers`, 10 by default: peers whose router direction is "outgoing"), or until 120 s
 * of virtual time have passed (then `converged: false` with the number of `stragglers`).
 *
 * N is 1,000 (`SCALE_NODES` overrides it). A 200-node run goes first in the same process as the
 * baseline (or an N-node one when N < 200), and each run prints one line:
 *
 * - `wall_s`: build + convergence, wall clock; `build_s`: building the N nodes; `virtual_s`:
 *   TestClock time until convergence; `teardown_s`: closing the nodes (not in `wall_s`);
 * - `rss_max_mb`: largest `process.memoryUsage().rss` sampled at each step of this run;
 *   `max_rss_mb`: the process's peak RSS so far (`process.resourceUsage().maxRSS`);
 * - `all_have_peer_s`: virtual time when no node had zero peers any more;
 * - `peers`: histogram of total routed peers per node (`{ "<count>": nodes }`); `outbound`: the
 *   same of outbound peers per node, bootstrap included; `min_outbound` leaves the bootstrap out;
 *   `bootstrap_max_inbound`: the most inbound peers node 0 had at any step;
 * - `baseline`: wall ms per node of the baseline run; `ratio`: this run's wall ms per node over
 *   it (1 means cost grows linearly with N; above 1, superlinearly).
 */
import { Clock, Context, Effect, Layer } from "effect"
import { TestClock } from "effect/testing"
import * as NodeAddress from "../src/domain/NodeAddress.ts"
import * as NodeKey from "../src/domain/NodeKey.ts"
import * as MemoryNetwork from "../src/layers/MemoryNetwork.ts"
import * as MemoryTransport from "../src/layers/MemoryTransport.ts"
import * as Node from "../src/layers/Node.ts"
import { Router } from "../src/services/Router.ts"

const NODES = Number(process.env["SCALE_NODES"] ?? 1000)
const BASE = Math.min(200, NODES)
/** `maxOutboundPeers` default (Node.Config). */
const TARGET = 10
const STEP = 100
const LIMIT = 120_000

/** Distinct keys for any number of nodes (Keys.key stops at 255): the seed starts with i + 1. */
const keyOf = (i: number) => {
  const seed = new Uint8Array(32)
  new DataView(seed.buffer).setUint32(0, i + 1)
  return NodeKey.fromSeed(seed)
}

const histogram = (values: ReadonlyArray<number>) => {
  const h: Record<string, number> = {}
  for (const v of values) h[v] = (h[v] ?? 0) + 1
  return h
}

const mb = (bytes: number) => Math.round(bytes / 1e6)

const run = (n: number) =>
  Effect.gen(function* () {
    const wall = performance.now()
    let rssMax = process.memoryUsage().rss
    // A fresh TestClock per run. Building takes seconds of wall time with no clock adjustment;
    // TestClock's warning about that would land among the JSON lines, hence the long warningDelay.
    const result = yield* Effect.scoped(Effect.gen(function* () {
      const network = yield* MemoryNetwork.make()
      const keys = Array.from({ length: n }, (_, i) => keyOf(i))
      const bootstrap = NodeAddress.make({ protocol: MemoryTransport.PROTOCOL, nodeId: keys[0]!.nodeId })
      const routers: Array<Router["Service"]> = []
      for (const [i, nodeKey] of keys.entries()) {
        const ctx = yield* Layer.build(Node.layerMemory(network, { network: "scale", moniker: `n${i}`, nodeKey, bootstrapPeers: i === 0 ? [] : [bootstrap] }))
        routers.push(Context.get(ctx, Router))
      }
      const built = performance.now()
      const start = yield* Clock.currentTimeMillis
      let total: Array<number> = []
      let outbound: Array<number> = []
      let allHavePeer: number | undefined
      let bootstrapMaxInbound = 0
      let stragglers = n - 1
      let elapsed = 0
      while (true) {
        const peers = yield* Effect.forEach(routers, (r) => r.peers)
        total = peers.map((p) => p.length)
        outbound = peers.map((p) => p.filter((x) => x.direction === "outgoing").length)
        bootstrapMaxInbound = Math.max(bootstrapMaxInbound, total[0]! - outbound[0]!)
        if (allHavePeer === undefined && total.every((c) => c > 0)) allHavePeer = elapsed
        stragglers = outbound.filter((c, i) => i > 0 && c < TARGET).length
        rssMax = Math.max(rssMax, process.memoryUsage().rss)
        if (stragglers === 0 || elapsed >= LIMIT) break
        yield* TestClock.adjust(STEP)
        elapsed = (yield* Clock.currentTimeMillis) - start
      }
      const done = performance.now()
      return {
        converged: stragglers === 0,
        stragglers,
        wall_s: +((done - wall) / 1000).toFixed(2),
        build_s: +((built - wall) / 1000).toFixed(2),
        virtual_s: elapsed / 1000,
        all_have_peer_s: allHavePeer === undefined ? null : allHavePeer / 1000,
        peers: histogram(total),
        outbound: histogram(outbound),
        min_outbound: Math.min(...outbound.slice(1)),
        bootstrap_max_inbound: bootstrapMaxInbound,
        done
      }
    })).pipe(Effect.provide(TestClock.layer({ warningDelay: "10 minutes" })))
    const { done, ...figures } = result
    const teardown = (performance.now() - done) / 1000
    return {
      nodes: n,
      ...figures,
      teardown_s: +teardown.toFixed(2),
      rss_max_mb: mb(rssMax),
      max_rss_mb: mb(process.resourceUsage().maxRSS * 1024)
    }
  })

const gc = () => (globalThis as { gc?: () => void }).gc?.()

const main = Effect.gen(function* () {
  const base = yield* run(BASE)
  const basePerNode = (base.wall_s * 1000) / BASE
  console.log(JSON.stringify({ name: "scale", ...base, baseline: +basePerNode.toFixed(2), ratio: 1 }))
  if (NODES === BASE) return
  gc()
  const r = yield* run(NODES)
  const perNode = (r.wall_s * 1000) / NODES
  console.log(JSON.stringify({ name: "scale", ...r, baseline: +basePerNode.toFixed(2), ratio: +(perNode / basePerNode).toFixed(3) }))
})

Effect.runPromise(main).then(
  () => process.exit(0),
  (e) => {
    console.error(e)
    process.exit(1)
  }
)

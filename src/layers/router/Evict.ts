/**
 * The evict loop: the PeerManager names a peer to drop (`evictNext`, when a better peer waits for
 * a slot, or the peer was banned or errored fatally), and the router ends its route. See
 * docs/ARCHITECTURE.md, Router.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as Metrics from "../Metrics.ts"
import type { State } from "./State.ts"

/**
 * Evicts peers forever. Closing the peer's queue and connection ends its route, whose cleanup
 * tells the PeerManager. A peer admitted but not routed yet is marked in `evictRequested`: its
 * route ends as soon as it registers. Otherwise the peer is already gone and the request is stale.
 */
export const evictLoop = Effect.fnUntraced(function* (state: State) {
  while (true) {
    const id = yield* state.peerManager.evictNext
    const entry = state.peers.get(id)
    yield* Metric.update(Metrics.peersEvicted, 1)
    if (entry === undefined) {
      if (state.admittedPeers.has(id)) state.evictRequested.add(id)
      continue
    }
    yield* Effect.logDebug(`evicting peer ${id}`)
    yield* entry.queue.close
    yield* entry.connection.close
  }
})

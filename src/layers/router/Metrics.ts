/**
 * The router's metrics, batched: hot-path counts accumulate in plain numbers and reach the metrics
 * once a second (and at shutdown), because a metric update per message would cost more than the
 * message's queue hop. Labelled series are made once and cached. Metric names and labels follow
 * CometBFT's (docs/ARCHITECTURE.md, Metrics).
 *
 * @since 0.1.0
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Metric from "effect/Metric"
import type * as NodeId from "../../domain/NodeId.ts"
import * as Metrics from "../Metrics.ts"
import type { PeerEntry } from "./State.ts"

/** A counter or gauge of the router. */
export type Counter = Metric.Metric<number, unknown>

/** A channel ID as CometBFT labels it: Go's `%#x` (`0x0`, `0x30`). */
export const channelLabel = (id: number): string => `0x${id.toString(16)}`

/** The router's metric handles and its batch of counts not yet flushed. */
export interface RouterMetrics {
  /** Adds `n` to `metric` at the next flush. */
  readonly count: (metric: Counter, n: number) => void
  /** The series of `metric` for one peer and channel, cached in `cache` (one per peer and metric). */
  readonly perChannel: (cache: Map<number, Counter>, metric: Counter, peer: NodeId.NodeId, channelId: number) => Counter
  /** The `p2p_message_send_bytes_total` series of a message type. */
  readonly sendBytesByType: (messageType: string) => Counter
  /** The `p2p_message_receive_bytes_total` series of a message type. */
  readonly receiveBytesByType: (messageType: string) => Counter
  /** `p2p_inbound_refused` by reason. */
  readonly refused: (reason: string) => Counter
  /** `p2p_peer_queue_dropped_msgs` by reason. */
  readonly dropped: {
    readonly unknownPeer: Counter
    readonly noChannel: Counter
    readonly unknownChannel: Counter
    readonly undecodable: Counter
    readonly unencodable: Counter
    readonly closed: Counter
  }
  /** Pushes the batch to the metrics and samples the peers' queue gauges. */
  readonly flush: Effect.Effect<void>
  /** Asks for a flush within a second though nothing was counted (a peer came: its gauge appears). */
  readonly touch: () => void
  /** Waits until there is something to flush: counts, a touch, or a gauge not yet back to zero. */
  readonly dirty: Effect.Effect<void>
  /** Drops a gone peer's series (after flushing them), so a node that meets many peers over time does not grow its metrics without bound. */
  readonly forget: (entry: PeerEntry) => void
}

/** Bytes waiting for a peer: its router queue and its connection's channel queues. */
const pendingBytesOf = (entry: PeerEntry) =>
  entry.connection.status === undefined
    ? Effect.succeed(entry.queue.bytes())
    : Effect.map(entry.connection.status, (status) => status.channels.reduce((sum, c) => sum + c.sendQueueBytes, entry.queue.bytes()))

/**
 * Makes the batch for the peers in `peers`; the last flush runs when the scope closes. The gauges
 * exist from the start, at zero, rather than from their first change.
 */
export const make = Effect.fnUntraced(function* (peers: ReadonlyMap<NodeId.NodeId, PeerEntry>) {
  const metricsContext = yield* Effect.context<never>()
  const pendingCounts = new Map<Counter, number>()
  // An idle router has nothing to flush: the flush loop sleeps only while something waits.
  let isDirty = false
  let dirtied: Deferred.Deferred<void> | undefined
  const touch = () => {
    if (isDirty) return
    isDirty = true
    const waiting = dirtied
    dirtied = undefined
    if (waiting !== undefined) Deferred.doneUnsafe(waiting, Exit.void)
  }
  const dirty: Effect.Effect<void> = Effect.suspend(() => (isDirty ? Effect.void : Deferred.await(dirtied ??= Deferred.makeUnsafe<void>())))
  const count = (m: Counter, n: number) => {
    pendingCounts.set(m, (pendingCounts.get(m) ?? 0) + n)
    if (!isDirty) touch()
  }
  // Looked up per message: no closure allocated on a hit.
  const withLabels = <K>(cache: Map<K, Counter>, key: K, metric: Counter, labels: Record<string, string>) => {
    const m = Metric.withAttributes(metric, labels)
    cache.set(key, m)
    return m
  }
  const sendBytesByType = new Map<string, Counter>()
  const receiveBytesByType = new Map<string, Counter>()
  const refusals = new Map<string, Counter>()
  const flush = Effect.gen(function* () {
    isDirty = false
    for (const [m, n] of pendingCounts) m.updateUnsafe(n, metricsContext)
    pendingCounts.clear()
    let queued = 0
    let pending = 0
    for (const entry of peers.values()) {
      queued += entry.queue.size()
      const bytes = yield* pendingBytesOf(entry)
      pending += bytes
      entry.pendingBytes.updateUnsafe(bytes, metricsContext)
    }
    Metrics.routerPeerQueueSend.updateUnsafe(queued, metricsContext)
    // A gauge above zero must be sampled again until it is back to zero.
    if (queued > 0 || pending > 0) touch()
  })
  yield* Effect.addFinalizer(() => flush)
  yield* Metric.update(Metrics.peers, 0)
  yield* Metric.update(Metrics.routerPeerQueueSend, 0)
  yield* Metric.update(Metrics.peersEvicted, 0)
  const dropped = (reason: string) => Metric.withAttributes(Metrics.peerQueueDroppedMsgs, { reason })
  const metrics: RouterMetrics = {
    count,
    perChannel: (cache, metric, peer, channelId) =>
      cache.get(channelId) ?? withLabels(cache, channelId, metric, { peer_id: peer, chID: channelLabel(channelId) }),
    sendBytesByType: (messageType) =>
      sendBytesByType.get(messageType) ?? withLabels(sendBytesByType, messageType, Metrics.messageSendBytesTotal, { message_type: messageType }),
    receiveBytesByType: (messageType) =>
      receiveBytesByType.get(messageType) ?? withLabels(receiveBytesByType, messageType, Metrics.messageReceiveBytesTotal, { message_type: messageType }),
    refused: (reason) => refusals.get(reason) ?? withLabels(refusals, reason, Metrics.inboundRefused, { reason }),
    dropped: {
      unknownPeer: dropped("unknown_peer"),
      noChannel: dropped("peer_lacks_channel"),
      unknownChannel: dropped("unknown_channel"),
      undecodable: dropped("undecodable"),
      unencodable: dropped("unencodable"),
      closed: dropped("channel_closed")
    },
    flush,
    touch,
    dirty,
    forget: (entry) => {
      for (const m of [...entry.sentBytes.values(), ...entry.receivedBytes.values(), entry.pendingBytes]) {
        const unflushed = pendingCounts.get(m)
        pendingCounts.delete(m)
        if (unflushed !== undefined) m.updateUnsafe(unflushed, metricsContext)
        Metric.removeUnsafe(m, metricsContext)
      }
    }
  }
  return metrics
})

/**
 * Flushes the batch a second after something was counted, forever (a fiber of the router's
 * scope). A router with nothing to flush does not wake: in a simulation of many nodes, a timer per
 * node per second costs more than the nodes' traffic.
 */
export const flushLoop = (metrics: RouterMetrics) => Effect.forever(Effect.andThen(metrics.dirty, Effect.andThen(Effect.sleep(1000), metrics.flush)))

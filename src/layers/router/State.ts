/**
 * The one record the router's fibers share. Its maps and sets are plain mutable JavaScript: every
 * fiber that touches them belongs to the router's scope, and each read-then-write happens with no
 * suspension in between. Which fiber writes which field is in the map at the top of
 * `layers/Router.ts`.
 *
 * @since 0.1.0
 */
import type * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as FiberSet from "effect/FiberSet"
import * as Queue from "effect/Queue"
import * as ChannelDescriptor from "../../domain/ChannelDescriptor.ts"
import type * as Envelope from "../../domain/Envelope.ts"
import type * as NodeId from "../../domain/NodeId.ts"
import type * as NodeKey from "../../domain/NodeKey.ts"
import * as NodeInfo from "../../domain/NodeInfo.ts"
import { AddressResolver } from "../../services/AddressResolver.ts"
import { NodeIdentity } from "../../services/NodeIdentity.ts"
import { PeerManager } from "../../services/PeerManager.ts"
import type { Options, RoutedPeer } from "../../services/Router.ts"
import { Transport, type Connection } from "../../services/Transport.ts"
import * as Signal from "../Signal.ts"
import * as RouterMetrics from "./Metrics.ts"
import type * as PeerQueue from "./PeerQueue.ts"

/** The options after validation and defaults. */
export type ResolvedOptions = Options

/** An open channel: its descriptor, the queue its `messages` stream reads, and its message counters. */
export interface OpenChannel {
  readonly descriptor: ChannelDescriptor.ChannelDescriptor
  readonly inbound: Queue.Queue<Envelope.Inbound<unknown>, Cause.Done>
  readonly sentMsgs: RouterMetrics.Counter
  readonly receivedMsgs: RouterMetrics.Counter
}

/** A routed peer: what `Router.peers` shows, plus its outbound queue, its connection and its metric series. */
export interface PeerEntry extends RoutedPeer {
  readonly queue: PeerQueue.PeerQueue
  readonly connection: Connection
  /** `p2p_peer_send_bytes_total` / `p2p_peer_receive_bytes_total` of this peer, by channel. */
  readonly sentBytes: Map<number, RouterMetrics.Counter>
  readonly receivedBytes: Map<number, RouterMetrics.Counter>
  /** `p2p_peer_pending_send_bytes` of this peer. */
  readonly pendingBytes: RouterMetrics.Counter
  /**
   * Sends a message straight to the connection, counted as the send loop counts it, when nothing
   * is queued for the peer, its send loop holds nothing and the connection takes it without
   * waiting (`router/FastPath.ts`); `false` (nothing sent) otherwise: queue it.
   */
  readonly sendNow: (channelId: number, data: Uint8Array, messageType: string) => boolean
}

/** The router's shared state and the services its fibers use. */
export interface State {
  readonly options: ResolvedOptions
  readonly transport: Transport["Service"]
  readonly peerManager: PeerManager["Service"]
  readonly resolver: AddressResolver["Service"]
  readonly key: NodeKey.NodeKey
  readonly metrics: RouterMetrics.RouterMetrics
  /** Connections between accept or dial and their end: handshakes, admission, then the peer's route. */
  readonly fibers: FiberSet.FiberSet<unknown, unknown>
  /** Open channels by ID. Written by `openChannel` and its scope. */
  readonly channels: Map<number, OpenChannel>
  /** Routed peers by node ID. Written by the peer's route, from registration to cleanup. */
  readonly peers: Map<NodeId.NodeId, PeerEntry>
  /** The channels our NodeInfo lists: those of the options, then every open one. */
  readonly advertised: Map<number, ChannelDescriptor.ChannelDescriptor>
  /** The channels of the options: advertised even while closed. */
  readonly declared: ReadonlySet<number>
  /** Admitted by the PeerManager, route not yet registered. */
  readonly admittedPeers: Set<NodeId.NodeId>
  /** Eviction asked for while the peer was admitted but not yet routed. */
  readonly evictRequested: Set<NodeId.NodeId>
  /** Our NodeInfo as of now (its channels change as channels open and close). */
  readonly nodeInfo: () => NodeInfo.NodeInfo
  /** The time bounds of dials and handshakes (one timer for all of them). */
  readonly deadlines: Signal.Deadlines
  /** `Router.peers` as last built; dropped whenever `peers` changes (set it to `undefined` then). */
  routedView: ReadonlyArray<RoutedPeer> | undefined
}

/**
 * Ends a channel's inbound queue: its `messages` stream completes (rather than failing with an
 * interruption, which is what a bare `Queue.shutdown` gives its readers), buffered messages are
 * dropped, and a receive loop waiting for room is released (its message is counted as dropped).
 */
export const closeInbound = (inbound: Queue.Queue<Envelope.Inbound<unknown>, Cause.Done>) => {
  Queue.endUnsafe(inbound)
  Queue.shutdownUnsafe(inbound)
}

/**
 * Builds the state in the current scope: the metric batch (flushed one last time when the scope
 * closes), the fiber set (its fibers interrupted when it closes), and a finalizer that ends every
 * open channel's `messages`, so reactors reading them finish instead of waiting forever on a
 * router that is gone (v0.36 closes the queues in OnStop too). Fails if a channel of the options
 * is invalid.
 */
export const make = Effect.fnUntraced(function* (options: ResolvedOptions) {
  const transport = yield* Transport
  const peerManager = yield* PeerManager
  const resolver = yield* AddressResolver
  const { key } = yield* NodeIdentity
  const peers = new Map<NodeId.NodeId, PeerEntry>()
  const metrics = yield* RouterMetrics.make(peers)
  const fibers = yield* FiberSet.make()
  const channels = new Map<number, OpenChannel>()
  yield* Effect.addFinalizer(() =>
    Effect.sync(() => {
      for (const ch of channels.values()) closeInbound(ch.inbound)
    })
  )
  const advertised = new Map<number, ChannelDescriptor.ChannelDescriptor>()
  for (const d of options.channels) advertised.set(d.id, yield* Effect.fromResult(ChannelDescriptor.validate(d)))

  const endpoints = yield* transport.endpoints
  const first = endpoints[0]
  const listenAddr = options.nodeInfo.listenAddr ??
    (first !== undefined && first.ip !== "" ? `tcp://${first.ip.includes(":") ? `[${first.ip}]` : first.ip}:${first.port}` : "0.0.0.0:0")
  const nodeInfo = (): NodeInfo.NodeInfo =>
    NodeInfo.make({
      nodeId: key.nodeId,
      listenAddr,
      network: options.nodeInfo.network,
      moniker: options.nodeInfo.moniker,
      channels: [...advertised.keys()],
      ...(options.nodeInfo.version === undefined ? {} : { version: options.nodeInfo.version }),
      ...(options.nodeInfo.protocolVersion === undefined ? {} : { protocolVersion: options.nodeInfo.protocolVersion }),
      ...(options.nodeInfo.other === undefined ? {} : { other: options.nodeInfo.other })
    })

  const state: State = {
    options,
    transport,
    peerManager,
    resolver,
    key,
    metrics,
    fibers,
    channels,
    peers,
    advertised,
    declared: new Set(advertised.keys()),
    admittedPeers: new Set(),
    evictRequested: new Set(),
    nodeInfo,
    deadlines: Signal.deadlines(yield* Effect.scope, yield* Clock.Clock),
    routedView: undefined
  }
  return state
})

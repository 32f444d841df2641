/**
 * The Router (docs/ARCHITECTURE.md#router) executes the PeerManager's policy: it dials and accepts, handshakes
 * concurrently, filters, admits, routes typed messages between reactors' channels and peers, and
 * evicts. Reactors open channels typed by a protobuf message; the router encodes and decodes.
 *
 * @since 0.1.0
 */
import type { DescMessage, MessageShape } from "@bufbuild/protobuf"
import { Context, Schema, type Effect, type Scope, type Stream } from "effect"
import type * as ChannelDescriptor from "../domain/ChannelDescriptor.ts"
import type * as Endpoint from "../domain/Endpoint.ts"
import type * as Envelope from "../domain/Envelope.ts"
import type * as NodeId from "../domain/NodeId.ts"
import type * as NodeInfo from "../domain/NodeInfo.ts"
import type { PeerError } from "../domain/PeerError.ts"
import type { ConnectionStatus } from "./Transport.ts"

// ---------------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------------

/** How each peer's outbound messages are ordered. */
export type QueueType = "fifo" | "priority"

/** Decides whether a connection from or to an endpoint / node ID is allowed; fail with a reason to refuse. */
export type EndpointFilter = (endpoint: Endpoint.Endpoint) => Effect.Effect<void, FilterRejected>
/** Decides whether a node ID is allowed; fail with a reason to refuse. */
export type NodeIdFilter = (nodeId: NodeId.NodeId) => Effect.Effect<void, FilterRejected>

/** Router options. Every limit has a default and can be changed. */
export interface Options {
  /** What we tell peers about ourselves; `nodeId` comes from the identity, `channels` from the open channels. */
  readonly nodeInfo: {
    readonly network: string
    readonly moniker: string
    readonly version?: string
    /** Address peers should dial us at, `host:port` (optionally `tcp://`). Default: the transport's first endpoint. */
    readonly listenAddr?: string
    readonly protocolVersion?: Partial<NodeInfo.ProtocolVersion>
    readonly other?: Partial<NodeInfo.NodeInfo["other"]>
  }
  /** Channels advertised from the start, before reactors open them. Open every channel before peers connect. */
  readonly channels?: ReadonlyArray<ChannelDescriptor.ChannelDescriptor>
  /** Per-peer send ordering. Default "priority": higher-priority channels first, FIFO within a channel. */
  readonly queueType?: QueueType
  /** Bound on a dial (TCP connect). Default 3 s. */
  readonly dialTimeout?: number
  /** Bound on a handshake. Default 20 s. */
  readonly handshakeTimeout?: number
  /** Bound on resolving a peer address. Default 5 s. */
  readonly resolveTimeout?: number
  /** Dials in flight at once. Default 32. */
  readonly maxConcurrentDials?: number
  /**
   * Inbound handshakes in progress at once. When all are taken, a new connection takes the slot of
   * the one that has waited longest (which is closed): silent peers cannot lock legitimate ones
   * out, since a legitimate handshake takes milliseconds. Default 256.
   */
  readonly maxConcurrentHandshakes?: number
  /** Inbound handshakes in progress from one IP. Default 8. */
  readonly maxPendingHandshakesPerIp?: number
  /** Inbound handshakes in progress from one network (IPv4 /24, IPv6 /64). Default 32. */
  readonly maxPendingHandshakesPerSubnet?: number
  /** Concurrent inbound connections from one IP (handshaking or connected). Default 100. */
  readonly maxIncomingConnectionAttempts?: number
  /** Concurrent inbound connections from one network (IPv4 /24, IPv6 /64). Default 64. */
  readonly maxIncomingConnectionsPerSubnet?: number
  /** An IP with no open connection may reconnect once per this window (ms). Default 100. */
  readonly incomingConnectionWindow?: number
  /** Checked before the handshake, inbound and outbound. */
  readonly filterPeerByIp?: EndpointFilter
  /** Checked after the handshake, inbound and outbound. */
  readonly filterPeerById?: NodeIdFilter
  /** Messages buffered per peer when no descriptor says more. Default 32. */
  readonly peerQueueSize?: number
}

/** Defaults of {@link Options}. */
export const defaults = {
  queueType: "priority" as QueueType,
  dialTimeout: 3_000,
  handshakeTimeout: 20_000,
  resolveTimeout: 5_000,
  maxConcurrentDials: 32,
  maxConcurrentHandshakes: 256,
  maxPendingHandshakesPerIp: 8,
  maxPendingHandshakesPerSubnet: 32,
  maxIncomingConnectionAttempts: 100,
  maxIncomingConnectionsPerSubnet: 64,
  incomingConnectionWindow: 100,
  peerQueueSize: 32
} as const

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/** A filter refused a connection. */
export class FilterRejected extends Schema.TaggedError<FilterRejected>()("FilterRejected", {
  message: Schema.String
}) {}

/** A channel with this ID is already open. */
export class ChannelAlreadyOpen extends Schema.TaggedError<ChannelAlreadyOpen>()("ChannelAlreadyOpen", {
  channelId: Schema.Number,
  message: Schema.String
}) {}

/** Opening one more channel would make our NodeInfo invalid (at most 16 channels). */
export class TooManyChannels extends Schema.TaggedError<TooManyChannels>()("TooManyChannels", {
  channelId: Schema.Number,
  message: Schema.String
}) {}

/** A bad router option; `option` names it. */
export class InvalidRouterOptions extends Schema.TaggedError<InvalidRouterOptions>()("InvalidRouterOptions", {
  option: Schema.String,
  message: Schema.String
}) {}

// ---------------------------------------------------------------------------------------------
// Service
// ---------------------------------------------------------------------------------------------

/** A reactor's end of a channel, typed by its protobuf message. */
export interface Channel<Desc extends DescMessage = DescMessage> {
  readonly descriptor: ChannelDescriptor.ChannelDescriptor<Desc>
  /**
   * Sends to one peer (`to`) or to every connected peer that serves the channel (`broadcast`).
   * Waits while a peer's queue is full. Messages to unknown peers, or to peers without the channel,
   * are dropped and counted (`p2p_peer_queue_dropped_msgs`).
   */
  readonly send: (envelope: Envelope.Outbound<MessageShape<Desc>>) => Effect.Effect<void>
  /** Reports a misbehaving peer: fatal errors disconnect it, others lower its score. */
  readonly sendError: (error: PeerError) => Effect.Effect<void>
  /** Messages from peers, with `from` set. Ends when the channel's scope closes or the router stops. */
  readonly messages: Stream.Stream<Envelope.Inbound<MessageShape<Desc>>>
}

/** A connected, routed peer. */
export interface RoutedPeer {
  readonly nodeId: NodeId.NodeId
  readonly nodeInfo: NodeInfo.NodeInfo
  readonly remoteEndpoint: Endpoint.Endpoint
  readonly direction: "incoming" | "outgoing"
  readonly channels: ReadonlySet<number>
}

/** The router. */
export class Router extends Context.Service<
  Router,
  {
    /** Opens a channel for the caller's scope; closing the scope closes it. */
    readonly openChannel: <Desc extends DescMessage>(
      descriptor: ChannelDescriptor.ChannelDescriptor<Desc>
    ) => Effect.Effect<Channel<Desc>, ChannelAlreadyOpen | TooManyChannels | ChannelDescriptor.InvalidChannelDescriptor, Scope.Scope>
    /** Our NodeInfo as the next handshake will send it. */
    readonly nodeInfo: Effect.Effect<NodeInfo.NodeInfo>
    /** Peers routed now. */
    readonly peers: Effect.Effect<ReadonlyArray<RoutedPeer>>
    /**
     * A routed peer's connection statistics (traffic, channel queues), for status pages; `undefined`
     * when the peer is not routed or its transport keeps none.
     */
    readonly connectionStatus: (nodeId: NodeId.NodeId) => Effect.Effect<ConnectionStatus | undefined>
  }
>()("effect-p2p/Router") {}

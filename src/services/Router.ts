/**
 * The Router (docs/ARCHITECTURE.md#router) executes the PeerManager's policy: it dials and accepts, handshakes
 * concurrently, filters, admits, routes typed messages between reactors' channels and peers, and
 * evicts. Reactors open channels typed by a protobuf message; the router encodes and decodes.
 *
 * @since 0.1.0
 */
import type { DescMessage, MessageShape } from "@bufbuild/protobuf"
import * as Context from "effect/Context"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import type * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import type * as ChannelDescriptor from "../domain/ChannelDescriptor.ts"
import type * as Endpoint from "../domain/Endpoint.ts"
import type * as Envelope from "../domain/Envelope.ts"
import type * as NodeId from "../domain/NodeId.ts"
import type * as NodeInfo from "../domain/NodeInfo.ts"
import * as Opt from "../domain/Options.ts"
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

/** Defaults of the Router's options (milliseconds for durations). */
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
  peerQueueSize: 32,
  broadcastTimeout: 1_000
} as const

const isFunction = (u: unknown): u is never => typeof u === "function"
const isRecord = (u: unknown): u is never => typeof u === "object" && u !== null
/** A slot or queue count: whole, since flooring 0.5 to 0 would stop dialing or accepting for good. */
const Slots = Opt.Between(1, 1_000_000)
const positive = (field: "dialTimeout" | "handshakeTimeout" | "resolveTimeout") =>
  Opt.rule<{ readonly [K in typeof field]: number }>(field, (o) => o[field] > 0, "must be positive")

/**
 * Router options. Every limit has a default and can be changed; durations are milliseconds, text
 * ("20 seconds") or a `Duration`.
 */
export const OptionsInput = Schema.Struct({
  /** What we tell peers about ourselves; `nodeId` comes from the identity, `channels` from the open channels. */
  nodeInfo: Schema.Struct({
    network: Schema.String,
    moniker: Schema.String.check(Schema.makeFilter((s: string) => s !== "" || "must not be empty")),
    version: Schema.optionalKey(Schema.String),
    /** Address peers should dial us at, `host:port` (optionally `tcp://`). Default: the transport's first endpoint. */
    listenAddr: Schema.optionalKey(Schema.String),
    protocolVersion: Schema.optionalKey(Schema.declare((u): u is Partial<NodeInfo.ProtocolVersion> => isRecord(u))),
    other: Schema.optionalKey(Schema.declare((u): u is Partial<NodeInfo.NodeInfo["other"]> => isRecord(u)))
  }),
  /** Channels advertised from the start, before reactors open them. Open every channel before peers connect. */
  channels: Opt.withDefault(Schema.Array(Schema.declare((u): u is ChannelDescriptor.ChannelDescriptor => isRecord(u))), []),
  /** Per-peer send ordering. Default "priority": higher-priority channels first, FIFO within a channel. */
  queueType: Opt.withDefault(Schema.Literals(["fifo", "priority"]), defaults.queueType),
  /** Bound on a dial (TCP connect). Default 3 s. */
  dialTimeout: Opt.withDefault(Opt.Millis, defaults.dialTimeout),
  /** Bound on a handshake. Default 20 s. */
  handshakeTimeout: Opt.withDefault(Opt.Millis, defaults.handshakeTimeout),
  /** Bound on resolving a peer address. Default 5 s. */
  resolveTimeout: Opt.withDefault(Opt.Millis, defaults.resolveTimeout),
  /** Dials in flight at once. Default 32. */
  maxConcurrentDials: Opt.withDefault(Slots, defaults.maxConcurrentDials),
  /**
   * Inbound handshakes in progress at once. When all are taken, a new connection takes the slot of
   * the one that has waited longest (which is closed): silent peers cannot lock legitimate ones
   * out, since a legitimate handshake takes milliseconds. Default 256.
   */
  maxConcurrentHandshakes: Opt.withDefault(Slots, defaults.maxConcurrentHandshakes),
  /** Inbound handshakes in progress from one IP. Default 8. */
  maxPendingHandshakesPerIp: Opt.withDefault(Slots, defaults.maxPendingHandshakesPerIp),
  /** Inbound handshakes in progress from one network (IPv4 /24, IPv6 /64). Default 32. */
  maxPendingHandshakesPerSubnet: Opt.withDefault(Slots, defaults.maxPendingHandshakesPerSubnet),
  /** Concurrent inbound connections from one IP (handshaking or connected). Default 100. */
  maxIncomingConnectionAttempts: Opt.withDefault(Slots, defaults.maxIncomingConnectionAttempts),
  /** Concurrent inbound connections from one network (IPv4 /24, IPv6 /64). Default 64. */
  maxIncomingConnectionsPerSubnet: Opt.withDefault(Slots, defaults.maxIncomingConnectionsPerSubnet),
  /** An IP with no open connection may reconnect once per this window. Default 100 ms; at least 1 ms. */
  incomingConnectionWindow: Opt.withDefault(Opt.Millis, defaults.incomingConnectionWindow),
  /** Checked before the handshake, inbound and outbound. */
  filterPeerByIp: Schema.optionalKey(Schema.declare((u): u is EndpointFilter => isFunction(u))),
  /** Checked after the handshake, inbound and outbound. */
  filterPeerById: Schema.optionalKey(Schema.declare((u): u is NodeIdFilter => isFunction(u))),
  /** Messages buffered per peer when no descriptor says more. Default 32. */
  peerQueueSize: Opt.withDefault(Slots, defaults.peerQueueSize),
  /**
   * How long a broadcast waits for room in a peer's full queue before that peer's copy is dropped
   * (`p2p_peer_queue_dropped_msgs{reason="queue_full"}`) and the peer is skipped by later broadcasts
   * until its queue is half empty. Peers with room get the message at once, whatever the others do,
   * and full queues are waited for together: one slow peer never holds the rest back. Default 1 s.
   */
  broadcastTimeout: Opt.withDefault(Opt.Millis, defaults.broadcastTimeout)
}).check(
  positive("dialTimeout"),
  positive("handshakeTimeout"),
  positive("resolveTimeout"),
  Opt.rule("incomingConnectionWindow", (o) => o.incomingConnectionWindow >= 1, "must be at least 1 ms")
)

/** Router options as callers write them; only `nodeInfo` is required. */
export type OptionsInput = typeof OptionsInput.Encoded

/** Router options, validated, defaults applied, durations in milliseconds. */
export type Options = typeof OptionsInput.Type

/** Decodes options; a bad one fails with {@link InvalidRouterOptions} naming it. */
export const decodeOptions = (input: unknown): Result.Result<Options, InvalidRouterOptions> =>
  Result.mapError(Opt.decode(OptionsInput, input), (p) => new InvalidRouterOptions({ option: p.option, message: `Router option ${p.option}: ${p.message}` }))

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

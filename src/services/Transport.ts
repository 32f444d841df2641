/**
 * The transport layer (docs/ARCHITECTURE.md#transports): a `Transport` accepts and dials `Connection`s; a connection
 * handshakes (authenticates the peer's key and exchanges NodeInfo) and then carries byte messages on
 * numbered channels. Kept as small as Tendermint's `transport.go`: limits, filters, retries and
 * scoring live above, in the Router and PeerManager.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Schema from "effect/Schema"
import type * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type * as ChannelDescriptor from "../domain/ChannelDescriptor.ts"
import type * as Endpoint from "../domain/Endpoint.ts"
import type { FlowStatus } from "../domain/FlowMonitor.ts"
import type * as NodeId from "../domain/NodeId.ts"
import type * as NodeInfo from "../domain/NodeInfo.ts"
import type * as NodeKey from "../domain/NodeKey.ts"

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/** The transport was closed: `accept` fails with this now and on every later call. */
export class TransportClosed extends Schema.TaggedError<TransportClosed>()("TransportClosed", {
  transport: Schema.String,
  message: Schema.String
}) {}

/** A transient failure to accept (e.g. out of file descriptors); accepting may go on. */
export class AcceptError extends Schema.TaggedError<AcceptError>()("AcceptError", {
  transport: Schema.String,
  message: Schema.String
}) {}

/** Why a dial failed. */
export type DialFailure = "invalid_endpoint" | "unsupported_protocol" | "unknown_peer" | "refused" | "timeout" | "io"

/** A dial failed before a connection existed. */
export class DialError extends Schema.TaggedError<DialError>()("DialError", {
  endpoint: Schema.String,
  reason: Schema.Literals(["invalid_endpoint", "unsupported_protocol", "unknown_peer", "refused", "timeout", "io"]),
  message: Schema.String
}) {}

/** The connection is closed (by either side): the end of its stream. */
export class ConnectionClosed extends Schema.TaggedError<ConnectionClosed>()("ConnectionClosed", {
  remote: Schema.String,
  message: Schema.String
}) {}

/** The connection failed with a protocol or I/O error and was closed. */
export class ConnectionError extends Schema.TaggedError<ConnectionError>()("ConnectionError", {
  remote: Schema.String,
  reason: Schema.String,
  message: Schema.String
}) {}

/** The peer did not complete the handshake in time. */
export class HandshakeTimeout extends Schema.TaggedError<HandshakeTimeout>()("HandshakeTimeout", {
  remote: Schema.String,
  timeoutMillis: Schema.Number,
  message: Schema.String
}) {}

/** The peer could not prove it holds the key it presented, or broke the handshake protocol. */
export class HandshakeAuthFailed extends Schema.TaggedError<HandshakeAuthFailed>()("HandshakeAuthFailed", {
  remote: Schema.String,
  message: Schema.String
}) {}

/** The peer's NodeInfo breaks a validation rule (`reason` is NodeInfo's). */
export class InvalidPeerNodeInfo extends Schema.TaggedError<InvalidPeerNodeInfo>()("InvalidPeerNodeInfo", {
  remote: Schema.String,
  nodeId: Schema.String,
  reason: Schema.String,
  message: Schema.String
}) {}

/** The NodeInfo's node ID is not the ID of the key the peer authenticated with. */
export class PeerKeyMismatch extends Schema.TaggedError<PeerKeyMismatch>()("PeerKeyMismatch", {
  remote: Schema.String,
  claimed: Schema.String,
  authenticated: Schema.String,
  message: Schema.String
}) {}

/** We dialed one node ID and reached another. */
export class UnexpectedPeer extends Schema.TaggedError<UnexpectedPeer>()("UnexpectedPeer", {
  remote: Schema.String,
  expected: Schema.String,
  got: Schema.String,
  message: Schema.String
}) {}

/** The peer is this node itself. */
export class SelfConnection extends Schema.TaggedError<SelfConnection>()("SelfConnection", {
  remote: Schema.String,
  nodeId: Schema.String,
  message: Schema.String
}) {}

/** The peer is on another network or block version, or shares no channel (`reason` is NodeInfo's). */
export class IncompatiblePeer extends Schema.TaggedError<IncompatiblePeer>()("IncompatiblePeer", {
  remote: Schema.String,
  nodeId: Schema.String,
  reason: Schema.String,
  /** The network (chain ID) the peer announced, so a tool can retry on it. */
  peerNetwork: Schema.optionalKey(Schema.String),
  message: Schema.String
}) {}

/** Every way a handshake can fail. */
export type HandshakeError =
  | HandshakeTimeout
  | HandshakeAuthFailed
  | InvalidPeerNodeInfo
  | PeerKeyMismatch
  | UnexpectedPeer
  | SelfConnection
  | IncompatiblePeer
  | ConnectionClosed
  | ConnectionError

// ---------------------------------------------------------------------------------------------
// Connection
// ---------------------------------------------------------------------------------------------

/** What we present in a handshake, and what we expect of the peer. */
export interface HandshakeOptions {
  readonly nodeInfo: NodeInfo.NodeInfo
  readonly nodeKey: NodeKey.NodeKey
  /** Bound on the whole handshake. Default {@link DEFAULT_HANDSHAKE_TIMEOUT}. */
  readonly timeout?: Duration.Input
  /** When dialing: the node ID we meant to reach. */
  readonly expectedId?: NodeId.NodeId
  /** Channels this connection will carry (priorities and receive limits for multiplexing transports). */
  readonly channels?: ReadonlyArray<ChannelDescriptor.ChannelDescriptor>
}

/** CometBFT's `handshake_timeout`. */
export const DEFAULT_HANDSHAKE_TIMEOUT: Duration.Duration = Duration.seconds(20)

/** The authenticated peer: its NodeInfo (validated, compatible) and its Ed25519 public key. */
export interface Peer {
  readonly nodeInfo: NodeInfo.NodeInfo
  readonly publicKey: Uint8Array
}

/** One message received on a channel. */
export interface Received {
  readonly channelId: number
  readonly data: Uint8Array
}

/** One channel's send queue, as `/net_info` reports it (CometBFT's `ChannelStatus`). */
export interface ChannelStatus {
  readonly id: number
  readonly priority: number
  /** Messages the queue holds at most. */
  readonly sendQueueCapacity: number
  /** Messages waiting, including one partly sent. */
  readonly sendQueueSize: number
  /** Payload bytes waiting. */
  readonly sendQueueBytes: number
  /** Decayed count of bytes recently sent (the scheduler's fairness measure). */
  readonly recentlySent: number
}

/** A connection's traffic so far (CometBFT's `ConnectionStatus`). */
export interface ConnectionStatus {
  /** Milliseconds since the connection was established. */
  readonly duration: number
  readonly send: FlowStatus
  readonly receive: FlowStatus
  /** Per-channel send queues; empty for transports without them. */
  readonly channels: ReadonlyArray<ChannelStatus>
}

/** One established link to a peer. Must be handshaken before messages flow. */
export interface Connection {
  /** Our end. `a.localEndpoint` equals the peer connection's `remoteEndpoint`. */
  readonly localEndpoint: Endpoint.Endpoint
  /** The peer's end. */
  readonly remoteEndpoint: Endpoint.Endpoint
  /**
   * Authenticates the peer's key and exchanges NodeInfo, bounded by `timeout`, then checks in order:
   * the NodeInfo is valid, its ID is the key's, it is the ID we dialed, it is not us, it is compatible.
   */
  readonly handshake: (options: HandshakeOptions) => Effect.Effect<Peer, HandshakeError>
  /** Sends one message, waiting while the connection's buffer is full (backpressure). */
  readonly send: (channelId: number, data: Uint8Array) => Effect.Effect<void, ConnectionClosed | ConnectionError>
  /** The next message, waiting for one. Fails with `ConnectionClosed` once closed by either side. */
  readonly receive: Effect.Effect<Received, ConnectionClosed | ConnectionError>
  /** Closes both directions; idempotent. The peer's `receive` and `send` then fail with `ConnectionClosed`. */
  readonly close: Effect.Effect<void>
  /** Completes when the connection has closed, for whatever reason. */
  readonly awaitClosed: Effect.Effect<void>
  /** Traffic statistics, for status pages (`/net_info`); optional for third-party transports. */
  readonly status?: Effect.Effect<ConnectionStatus>
}

// ---------------------------------------------------------------------------------------------
// Transport
// ---------------------------------------------------------------------------------------------

/** Accepts and dials connections. */
export class Transport extends Context.Service<
  Transport,
  {
    /** Display name ("memory", "mconn"). */
    readonly name: string
    /** Protocols (address schemes) this transport dials and accepts. */
    readonly protocols: ReadonlyArray<string>
    /** Where it listens; empty once closed. */
    readonly endpoints: Effect.Effect<ReadonlyArray<Endpoint.Endpoint>>
    /**
     * The next inbound connection, not yet handshaken, owned by the caller's scope. Fails with
     * `TransportClosed` once the transport is closed (now and on every later call); `AcceptError` is
     * transient.
     */
    readonly accept: Effect.Effect<Connection, TransportClosed | AcceptError, Scope.Scope>
    /** Connects to an endpoint; the connection is owned by the caller's scope. Interrupting cancels the dial. */
    readonly dial: (endpoint: Endpoint.Endpoint) => Effect.Effect<Connection, DialError, Scope.Scope>
    /** Stops accepting; idempotent. Established connections stay open, and dialing out still works. */
    readonly close: Effect.Effect<void>
  }
>()("effect-p2p/Transport") {}

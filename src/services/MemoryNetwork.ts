/**
 * A registry of in-memory transports by node ID (docs/ARCHITECTURE.md#memory-transport), shared by
 * every node of a test, and the simulated wire between them (docs/SIMULATION.md). Nodes join when
 * their `MemoryTransport` layer is built and leave when it closes; `remove` takes a node off the
 * network and closes all its connections, as pulling its cable would.
 *
 * Every directed link (from one node to another) has conditions a test changes at any time:
 * latency and jitter, loss (a lost message is retransmitted, as TCP does, so it arrives late and
 * holds back what follows it on that connection), bandwidth (bytes per second, messages queue
 * behind each other), and a stall (nothing delivered, nothing closed). Partitions cut links
 * between groups of nodes, in both directions or one; a paused node neither sends nor receives.
 * A connection whose path is cut is closed by keepalive after the ping/pong schedule of
 * MConnection (`pingInterval`, `pongTimeout`), as a real one would be. Everything is driven by
 * the clock (`TestClock` in tests) and a seeded generator, so a run replays exactly.
 *
 * The service, its options and errors; the implementation is `layers/MemoryNetwork.ts`.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import type * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import * as Opt from "../domain/Options.ts"
import type * as Endpoint from "../domain/Endpoint.ts"
import type * as NodeId from "../domain/NodeId.ts"
import type { Connection, DialError } from "./Transport.ts"

/** Both ends of a new in-memory connection and the effect that closes them both. */
export interface Pair {
  readonly dialer: Connection
  readonly acceptor: Connection
  readonly close: Effect.Effect<void>
  readonly isClosed: () => boolean
}

/** A node as the network sees it: how to connect to it, and how to take it down. */
export interface Member {
  readonly nodeId: NodeId.NodeId
  /** Opens a connection from `from` to this node; resolves with the pair once the node accepted it. */
  readonly connect: (from: Endpoint.Endpoint) => Effect.Effect<Pair, DialError>
  /** Closes the node's transport and every connection it has. */
  readonly shutdown: Effect.Effect<void>
}

/** A node ID is already registered on the network. */
export class DuplicateNode extends Schema.TaggedError<DuplicateNode>()("DuplicateNode", {
  nodeId: Schema.String,
  message: Schema.String
}) {}

/** Options or link conditions that do not decode; `option` names the field to change. */
export class InvalidNetworkOptions extends Schema.TaggedError<InvalidNetworkOptions>()("InvalidNetworkOptions", {
  option: Schema.String,
  message: Schema.String
}) {}

// ---------------------------------------------------------------------------------------------
// Link conditions
// ---------------------------------------------------------------------------------------------

/** The conditions of one direction of a link, decoded: milliseconds, a fraction, bytes per second. */
export interface LinkConditions {
  /** One-way delay of every message. */
  readonly latency: number
  /** Each message waits a further uniform random `0..jitter` (order on a connection is kept). */
  readonly jitter: number
  /** Probability (0 to below 1) that a transmission is lost and retransmitted `retransmitAfter` later (doubling each time). */
  readonly loss: number
  /** The first retransmission timeout of a lost message. */
  readonly retransmitAfter: number
  /** Bytes per second the link carries; messages queue behind each other. 0: unlimited. */
  readonly bandwidth: number
  /** Delivers nothing until unstalled, without closing anything. */
  readonly stalled: boolean
}

/** A perfect link: no delay, no loss, no limit. */
export const idealLink: LinkConditions = {
  latency: 0,
  jitter: 0,
  loss: 0,
  retransmitAfter: 200,
  bandwidth: 0,
  stalled: false
}

/**
 * Link conditions as a test writes them: durations as milliseconds or text (`"50 millis"`), every
 * field optional. `link.set` changes only the fields given.
 */
export const LinkConditionsInput = Schema.Struct({
  latency: Schema.optionalKey(Opt.Millis),
  jitter: Schema.optionalKey(Opt.Millis),
  loss: Schema.optionalKey(Schema.Number.check(Schema.isGreaterThanOrEqualTo(0), Schema.isLessThan(1))),
  retransmitAfter: Schema.optionalKey(Opt.Millis.check(Schema.isGreaterThan(0))),
  bandwidth: Schema.optionalKey(Schema.Number.check(Schema.isFinite(), Schema.isGreaterThanOrEqualTo(0))),
  stalled: Schema.optionalKey(Schema.Boolean)
})
export type LinkConditionsInput = typeof LinkConditionsInput.Encoded

/** Decodes link conditions a test wrote; the failure names the field. */
export const decodeLinkConditions = (input: unknown): Result.Result<Partial<LinkConditions>, InvalidNetworkOptions> =>
  Result.mapError(Opt.decode(LinkConditionsInput, input), (p) => new InvalidNetworkOptions({ option: p.option, message: `link condition ${p.option}: ${p.message}` }))

/** A directed link between two nodes, changeable at any time. */
export interface Link {
  readonly from: NodeId.NodeId
  readonly to: NodeId.NodeId
  /** Changes the given conditions (the rest stay); messages already in flight keep their times. */
  readonly set: (conditions: LinkConditionsInput) => Effect.Effect<void, InvalidNetworkOptions>
  /** Back to a perfect link. */
  readonly reset: Effect.Effect<void>
  /** The current conditions. */
  readonly conditions: Effect.Effect<LinkConditions>
}

// ---------------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------------

/** Defaults of a memory network. */
export const defaults = {
  bufferSize: 16,
  seed: 1,
  pingInterval: 60_000,
  pongTimeout: 45_000,
  eventLogSize: 200
} as const

/**
 * Options of a memory network:
 * - `bufferSize` 16: messages buffered per direction of a connection (in flight and unread)
 *   before its sender waits.
 * - `seed` 1: seeds the generator behind jitter and loss; the same seed replays the same run.
 * - `pingInterval` 60 s, `pongTimeout` 45 s: the keepalive of MConnection. A connection whose path
 *   is cut (stall, partition, paused end) is closed `pongTimeout` after the first ping that finds
 *   it cut; pings go out every `pingInterval` from the connection's start.
 * - `eventLogSize` 200: events kept per node (`events`), oldest dropped first.
 */
export const OptionsInput = Schema.Struct({
  bufferSize: Opt.withDefault(Opt.Between(1, 1 << 20), defaults.bufferSize),
  seed: Opt.withDefault(Schema.Int, defaults.seed),
  pingInterval: Opt.withDefault(Opt.Millis.check(Schema.isGreaterThan(0)), defaults.pingInterval),
  pongTimeout: Opt.withDefault(Opt.Millis.check(Schema.isGreaterThan(0)), defaults.pongTimeout),
  eventLogSize: Opt.withDefault(Opt.Count(1 << 20), defaults.eventLogSize)
})
export type OptionsInput = typeof OptionsInput.Encoded
export type Options = typeof OptionsInput.Type

/** Decodes and validates network options, applying {@link defaults}. */
export const decodeOptions = (input: unknown): Result.Result<Options, InvalidNetworkOptions> =>
  Result.mapError(Opt.decode(OptionsInput, input), (p) => new InvalidNetworkOptions({ option: p.option, message: `MemoryNetwork option ${p.option}: ${p.message}` }))

/** Default messages buffered per direction of a connection. */
export const DEFAULT_BUFFER_SIZE = defaults.bufferSize

// ---------------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------------

/** Something that happened to a node, for post-mortems: virtual time, node, what. */
export interface Event {
  readonly at: number
  readonly nodeId: NodeId.NodeId
  readonly what: string
}

// ---------------------------------------------------------------------------------------------
// Service
// ---------------------------------------------------------------------------------------------

/** The network's interface. */
export interface Service {
  readonly options: Options
  readonly bufferSize: number
  /** Adds a node; fails with `DuplicateNode` if its ID is taken. */
  readonly register: (member: Member) => Effect.Effect<void, DuplicateNode>
  /** Removes a node's registration (if it is still `member`), leaving its connections open. */
  readonly unregister: (member: Member) => Effect.Effect<void>
  /** The node registered under an ID. */
  readonly lookup: (nodeId: NodeId.NodeId) => Effect.Effect<Option.Option<Member>>
  /** IDs of the registered nodes. */
  readonly nodes: Effect.Effect<ReadonlyArray<NodeId.NodeId>>
  /** Takes a node off the network and closes its transport and connections (a crash: no goodbye). */
  readonly remove: (nodeId: NodeId.NodeId) => Effect.Effect<void>
  /**
   * A connection from `from` to `to` over the simulated links. Waits (interruptibly, as a dial
   * without an answer does) while the path between them is cut in either direction.
   */
  readonly open: (from: Endpoint.Endpoint, to: Endpoint.Endpoint) => Effect.Effect<Pair>
  /** The directed link from one node to another. */
  readonly link: (from: NodeId.NodeId, to: NodeId.NodeId) => Link
  /** Splits the network: links between nodes of different groups are cut both ways. Nodes in no group keep their links. */
  readonly partition: (groups: ReadonlyArray<ReadonlyArray<NodeId.NodeId>>) => Effect.Effect<void>
  /** Cuts the links from every node of `from` to every node of `to` (one way; the reverse keeps working). */
  readonly cut: (from: ReadonlyArray<NodeId.NodeId>, to: ReadonlyArray<NodeId.NodeId>) => Effect.Effect<void>
  /** Removes every partition and cut (link conditions stay). */
  readonly heal: Effect.Effect<void>
  /** The node neither sends nor receives (its links stall both ways) until `resume`. */
  readonly pause: (nodeId: NodeId.NodeId) => Effect.Effect<void>
  readonly resume: (nodeId: NodeId.NodeId) => Effect.Effect<void>
  /** Whether messages flow from `from` to `to` now (no cut, no stall, neither paused). */
  readonly flows: (from: NodeId.NodeId, to: NodeId.NodeId) => boolean
  /** Records an event of a node (the network records its own: links, partitions, keepalive closes). */
  readonly record: (nodeId: NodeId.NodeId, what: string) => Effect.Effect<void>
  /** A node's recent events, oldest first (all nodes' if no ID is given, in time order). */
  readonly events: (nodeId?: NodeId.NodeId) => Effect.Effect<ReadonlyArray<Event>>
  /** Open connections (pairs), for tests and reports. */
  readonly connections: Effect.Effect<number>
}

/** The memory network shared by the nodes of one test. */
export class MemoryNetwork extends Context.Service<MemoryNetwork, Service>()("effect-p2p/MemoryNetwork") {}

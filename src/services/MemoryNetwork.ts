/**
 * A registry of in-memory transports by node ID (docs/ARCHITECTURE.md#memory-transport), shared by every node of a test. Nodes
 * join when their `MemoryTransport` layer is built and leave when it closes; `remove` takes a node
 * off the network and closes all its connections, as pulling its cable would. The service, its
 * options and errors; the implementation is `layers/MemoryNetwork.ts`.
 *
 * @since 0.1.0
 */
import { Context, Schema, type Effect, type Option } from "effect"
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

/** Options of a memory network. */
export interface Options {
  /** Messages buffered per direction of each connection before senders wait. Default 16. */
  readonly bufferSize?: number
}

/** The network's interface. */
export interface Service {
  readonly bufferSize: number
  /** Adds a node; fails with `DuplicateNode` if its ID is taken. */
  readonly register: (member: Member) => Effect.Effect<void, DuplicateNode>
  /** Removes a node's registration (if it is still `member`), leaving its connections open. */
  readonly unregister: (member: Member) => Effect.Effect<void>
  /** The node registered under an ID. */
  readonly lookup: (nodeId: NodeId.NodeId) => Effect.Effect<Option.Option<Member>>
  /** IDs of the registered nodes. */
  readonly nodes: Effect.Effect<ReadonlyArray<NodeId.NodeId>>
  /** Takes a node off the network and closes its transport and connections. */
  readonly remove: (nodeId: NodeId.NodeId) => Effect.Effect<void>
}

/** The memory network shared by the nodes of one test. */
export class MemoryNetwork extends Context.Service<MemoryNetwork, Service>()("effect-p2p/MemoryNetwork") {}

/** Default messages buffered per direction of a connection. */
export const DEFAULT_BUFFER_SIZE = 16


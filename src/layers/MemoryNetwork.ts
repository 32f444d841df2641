/**
 * A registry of in-memory transports by node ID (SPEC §5.1), shared by every node of a test. Nodes
 * join when their `MemoryTransport` layer is built and leave when it closes; `remove` takes a node
 * off the network and closes all its connections, as pulling its cable would.
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer, Option, Schema } from "effect"
import type * as Endpoint from "../domain/Endpoint.ts"
import type * as NodeId from "../domain/NodeId.ts"
import type { DialError } from "../services/Transport.ts"
import type { Pair } from "./MemoryConnection.ts"

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

/** Creates a network value (for `Node.layerMemory(network, config)` and the test kit). */
export const make = (options: Options = {}): Effect.Effect<Service> =>
  Effect.sync(() => {
    const bufferSize = options.bufferSize ?? DEFAULT_BUFFER_SIZE
    if (!Number.isSafeInteger(bufferSize) || bufferSize < 1) throw new RangeError(`MemoryNetwork bufferSize must be a positive integer, got ${bufferSize}`)
    const members = new Map<NodeId.NodeId, Member>()
    const service: Service = {
      bufferSize,
      register: (member) =>
        Effect.suspend(() => {
          if (members.has(member.nodeId)) {
            return Effect.fail(new DuplicateNode({ nodeId: member.nodeId, message: `node ${member.nodeId} is already on the memory network` }))
          }
          members.set(member.nodeId, member)
          return Effect.void
        }),
      unregister: (member) =>
        Effect.sync(() => {
          if (members.get(member.nodeId) === member) members.delete(member.nodeId)
        }),
      lookup: (nodeId) => Effect.sync(() => Option.fromNullishOr(members.get(nodeId))),
      nodes: Effect.sync(() => [...members.keys()]),
      remove: (nodeId) =>
        Effect.suspend(() => {
          const member = members.get(nodeId)
          if (member === undefined) return Effect.void
          members.delete(nodeId)
          return member.shutdown
        })
    }
    return service
  })

/** A fresh network for the nodes of one test. */
export const layer: Layer.Layer<MemoryNetwork> = Layer.effect(MemoryNetwork, make())

/** A fresh network with options. */
export const layerWith = (options: Options): Layer.Layer<MemoryNetwork> => Layer.effect(MemoryNetwork, make(options))

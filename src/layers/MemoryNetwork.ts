/**
 * The memory network: a registry of in-memory transports by node ID. This module is the
 * `MemoryNetwork` namespace: it re-exports the service.
 *
 * @since 0.1.0
 */
import { Effect, Layer, Option } from "effect"
import type * as NodeId from "../domain/NodeId.ts"
import { DEFAULT_BUFFER_SIZE, DuplicateNode, MemoryNetwork, type Member, type Options, type Service } from "../services/MemoryNetwork.ts"

export * from "../services/MemoryNetwork.ts"

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

/**
 * The in-memory transport (docs/ARCHITECTURE.md#memory-transport): protocol `memory`, endpoint `memory:<node id>`, connections are
 * bounded in-process pipes with backpressure. Requires a `MemoryNetwork` and the node's identity.
 *
 * @since 0.1.0
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Queue from "effect/Queue"
import * as Result from "effect/Result"
import * as Scope from "effect/Scope"
import * as Endpoint from "../domain/Endpoint.ts"
import * as NodeAddress from "../domain/NodeAddress.ts"
import * as NodeId from "../domain/NodeId.ts"
import { NodeIdentity } from "../services/NodeIdentity.ts"
import { DialError, Transport, TransportClosed, type Connection } from "../services/Transport.ts"
import * as MemoryConnection from "./MemoryConnection.ts"
import { MemoryNetwork, type DuplicateNode, type Member } from "./MemoryNetwork.ts"

/** The protocol name of memory endpoints. */
export const PROTOCOL = NodeAddress.MEMORY_PROTOCOL

/** The endpoint of a node on the memory network. */
export const endpoint = (nodeId: NodeId.NodeId): Endpoint.Endpoint => Endpoint.make({ protocol: PROTOCOL, path: nodeId })

interface Pending {
  readonly pair: MemoryConnection.Pair
  readonly accepted: Deferred.Deferred<void, DialError>
}

const dialError = (endpoint: Endpoint.Endpoint, reason: DialError["reason"], detail: string) =>
  new DialError({ endpoint: Endpoint.format(endpoint), reason, message: `cannot dial ${Endpoint.format(endpoint) || "an empty endpoint"}: ${detail}` })

/** Builds the memory transport of the node `NodeIdentity` names, registered on `MemoryNetwork`. */
export const make: Effect.Effect<Transport["Service"], DuplicateNode, MemoryNetwork | NodeIdentity | Scope.Scope> = Effect.gen(function* () {
  const network = yield* MemoryNetwork
  const { key } = yield* NodeIdentity
  const local = endpoint(key.nodeId)
  const name = `memory:${key.nodeId}`
  const acceptQueue = yield* Queue.unbounded<Pending, TransportClosed>()
  const pending = new Set<Pending>()
  const pairs = new Set<MemoryConnection.Pair>()
  let closed = false

  /** Keeps `pair` until the caller's scope closes it, so `MemoryNetwork.remove` can close it too. */
  const own = (pair: MemoryConnection.Pair) =>
    Effect.acquireRelease(
      Effect.sync(() => void pairs.add(pair)),
      () => Effect.andThen(pair.close, Effect.sync(() => void pairs.delete(pair)))
    )

  const close = Effect.suspend(() => {
    if (closed) return Effect.void
    closed = true
    const refused = [...pending]
    pending.clear()
    return Effect.all([
      network.unregister(member),
      Queue.fail(acceptQueue, new TransportClosed({ transport: name, message: `transport ${name} is closed` })),
      ...refused.map((p) => Deferred.fail(p.accepted, dialError(local, "refused", `${key.nodeId} stopped accepting`)))
    ], { discard: true })
  })

  const member: Member = {
    nodeId: key.nodeId,
    connect: (from) =>
      Effect.gen(function* () {
        if (closed) return yield* dialError(local, "unknown_peer", `no node ${key.nodeId} on the memory network`)
        const pair = yield* network.open(from, local)
        // Opening can wait across a cut; the node may have gone meanwhile.
        if (closed) {
          yield* pair.close
          return yield* dialError(local, "refused", `${key.nodeId} stopped accepting`)
        }
        const p: Pending = { pair, accepted: yield* Deferred.make<void, DialError>() }
        pending.add(p)
        yield* Queue.offer(acceptQueue, p)
        yield* Deferred.await(p.accepted).pipe(
          Effect.onExit(() => Effect.sync(() => pending.delete(p))),
          Effect.onError(() => pair.close)
        )
        return pair
      }),
    shutdown: Effect.suspend(() => Effect.all([close, ...[...pairs].map((pair) => pair.close)], { discard: true }))
  }

  yield* network.register(member)
  yield* Effect.addFinalizer(() => close)

  const accept: Effect.Effect<Connection, TransportClosed, Scope.Scope> = Effect.uninterruptibleMask((restore) =>
    Effect.gen(function* () {
      while (true) {
        if (closed) return yield* new TransportClosed({ transport: name, message: `transport ${name} is closed` })
        const p = yield* restore(Queue.take(acceptQueue))
        if (p.pair.isClosed()) continue // the dialer gave up while waiting
        yield* Deferred.succeed(p.accepted, undefined)
        yield* own(p.pair)
        return p.pair.acceptor
      }
    })
  )

  const dial = Effect.fn("MemoryTransport.dial")(function* (target: Endpoint.Endpoint): Effect.fn.Return<Connection, DialError, Scope.Scope> {
    if (target.protocol !== PROTOCOL) return yield* dialError(target, "unsupported_protocol", `protocol ${JSON.stringify(target.protocol)} is not "memory"`)
    if (target.path === "") return yield* dialError(target, "invalid_endpoint", "a memory endpoint needs a node ID as its path")
    const valid = Endpoint.validate(target)
    if (Result.isFailure(valid)) return yield* dialError(target, "invalid_endpoint", valid.failure.message)
    const id = NodeId.validate(target.path)
    if (Result.isFailure(id)) return yield* dialError(target, "invalid_endpoint", id.failure.message)
    const found = yield* network.lookup(id.success)
    if (found._tag === "None") return yield* dialError(target, "unknown_peer", `no node ${id.success} on the memory network`)
    const pair = yield* Effect.uninterruptibleMask((restore) => Effect.tap(restore(found.value.connect(local)), own))
    return pair.dialer
  })

  return Transport.of({
    name: "memory",
    protocols: [PROTOCOL],
    endpoints: Effect.sync(() => (closed ? [] : [local])),
    accept,
    dial,
    close
  })
})

/** The memory transport as a layer: registers on build, unregisters and stops accepting on close. */
export const layer: Layer.Layer<Transport, DuplicateNode, MemoryNetwork | NodeIdentity> = Layer.effect(Transport, make)

/**
 * The dial loop and each outbound connection: the PeerManager picks the address (`dialNext`), a
 * dial slot bounds the dials and handshakes in flight, and the connection, once admitted, becomes
 * the peer's route. See docs/ARCHITECTURE.md, Router.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberSet from "effect/FiberSet"
import * as Option from "effect/Option"
import * as Semaphore from "effect/Semaphore"
import * as Endpoint from "../../domain/Endpoint.ts"
import * as NodeAddress from "../../domain/NodeAddress.ts"
import type * as NodeId from "../../domain/NodeId.ts"
import { DialError } from "../../services/Transport.ts"
import { admit, handshake, onHandshakeError } from "./Admission.ts"
import type { State } from "./State.ts"

/**
 * Resolves `address` and dials its endpoints in turn, each bounded by `dialTimeout`, skipping
 * those of protocols the transport does not serve and those the IP filter refuses. Fails with the
 * last endpoint's error.
 */
// Untraced (no span, no stack frame): it runs once per connection, and a span per connection, with
// the frame every failure crossing the fiber gets annotated with, costs more at scale than it tells.
const dial = Effect.fnUntraced(function* (state: State, address: NodeAddress.NodeAddress) {
  const { options, transport } = state
  const endpoints = yield* state.resolver.resolve(address).pipe(
    Effect.timeoutOrElse({
      duration: options.resolveTimeout,
      orElse: () => Effect.fail(new DialError({ endpoint: NodeAddress.format(address), reason: "timeout", message: `resolving ${NodeAddress.format(address)} timed out` }))
    })
  )
  // Made only when no endpoint was tried: an error is costly to build (a schema class with a stack).
  let lastError: unknown = undefined
  for (const endpoint of endpoints) {
    if (!transport.protocols.includes(endpoint.protocol)) continue
    if (options.filterPeerByIp !== undefined) {
      const filtered = yield* Effect.exit(options.filterPeerByIp(endpoint))
      if (Exit.isFailure(filtered)) {
        lastError = filtered.cause
        continue
      }
    }
    const conn = yield* Effect.exit(state.deadlines.timeout(
      transport.dial(endpoint),
      options.dialTimeout,
      () => Effect.fail(new DialError({ endpoint: Endpoint.format(endpoint), reason: "timeout", message: `dialing ${Endpoint.format(endpoint)} timed out after ${options.dialTimeout} ms` }))
    ))
    if (Exit.isSuccess(conn)) return conn.value
    lastError = conn.cause
  }
  return yield* Effect.fail(lastError ?? new DialError({ endpoint: NodeAddress.format(address), reason: "unsupported_protocol", message: `no endpoint of ${NodeAddress.format(address)} uses a protocol of transport ${transport.name}` }))
})

/**
 * Takes a dial slot, then asks the PeerManager for an address and dials it in a fiber of
 * `state.fibers`, forever. The slot is held through the dial and the handshake, and given back
 * before admission, so routed peers do not hold dial slots.
 */
export const dialLoop = Effect.fnUntraced(function* (state: State) {
  const { peerManager } = state
  const dialSlots = yield* Semaphore.make(state.options.maxConcurrentDials)

  /** One outbound connection, from dial to route. */
  // Untraced (no span, no stack frame): it runs once per connection, and a span per connection, with
  // the frame every failure crossing the fiber gets annotated with, costs more at scale than it tells.
  const connect = Effect.fnUntraced(function* (address: NodeAddress.NodeAddress) {
    let released = false
    const release = Effect.suspend(() => {
      if (released) return Effect.void
      released = true
      return Effect.asVoid(dialSlots.release(1))
    })
    yield* Effect.addFinalizer(() => release)
    const conn = yield* Effect.exit(dial(state, address))
    if (Exit.isFailure(conn)) {
      yield* Effect.logDebug(`dialing ${NodeAddress.format(address)} failed`, conn.cause)
      return yield* Effect.ignore(peerManager.dialFailed(address))
    }
    const shaken = yield* Effect.exit(handshake(state, conn.value, address.nodeId as NodeId.NodeId))
    if (Exit.isFailure(shaken)) {
      const error = Exit.findErrorOption(shaken)
      if (Option.isSome(error)) yield* onHandshakeError(state, error.value)
      return yield* Effect.ignore(peerManager.dialFailed(address))
    }
    yield* release
    yield* admit(state, conn.value, shaken.value.nodeInfo, {
      direction: "outgoing",
      register: peerManager.dialed(address, conn.value.remoteEndpoint.ip),
      onFiltered: Effect.ignore(peerManager.dialFailed(address)),
      onRefused: () => Effect.void
    })
  }, Effect.scoped)

  while (true) {
    yield* dialSlots.take(1)
    const address = yield* Effect.onInterrupt(peerManager.dialNext, () => dialSlots.release(1))
    yield* FiberSet.run(state.fibers, connect(address))
  }
})

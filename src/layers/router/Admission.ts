/**
 * What inbound and outbound connections share between the transport and the route: the bounded
 * handshake, what a failed handshake tells the PeerManager, and the admission tail (the operator's
 * ID filter, the PeerManager's admission, then the route). See docs/ARCHITECTURE.md, Router.
 *
 * @since 0.1.0
 */
import type * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Endpoint from "../../domain/Endpoint.ts"
import type * as NodeId from "../../domain/NodeId.ts"
import type * as NodeInfo from "../../domain/NodeInfo.ts"
import { HandshakeTimeout, type Connection, type HandshakeError, type Peer } from "../../services/Transport.ts"
import * as Handshake from "../Handshake.ts"
import { route, type Direction } from "./Route.ts"
import type { State } from "./State.ts"

/**
 * The transport is asked to bound the handshake, and the router bounds it too: a transport that
 * ignores the timeout must not pin a handshake slot or dial worker forever (docs/ARCHITECTURE.md,
 * Router).
 */
export const handshake = (state: State, conn: Connection, expectedId?: NodeId.NodeId): Effect.Effect<Peer, HandshakeError> => {
  const { options } = state
  const handshakeOptions = {
    nodeInfo: state.nodeInfo(),
    nodeKey: state.key,
    timeout: options.handshakeTimeout,
    channels: [...state.advertised.values()],
    ...(expectedId === undefined ? {} : { expectedId })
  }
  const checked = conn.handshake(handshakeOptions).pipe(
    // The transport checks too; checking here as well keeps a third-party transport that forgets
    // from admitting an unvalidated, mismatched or incompatible peer (docs/PROTOCOL.md, NodeInfo validation).
    Effect.flatMap((peer) => Effect.fromResult(Handshake.check(Endpoint.format(conn.remoteEndpoint), handshakeOptions, peer)))
  )
  return state.deadlines.timeout(checked, options.handshakeTimeout, () => {
    const remote = Endpoint.format(conn.remoteEndpoint)
    return Effect.fail(new HandshakeTimeout({ remote, timeoutMillis: options.handshakeTimeout, message: `handshake with ${remote} did not complete within ${options.handshakeTimeout} ms` }))
  })
}

/** Handshake failures that show the peer incompatible mark it inactive. */
export const onHandshakeError = (state: State, error: HandshakeError) =>
  Effect.andThen(
    error._tag === "IncompatiblePeer" ? Effect.ignore(state.peerManager.inactivate(error.nodeId as NodeId.NodeId)) : Effect.void,
    Effect.logDebug(`handshake failed: ${error.message}`)
  )

/** How one direction differs in {@link admit}. */
export interface Admission<E> {
  readonly direction: Direction
  /** Asks the PeerManager to admit the peer: `accepted` inbound, `dialed` outbound. */
  readonly register: Effect.Effect<unknown, E>
  /** Runs when the operator's ID filter refuses the peer. */
  readonly onFiltered: Effect.Effect<void>
  /** Runs when the PeerManager refuses the peer. */
  readonly onRefused: (cause: Cause.Cause<E>) => Effect.Effect<void>
}

/**
 * The tail both directions end with once the handshake is done: the operator's ID filter, the
 * PeerManager's admission, then the peer's route, which runs until the peer is gone. A refusal
 * ends here, logged; the caller's scope then closes the connection.
 */
export const admit = Effect.fnUntraced(function* <E>(state: State, conn: Connection, info: NodeInfo.NodeInfo, admission: Admission<E>) {
  const side = admission.direction === "incoming" ? "inbound" : "outbound"
  const filterPeerById = state.options.filterPeerById
  if (filterPeerById !== undefined) {
    const filtered = yield* Effect.exit(filterPeerById(info.nodeId))
    if (Exit.isFailure(filtered)) {
      yield* Effect.logInfo(`${side} peer ${info.nodeId} filtered`, filtered.cause)
      return yield* admission.onFiltered
    }
  }
  const admitted = yield* Effect.exit(admission.register)
  if (Exit.isFailure(admitted)) {
    yield* admission.onRefused(admitted.cause)
    return yield* Effect.logDebug(`${side} peer ${info.nodeId} refused`, admitted.cause)
  }
  state.admittedPeers.add(info.nodeId)
  yield* route(state, conn, info, admission.direction)
})

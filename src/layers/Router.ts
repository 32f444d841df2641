/**
 * The Router layer (docs/ARCHITECTURE.md, Router): accept, dial and evict loops and per-peer
 * routing, all fibers owned by the layer's scope. Closing the scope interrupts the loops, closes
 * every peer connection, reports each peer disconnected and ends every open channel's `messages`;
 * it never waits on reactors.
 *
 * Like the header of Tendermint's `router.go`, a map of the fibers. They share one record,
 * `router/State.ts`, and all belong to the layer's scope, so they end when it closes.
 *
 * - accept loop (`Inbound.acceptLoop`, `router/Inbound.ts`), one, forked here: takes connections
 *   from the transport and runs a connection fiber for each in `state.fibers`.
 * - dial loop (`Outbound.dialLoop`, `router/Outbound.ts`), one, forked here: takes a dial slot,
 *   asks the PeerManager for an address (`dialNext`) and runs a connection fiber for it in
 *   `state.fibers`. It owns the dial slots.
 * - evict loop (`Evict.evictLoop`, `router/Evict.ts`), one, forked here: takes peers from the
 *   PeerManager (`evictNext`) and closes their queue and connection, which ends their route. It
 *   writes `evictRequested` for peers admitted but not yet routed.
 * - metrics flush (`RouterMetrics.flushLoop`, `router/Metrics.ts`), one, forked here: pushes the
 *   batched counts to the metrics a second after something was counted (an idle router does not
 *   wake); the last flush is a finalizer of the state.
 * - connection fibers, one per connection, in `state.fibers` (a `FiberSet`, so they are
 *   interrupted when the router stops): `Router.inbound` (`router/Inbound.ts`; admission checks
 *   and a pending-handshake slot first, it alone touches the per-IP tracker and the slots) and
 *   `Router.connect` (`router/Outbound.ts`; the dial). Both then run the handshake and the
 *   admission tail of `router/Admission.ts` (ID filter, PeerManager, `admittedPeers`) and, once
 *   admitted, the peer's route. Each owns its connection's scope.
 * - a peer's route (`Router.route`, `router/Route.ts`), inside its connection fiber: registers
 *   the peer in `peers`, then races a send loop (the peer's queue to the connection) and a receive
 *   loop (the connection to the channels' inbound queues); its cleanup removes the peer and tells
 *   the PeerManager.
 *
 * Reactors' fibers call into `router/Channels.ts`: `openChannel` writes `channels` and
 * `advertised` for the caller's scope; a channel's `send` writes to peers' queues, or, when nothing
 * is pending for the peer and its connection has a fast path (`router/FastPath.ts`, the memory
 * transport's) with room, straight to the connection, counted as the send loop would.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { background } from "./Signal.ts"
import { decodeOptions, Router, type OptionsInput } from "../services/Router.ts"
import * as Channels from "./router/Channels.ts"
import * as Evict from "./router/Evict.ts"
import * as Inbound from "./router/Inbound.ts"
import * as RouterMetrics from "./router/Metrics.ts"
import * as Outbound from "./router/Outbound.ts"
import * as State from "./router/State.ts"

export * from "../services/Router.ts"

/** Validates options and applies defaults (`Router.decodeOptions` as an Effect). */
export const resolveOptions = (input: OptionsInput) => Effect.fromResult(decodeOptions(input))

/** A channel ID as CometBFT labels it: Go's `%#x` (`0x0`, `0x30`). */
export const channelLabel: (id: number) => string = RouterMetrics.channelLabel

/** Builds the router and starts its loops in the current scope. */
export const make = Effect.fn("Router.make")(function* (input: OptionsInput) {
  const options = yield* resolveOptions(input)
  const state = yield* State.make(options)
  yield* Effect.forkScoped(background(RouterMetrics.flushLoop(state.metrics)))
  yield* Effect.forkScoped(background(Inbound.acceptLoop(state)))
  yield* Effect.forkScoped(background(Outbound.dialLoop(state)))
  yield* Effect.forkScoped(background(Evict.evictLoop(state)))
  const { peers } = state
  return Router.of({
    openChannel: (descriptor) => Channels.openChannel(state, descriptor),
    nodeInfo: Effect.sync(state.nodeInfo),
    // Built once per change of the routed peers: reactors (PEX at every peer that comes up) and
    // simulations polling every node ask far more often than peers come and go.
    peers: Effect.sync(() =>
      state.routedView ??= [...peers.values()].map(({ nodeId, nodeInfo, remoteEndpoint, direction, channels }) => ({ nodeId, nodeInfo, remoteEndpoint, direction, channels }))
    ),
    connectionStatus: (nodeId) =>
      Effect.suspend(() => {
        const status = peers.get(nodeId)?.connection.status
        return status === undefined ? Effect.succeed(undefined) : status
      })
  })
})

/** The router as a layer; building it starts the loops. */
export const layer = (options: OptionsInput) => Layer.effect(Router, make(options))

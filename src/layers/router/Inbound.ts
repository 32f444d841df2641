/**
 * The accept loop and each inbound connection, from accept to route. Admission happens before any
 * handshake work: bans, the per-IP and per-network limits, then a pending-handshake slot (the
 * oldest pending connection gives up its slot when all are taken). See docs/ARCHITECTURE.md, Router.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberSet from "effect/FiberSet"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as Ban from "../../domain/Ban.ts"
import * as Endpoint from "../../domain/Endpoint.ts"
import * as Ip from "../../domain/Ip.ts"
import * as ConnTracker from "../../domain/router/ConnTracker.ts"
import * as PendingHandshakes from "../../domain/router/PendingHandshakes.ts"
import type { Connection } from "../../services/Transport.ts"
import { admit, handshake, onHandshakeError } from "./Admission.ts"
import type { State } from "./State.ts"

/** Inbound handshake failures that count toward banning the address (`PeerManager.handshakeFailed`). */
const ABUSIVE_HANDSHAKE_FAILURES: ReadonlySet<string> = new Set(["HandshakeAuthFailed", "HandshakeTimeout", "InvalidPeerNodeInfo", "PeerKeyMismatch", "ConnectionError", "ConnectionClosed"])

/**
 * Accepts connections until the transport is closed, each in a fiber of `state.fibers` that owns
 * the connection's scope. A transient accept failure (out of file descriptors, say) is retried
 * after a pause.
 */
export const acceptLoop = Effect.fnUntraced(function* (state: State) {
  const { options, transport, peerManager, metrics } = state
  const { count, refused } = metrics
  // Inbound admission state: read and written only by `inbound`, and with no suspension between a
  // read and its write (the time is read first for that reason).
  let tracker = ConnTracker.make(options.maxIncomingConnectionAttempts, options.incomingConnectionWindow, options.maxIncomingConnectionsPerSubnet)
  let pending = PendingHandshakes.make<Connection>({
    max: options.maxConcurrentHandshakes,
    perIp: options.maxPendingHandshakesPerIp,
    perGroup: options.maxPendingHandshakesPerSubnet
  })

  /**
   * One inbound connection, from accept to route. The handshake starts as soon as the connection
   * has a slot; the transport bounds it from the accept, and so does the router.
   */
  // Untraced (no span, no stack frame): it runs once per connection, and a span per connection, with
  // the frame every failure crossing the fiber gets annotated with, costs more at scale than it tells.
  const inbound = Effect.fnUntraced(function* (conn: Connection) {
    const ip = conn.remoteEndpoint.ip
    // Read the time first: `tracker` and `pending` must be read and written with no suspension in between.
    const now = yield* Clock.currentTimeMillis
    const banned = yield* peerManager.checkIp(ip)
    if (banned !== undefined) {
      count(refused("banned"), 1)
      return yield* Effect.logDebug(`refusing inbound connection from banned ${ip} (${Ban.formatSubject(banned.subject)}: ${banned.reason})`)
    }
    // Connections with no IP (an in-process transport's) are not subject to per-IP limits.
    const admitted = ip === "" ? { tracker } : ConnTracker.add(tracker, ip, now)
    if ("rejected" in admitted) {
      count(refused(admitted.reason), 1)
      return yield* Effect.logDebug(`refusing inbound connection: ${admitted.rejected}`)
    }
    const slot = PendingHandshakes.admit(pending, { key: conn, ip, group: Ip.group(ip), since: now })
    if ("rejected" in slot) {
      count(refused(slot.rejected), 1)
      return yield* Effect.logDebug(`refusing inbound connection: ${slot.message}`)
    }
    tracker = admitted.tracker
    pending = slot.set
    if (slot.evicted !== undefined) {
      count(refused("pending_evicted"), 1)
      yield* Effect.logDebug(`dropping the handshake with ${Endpoint.format(slot.evicted.key.remoteEndpoint)} (waiting since ${slot.evicted.since}) to make room`)
      yield* slot.evicted.key.close
    }
    const leavePending = Effect.sync(() => {
      pending = PendingHandshakes.remove(pending, conn)
    })
    yield* Effect.gen(function* () {
      if (state.options.filterPeerByIp !== undefined) {
        const filtered = yield* Effect.exit(state.options.filterPeerByIp(conn.remoteEndpoint))
        if (Exit.isFailure(filtered)) {
          count(refused("filtered"), 1)
          return yield* Effect.logInfo(`inbound connection from ${Endpoint.format(conn.remoteEndpoint)} filtered`, filtered.cause)
        }
      }
      const shaken = yield* Effect.exit(handshake(state, conn))
      yield* leavePending
      if (Exit.isFailure(shaken)) {
        const error = Exit.findErrorOption(shaken)
        if (Option.isSome(error)) {
          yield* onHandshakeError(state, error.value)
          // Garbage, failed authentication, silence or hanging up: what a legitimate peer does
          // not do; repeated, it gets the address banned. A different network does not count.
          if (ABUSIVE_HANDSHAKE_FAILURES.has(error.value._tag)) yield* Effect.ignore(peerManager.handshakeFailed(ip))
        }
        return
      }
      const info = shaken.value.nodeInfo
      yield* admit(state, conn, info, {
        direction: "incoming",
        register: peerManager.accepted(info.nodeId, ip),
        onFiltered: Effect.sync(() => count(refused("filtered"), 1)),
        onRefused: (cause) =>
          Effect.sync(() => {
            const rejection = Cause.findErrorOption(cause)
            if (Option.isSome(rejection) && rejection.value._tag === "ConnectionRejected") count(refused(rejection.value.reason), 1)
          })
      })
    }).pipe(Effect.ensuring(Effect.andThen(leavePending, Effect.flatMap(Clock.currentTimeMillis, (now) => Effect.sync(() => {
      if (ip !== "") tracker = ConnTracker.remove(tracker, ip, now)
    })))))
  })

  while (true) {
    const scope = yield* Scope.make()
    const accepted = yield* Effect.exit(Scope.provide(transport.accept, scope))
    if (Exit.isFailure(accepted)) {
      yield* Scope.close(scope, Exit.void)
      const error = Exit.findErrorOption(accepted)
      if (Option.isSome(error) && error.value._tag === "TransportClosed") return
      // Transient (e.g. out of file descriptors): keep accepting, after a pause (docs/ARCHITECTURE.md, Router).
      yield* Effect.logWarning("accept failed; retrying", accepted.cause)
      yield* Effect.sleep(100)
      continue
    }
    yield* FiberSet.run(state.fibers, Effect.ensuring(inbound(accepted.value), Scope.close(scope, Exit.void)))
  }
})

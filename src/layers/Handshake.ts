/**
 * The handshake every transport shares: run the transport's key-and-NodeInfo exchange under a
 * timeout, then apply the pure checks of `domain/HandshakeCheck.ts`, turning a refusal into the
 * Transport error of the same name.
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import * as HandshakeCheck from "../domain/HandshakeCheck.ts"
import {
  DEFAULT_HANDSHAKE_TIMEOUT,
  HandshakeTimeout,
  IncompatiblePeer,
  InvalidPeerNodeInfo,
  PeerKeyMismatch,
  SelfConnection,
  UnexpectedPeer,
  type HandshakeError,
  type HandshakeOptions,
  type Peer
} from "../services/Transport.ts"

/** The Transport error of each refusal of the shared checks: same name, same fields. */
const errors = { InvalidPeerNodeInfo, PeerKeyMismatch, UnexpectedPeer, SelfConnection, IncompatiblePeer } as const

const toError = (refusal: HandshakeCheck.Refusal): HandshakeError => {
  const { _tag, ...fields } = refusal
  return new errors[_tag](fields as never)
}

/** Checks an exchanged (authenticated) peer against our expectations (`HandshakeCheck.check`). */
export const check = (remote: string, options: HandshakeOptions, peer: Peer): Result.Result<Peer, HandshakeError> =>
  Result.mapError(HandshakeCheck.check(remote, { nodeInfo: options.nodeInfo, nodeId: options.nodeKey.nodeId, expectedId: options.expectedId }, peer), toError)

/**
 * Runs `exchange` (the transport's authenticated swap of NodeInfo and keys) within the handshake
 * timeout, then {@link check}s the result. A timeout fails with `HandshakeTimeout` and interrupts
 * the exchange, so the transport can free what it holds.
 */
export const run = <E extends HandshakeError>(
  remote: string,
  options: HandshakeOptions,
  exchange: Effect.Effect<Peer, E>
): Effect.Effect<Peer, HandshakeError> => {
  const timeout = Duration.fromInputUnsafe(options.timeout ?? DEFAULT_HANDSHAKE_TIMEOUT)
  const bounded: Effect.Effect<Peer, HandshakeError> = Duration.isFinite(timeout)
    ? exchange.pipe(
      Effect.timeoutOrElse({
        duration: timeout,
        orElse: () =>
          Effect.fail(new HandshakeTimeout({
            remote,
            timeoutMillis: Duration.toMillis(timeout),
            message: `handshake with ${remote} did not complete within ${Duration.format(timeout)}`
          }))
      })
    )
    : exchange
  return bounded.pipe(Effect.flatMap((peer) => Effect.fromResult(check(remote, options, peer))))
}

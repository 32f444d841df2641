/**
 * The handshake every transport shares: run the transport's key-and-NodeInfo exchange under a
 * timeout, then apply the checks in the original's order (WIRE §1, SPEC §4.7): the NodeInfo is
 * valid, its node ID is the authenticated key's, it is the ID we dialed, it is not ourselves, and it
 * is compatible with ours.
 *
 * @since 0.1.0
 */
import { Duration, Effect, Result } from "effect"
import * as NodeId from "../domain/NodeId.ts"
import * as NodeInfo from "../domain/NodeInfo.ts"
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

/** Checks an exchanged (authenticated) peer against our expectations; pure. */
export const check = (remote: string, options: HandshakeOptions, peer: Peer): Result.Result<Peer, HandshakeError> => {
  const info = peer.nodeInfo
  const valid = NodeInfo.validate(info)
  if (Result.isFailure(valid)) {
    return Result.fail(new InvalidPeerNodeInfo({ remote, nodeId: info.nodeId, reason: valid.failure.reason, message: `handshake with ${remote}: ${valid.failure.message}` }))
  }
  const keyId = NodeId.fromPublicKey(peer.publicKey)
  if (info.nodeId !== keyId) {
    return Result.fail(new PeerKeyMismatch({
      remote,
      claimed: info.nodeId,
      authenticated: keyId,
      message: `handshake with ${remote}: peer claims node ID ${info.nodeId} but its key is ${keyId}`
    }))
  }
  if (options.expectedId !== undefined && options.expectedId !== info.nodeId) {
    return Result.fail(new UnexpectedPeer({
      remote,
      expected: options.expectedId,
      got: info.nodeId,
      message: `dialed ${options.expectedId} at ${remote} but reached ${info.nodeId}`
    }))
  }
  if (info.nodeId === options.nodeKey.nodeId) {
    return Result.fail(new SelfConnection({ remote, nodeId: info.nodeId, message: `${remote} is this node itself (${info.nodeId})` }))
  }
  const compatible = NodeInfo.compatibleWith(options.nodeInfo, info)
  if (Result.isFailure(compatible)) {
    return Result.fail(new IncompatiblePeer({ remote, nodeId: info.nodeId, reason: compatible.failure.reason, peerNetwork: info.network, message: `handshake with ${remote}: ${compatible.failure.message}` }))
  }
  return Result.succeed(peer)
}

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

/**
 * The checks every handshake ends with, in the original's order (docs/PROTOCOL.md, "After the
 * exchange"): the peer's NodeInfo is valid, its node ID is the ID of the key it authenticated
 * with, it is the ID we dialed, it is not ourselves, and it is compatible with ours. Pure: the
 * transports' shared shell (`layers/Handshake.ts`) turns a refusal into the Transport error of the
 * same name.
 *
 * @since 0.1.0
 */
import * as Result from "effect/Result"
import * as NodeId from "./NodeId.ts"
import * as NodeInfo from "./NodeInfo.ts"

/** What the checks need of our side. */
export interface Ours {
  readonly nodeInfo: NodeInfo.NodeInfo
  readonly nodeId: NodeId.NodeId
  /** The node ID we dialed, when we dialed one. */
  readonly expectedId?: NodeId.NodeId | undefined
}

/** What the peer presented: its NodeInfo and the key it proved it holds. */
export interface Presented {
  readonly nodeInfo: NodeInfo.NodeInfo
  readonly publicKey: Uint8Array
}

/** Why a peer is refused; `_tag` names the Transport error it becomes, the other fields are its fields. */
export type Refusal =
  | { readonly _tag: "InvalidPeerNodeInfo"; readonly remote: string; readonly nodeId: string; readonly reason: string; readonly message: string }
  | { readonly _tag: "PeerKeyMismatch"; readonly remote: string; readonly claimed: string; readonly authenticated: string; readonly message: string }
  | { readonly _tag: "UnexpectedPeer"; readonly remote: string; readonly expected: string; readonly got: string; readonly message: string }
  | { readonly _tag: "SelfConnection"; readonly remote: string; readonly nodeId: string; readonly message: string }
  | { readonly _tag: "IncompatiblePeer"; readonly remote: string; readonly nodeId: string; readonly reason: string; readonly peerNetwork: string; readonly message: string }

/** Checks the peer `remote` presented against our side; the first refusal, or the peer. */
export const check = <P extends Presented>(remote: string, ours: Ours, peer: P): Result.Result<P, Refusal> => {
  const info = peer.nodeInfo
  const valid = NodeInfo.validate(info)
  if (Result.isFailure(valid)) {
    return Result.fail({ _tag: "InvalidPeerNodeInfo", remote, nodeId: info.nodeId, reason: valid.failure.reason, message: `handshake with ${remote}: ${valid.failure.message}` })
  }
  const keyId = NodeId.fromPublicKey(peer.publicKey)
  if (info.nodeId !== keyId) {
    return Result.fail({
      _tag: "PeerKeyMismatch",
      remote,
      claimed: info.nodeId,
      authenticated: keyId,
      message: `handshake with ${remote}: peer claims node ID ${info.nodeId} but its key is ${keyId}`
    })
  }
  if (ours.expectedId !== undefined && ours.expectedId !== info.nodeId) {
    return Result.fail({ _tag: "UnexpectedPeer", remote, expected: ours.expectedId, got: info.nodeId, message: `dialed ${ours.expectedId} at ${remote} but reached ${info.nodeId}` })
  }
  if (info.nodeId === ours.nodeId) {
    return Result.fail({ _tag: "SelfConnection", remote, nodeId: info.nodeId, message: `${remote} is this node itself (${info.nodeId})` })
  }
  const compatible = NodeInfo.compatibleWith(ours.nodeInfo, info)
  if (Result.isFailure(compatible)) {
    return Result.fail({
      _tag: "IncompatiblePeer",
      remote,
      nodeId: info.nodeId,
      reason: compatible.failure.reason,
      peerNetwork: info.network,
      message: `handshake with ${remote}: ${compatible.failure.message}`
    })
  }
  return Result.succeed(peer)
}

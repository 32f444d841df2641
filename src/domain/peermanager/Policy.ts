/**
 * The policy the PeerManager's pure core decides by: its options, validated and with defaults
 * applied (`PeerManager.Options` is this type), and the words its decisions are written in.
 *
 * @since 0.1.0
 */
import type * as NodeAddress from "../NodeAddress.ts"
import type * as NodeId from "../NodeId.ts"
import type * as PeerScore from "../PeerScore.ts"

/** Which side opened a connection. */
export type Direction = "incoming" | "outgoing"

/** Why a connection is refused. */
export const REJECT_REASONS = ["self", "already_connected", "full", "inbound_full", "unknown_peer", "banned"] as const

/** Why a connection is refused. */
export type RejectReason = (typeof REJECT_REASONS)[number]

/** A refused connection; the shell turns it into `PeerManager.ConnectionRejected`. */
export interface Rejection {
  readonly nodeId: string
  readonly reason: RejectReason
  readonly message: string
}

/** An address that cannot be added; the shell turns it into `PeerManager.InvalidPeerAddress`. */
export interface AddressRefusal {
  readonly address: string
  readonly message: string
}

/**
 * Validated options, defaults applied. Zero keeps the original's meaning: `maxPeers`,
 * `maxConnected`, `maxOutgoingConnections` 0 = unlimited; `maxConnectedUpgrade` 0 = no upgrades;
 * `minRetryTime` 0 = non-persistent peers are not retried; `maxRetryTime*` 0 = uncapped.
 * `maxIncomingPeers` and `maxOutgoingPeers` have CometBFT's meaning instead (0 = none; `undefined`
 * = no limit of their own), and neither counts persistent or unconditional peers.
 */
export interface Policy {
  readonly persistentPeers: ReadonlySet<NodeId.NodeId>
  /** Peers outside every connection limit (CometBFT's `unconditional_peer_ids`). */
  readonly unconditionalPeers: ReadonlySet<NodeId.NodeId>
  readonly privatePeers: ReadonlySet<NodeId.NodeId>
  readonly peerScores: ReadonlyMap<NodeId.NodeId, PeerScore.PeerScore>
  readonly selfAddress: NodeAddress.NodeAddress | undefined
  readonly maxPeers: number
  readonly maxConnected: number
  readonly maxOutgoingConnections: number
  /** Inbound peers at most, not counting persistent and unconditional ones; 0 = none. */
  readonly maxIncomingPeers: number | undefined
  /** Outbound peers (and dials) at most, not counting persistent and unconditional ones; 0 = none. */
  readonly maxOutgoingPeers: number | undefined
  readonly maxConnectedUpgrade: number
  readonly maxAddressesPerPeer: number
  /** Peers learned from one PEX source (and not yet reached) kept at most; 0 = no limit. */
  readonly maxPeersPerSource: number
  /** Peers learned over PEX (and not yet reached) per address group, IPv4 /16 or IPv6 /32, kept at most; 0 = no limit. */
  readonly maxPeersPerGroup: number
  readonly minRetryTime: number
  readonly maxRetryTime: number
  readonly maxRetryTimePersistent: number
  readonly retryTimeJitter: number
  readonly disconnectCooldownPeriod: number
  /**
   * Inbound peers admitted at once although the node is full, for `gracePeriod`, so they can ask
   * for addresses (PEX) before they are let go instead of being turned away knowing no one; they
   * take no slot. 0 = refuse at once (the original's behaviour).
   */
  readonly maxGracePeers: number
  /** How long a peer admitted on grace stays. */
  readonly gracePeriod: number
  /**
   * An outbound connection that ends sooner than this counts as a failed dial of its address (its
   * retry backs off), so a peer that keeps letting us go is not redialed in a loop. 0 = off.
   */
  readonly minConnectionDuration: number
  /** Bans kept at most; when full, the one that ends soonest makes room. */
  readonly maxBans: number
  /** Misbehaviour reports (`errored`) within `misbehaviourWindow` that get a peer banned; 0 = never. */
  readonly banAfterMisbehaviours: number
  /** Failed inbound handshakes from one IP within `misbehaviourWindow` that get the IP banned; 0 = never. */
  readonly banAfterFailedHandshakes: number
  readonly misbehaviourWindow: number
  readonly misbehaviourBanDuration: number
  readonly failedHandshakeBanDuration: number
  readonly subscriberBufferSize: number
}

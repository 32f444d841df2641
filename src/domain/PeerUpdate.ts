/**
 * Peer status changes published by the PeerManager (docs/ARCHITECTURE.md#peer-updates). `up` carries the channels the peer
 * serves; `good` and `bad` are reputation events reactors send to the manager.
 *
 * @since 0.1.0
 */
import type { NodeId } from "./NodeId.ts"

/** Connected and ready, disconnected, or a reputation event. */
export type PeerStatus = "up" | "down" | "good" | "bad"

/** One change of a peer's status. */
export interface PeerUpdate {
  readonly nodeId: NodeId
  readonly status: PeerStatus
  /** Channel IDs the peer serves: set for `up`, empty otherwise. */
  readonly channels: ReadonlySet<number>
}

const none: ReadonlySet<number> = new Set()

/** The peer is connected and ready, serving `channels`. */
export const up = (nodeId: NodeId, channels: Iterable<number>): PeerUpdate => ({ nodeId, status: "up", channels: new Set(channels) })

/** The peer disconnected. */
export const down = (nodeId: NodeId): PeerUpdate => ({ nodeId, status: "down", channels: none })

/** A reputation event: the peer behaved well or badly. */
export const reputation = (nodeId: NodeId, status: "good" | "bad"): PeerUpdate => ({ nodeId, status, channels: none })

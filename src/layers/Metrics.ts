/**
 * The stack's metrics, named after Tendermint's `p2p` subsystem (docs/ARCHITECTURE.md#metrics). Names carry no
 * namespace: the Prometheus endpoint prefixes one (`tendermint_`, `cometbft_`, configurable), giving
 * e.g. `cometbft_p2p_peers`.
 *
 * @since 0.1.0
 */
import * as Metric from "effect/Metric"

/** Connected peers routed by the router. */
export const peers = Metric.gauge("p2p_peers", { description: "Number of peers connected and routed." })
/** Bytes received per peer and channel (attributes `peer_id`, `chID`). */
export const peerReceiveBytesTotal = Metric.counter("p2p_peer_receive_bytes_total", { description: "Bytes received from a peer, per channel.", incremental: true })
/** Bytes sent per peer and channel (attributes `peer_id`, `chID`). */
export const peerSendBytesTotal = Metric.counter("p2p_peer_send_bytes_total", { description: "Bytes sent to a peer, per channel.", incremental: true })
/** Bytes waiting to be sent to a peer: its router queue and its connection's channel queues (attribute `peer_id`). */
export const peerPendingSendBytes = Metric.gauge("p2p_peer_pending_send_bytes", { description: "Bytes queued for sending to a peer." })
/** Bytes of messages received, per message type (attribute `message_type`, e.g. `p2p_PexRequest`). */
export const messageReceiveBytesTotal = Metric.counter("p2p_message_receive_bytes_total", { description: "Bytes of messages received, per message type.", incremental: true })
/** Bytes of messages sent, per message type (attribute `message_type`). */
export const messageSendBytesTotal = Metric.counter("p2p_message_send_bytes_total", { description: "Bytes of messages sent, per message type.", incremental: true })
/** Messages received per channel (attribute `chID`). */
export const messageReceiveTotal = Metric.counter("p2p_message_receive_total", { description: "Messages received from peers, per channel.", incremental: true })
/** Messages sent per channel (attribute `chID`). */
export const messageSendTotal = Metric.counter("p2p_message_send_total", { description: "Messages sent to peers, per channel.", incremental: true })
/** Messages waiting in peer send queues. */
export const routerPeerQueueSend = Metric.gauge("p2p_router_peer_queue_send", { description: "Messages queued for sending to peers." })
/** Messages dropped (unknown peer, channel the peer lacks, closed queue, undecodable), attribute `reason`. */
export const peerQueueDroppedMsgs = Metric.counter("p2p_peer_queue_dropped_msgs", { description: "Messages dropped by the router, per reason.", incremental: true })
/**
 * Inbound connections refused before any handshake work, attribute `reason`: `fd_limit` (the
 * inbound socket budget under the open-file limit is used up), `accept_queue_full`, `ip_limit`
 * (too many from one IP), `reconnect_too_soon`, `filtered`, and after the handshake `full` /
 * `inbound_full` (no slot, and no grace slot either).
 */
export const inboundRefused = Metric.counter("p2p_inbound_refused", { description: "Inbound connections refused, per reason.", incremental: true })
/** Bans in force, attribute `kind`: `node` or `network`. */
export const bans = Metric.gauge("p2p_bans", { description: "Bans in force, per kind (node or network)." })
/** Bans made (by an operator, a reactor, or for repeated misbehaviour or failed handshakes). */
export const bansAdded = Metric.counter("p2p_bans_added", { description: "Bans made.", incremental: true })
/** Peers evicted by the router. */
export const peersEvicted = Metric.counter("p2p_peers_evicted", { description: "Peers evicted.", incremental: true })

/** Peers in the peer store. */
export const peersStored = Metric.gauge("p2p_peers_stored", { description: "Number of peers in the peer store." })
/** Successful dials. */
export const peersConnectedSuccess = Metric.counter("p2p_peers_connected_success", { description: "Outbound connections established.", incremental: true })
/** Failed dials. */
export const peersConnectedFailure = Metric.counter("p2p_peers_connected_failure", { description: "Outbound connection attempts that failed.", incremental: true })
/** Inbound peers connected now. */
export const peersConnectedIncoming = Metric.gauge("p2p_peers_connected_incoming", { description: "Inbound peers connected." })
/** Outbound peers connected now. */
export const peersConnectedOutgoing = Metric.gauge("p2p_peers_connected_outgoing", { description: "Outbound peers connected." })
/** Peers marked inactive (incompatible). */
export const peersInactivated = Metric.counter("p2p_peers_inactivated", { description: "Peers marked inactive after an incompatible handshake.", incremental: true })
/** Stored rows that failed to decode and were skipped. */
export const peerStoreCorruptRows = Metric.counter("p2p_peer_store_corrupt_rows", { description: "Peer-store rows that could not be decoded and were skipped.", incremental: true })

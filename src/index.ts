/**
 * effect-p2p: Tendermint's P2P layer as Effect services, wire-compatible with CometBFT.
 *
 * @since 0.1.0
 */
export * as ChannelDescriptor from "./domain/ChannelDescriptor.ts"
export * as Endpoint from "./domain/Endpoint.ts"
export * as Envelope from "./domain/Envelope.ts"
export * as NodeAddress from "./domain/NodeAddress.ts"
export * as NodeId from "./domain/NodeId.ts"
export * as NodeInfo from "./domain/NodeInfo.ts"
export * as NodeKey from "./domain/NodeKey.ts"
export * as PeerError from "./domain/PeerError.ts"
export * as PeerRecord from "./domain/PeerRecord.ts"
export * as PeerScore from "./domain/PeerScore.ts"
export * as PeerUpdate from "./domain/PeerUpdate.ts"
export * as CometJson from "./domain/CometJson.ts"
export * as FlowMonitor from "./domain/FlowMonitor.ts"

export * as AddressResolver from "./layers/AddressResolver.ts"
export * as Metrics from "./layers/Metrics.ts"
export * as Transport from "./services/Transport.ts"
export * as Node from "./layers/Node.ts"
export * as NodeIdentity from "./layers/NodeIdentity.ts"
export * as PeerManager from "./layers/PeerManager.ts"
export * as PeerStore from "./layers/PeerStore.ts"
export * as Pex from "./layers/Pex.ts"
export * as Router from "./layers/Router.ts"

export * as MemoryNetwork from "./layers/MemoryNetwork.ts"
export * as MemoryTransport from "./layers/MemoryTransport.ts"
export * as NodeHttp from "./layers/NodeHttp.ts"
export * as NodeKeyFile from "./layers/NodeKeyFile.ts"
export * as TcpTransport from "./layers/TcpTransport.ts"

/** `PeerManager`: the service, its options, and its layer. */
export * from "../services/PeerManager.ts"
export { layer, make } from "../layers/PeerManager.ts"

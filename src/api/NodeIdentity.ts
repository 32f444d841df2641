/** `NodeIdentity`: the node's key; `layerFile` reads (or creates) CometBFT's `node_key.json`. */
export * from "../services/NodeIdentity.ts"
export { layer as layerFile } from "../layers/NodeKeyFile.ts"

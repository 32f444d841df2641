/**
 * The NodeIdentity layers: a fixed key, a random one, or CometBFT's `node_key.json` (read, or
 * generated and written on first use). This module is the `NodeIdentity` namespace: it re-exports
 * the service.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as NodeKey from "../domain/NodeKey.ts"
import { NodeIdentity } from "../services/NodeIdentity.ts"

export * from "../services/NodeIdentity.ts"
export { layer as layerFile } from "./NodeKeyFile.ts"

/** A fixed key. */
export const layer = (key: NodeKey.NodeKey): Layer.Layer<NodeIdentity> => Layer.succeed(NodeIdentity, { key })

/** A fresh random key (tests, throwaway nodes, crawlers). */
export const layerRandom: Layer.Layer<NodeIdentity> = Layer.effect(NodeIdentity, Effect.map(NodeKey.generate(), (key) => ({ key })))

/**
 * The local node's identity key, shared by the transports (the memory network registers nodes by
 * ID) and the router (which signs handshakes with it).
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer } from "effect"
import * as NodeKey from "../domain/NodeKey.ts"

/** The node's Ed25519 key and the node ID derived from it. */
export class NodeIdentity extends Context.Service<NodeIdentity, { readonly key: NodeKey.NodeKey }>()("effect-p2p/NodeIdentity") {}

/** A fixed key. */
export const layer = (key: NodeKey.NodeKey): Layer.Layer<NodeIdentity> => Layer.succeed(NodeIdentity, { key })

/** A fresh random key (tests, throwaway nodes, crawlers). */
export const layerRandom: Layer.Layer<NodeIdentity> = Layer.effect(NodeIdentity, Effect.map(NodeKey.generate(), (key) => ({ key })))

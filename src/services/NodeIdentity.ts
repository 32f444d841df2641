/**
 * The local node's identity key, shared by the transports (the memory network registers nodes by
 * ID) and the router (which signs handshakes with it). The layers are in `layers/NodeIdentity.ts`.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Schema from "effect/Schema"
import type * as NodeKey from "../domain/NodeKey.ts"

/** The node's Ed25519 key and the node ID derived from it. */
export class NodeIdentity extends Context.Service<NodeIdentity, { readonly key: NodeKey.NodeKey }>()("effect-p2p/NodeIdentity") {}

/** The key file (`node_key.json`) could not be read or written. */
export class NodeKeyFileError extends Schema.TaggedError<NodeKeyFileError>()("NodeKeyFileError", {
  path: Schema.String,
  message: Schema.String
}) {}

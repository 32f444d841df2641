/**
 * A reactor's report that a peer misbehaved (docs/ARCHITECTURE.md#channels-and-envelopes). Fatal errors disconnect the peer; others
 * lower its score, and the PeerManager decides whether to evict.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"

/**
 * A peer misbehaved: `message` says how, `fatal` asks for disconnection, `ban` (a duration such as
 * `"1 hour"`, milliseconds, or `Infinity`) bans the peer for that long: it is disconnected, not
 * dialed, refused and never advertised, and the ban survives a restart. `misbehaviour: false`
 * lets a well-behaved peer go (a seed that answered it, a full node that gave it addresses): a
 * fatal report then disconnects it without lowering its score or counting toward a ban.
 */
export class PeerError extends Schema.TaggedError<PeerError>()("PeerError", {
  nodeId: Schema.String,
  message: Schema.String,
  fatal: Schema.Boolean,
  ban: Schema.optionalKey(Schema.Union([Schema.String, Schema.Number])),
  misbehaviour: Schema.optionalKey(Schema.Boolean)
}) {}

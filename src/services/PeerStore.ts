/**
 * Durable storage of known peers (docs/ARCHITECTURE.md#persistence): one row per peer holding its protobuf `PeerInfo`,
 * and one row per ban (a node ID or an IP network, protobuf `Ban`), so bans survive a restart.
 * The PeerManager keeps the working set in memory and writes every change through this service;
 * a write has reached the store when the effect succeeds, so the manager never moves ahead of disk.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Schema from "effect/Schema"
import type * as Effect from "effect/Effect"
import type * as Ban from "../domain/Ban.ts"
import type * as NodeId from "../domain/NodeId.ts"
import type * as PeerRecord from "../domain/PeerRecord.ts"

/**
 * Why a store failed, when it can tell: `corrupt` (not a database, or damaged), `schema_version`
 * (written by another version), `not_a_file` (the path is a directory, or cannot be created),
 * `read_only`, `locked`, `disk_full`, `io`, `closed`, `missing` (a read-only store that does not
 * exist), `invalid_options`.
 */
export type PeerStoreFailure = "corrupt" | "schema_version" | "not_a_file" | "read_only" | "locked" | "disk_full" | "io" | "closed" | "missing" | "invalid_options"

/** A write or read failed; nothing was changed. `path` names the database; the message says what to do. */
export class PeerStoreError extends Schema.TaggedError<PeerStoreError>()("PeerStoreError", {
  path: Schema.String,
  operation: Schema.Literals(["open", "load", "put", "remove"]),
  reason: Schema.optionalKey(Schema.Literals(["corrupt", "schema_version", "not_a_file", "read_only", "locked", "disk_full", "io", "closed", "missing", "invalid_options"])),
  /** What was found, without the advice (for a caller that gives its own). */
  detail: Schema.optionalKey(Schema.String),
  message: Schema.String
}) {}

/** Peer persistence. */
export class PeerStore extends Context.Service<
  PeerStore,
  {
    /**
     * Every stored peer. Rows that fail to decode are reported once (a warning log and the
     * `peer_store_corrupt_rows` counter) and skipped; the others load.
     */
    readonly load: Effect.Effect<ReadonlyArray<PeerRecord.PeerRecord>, PeerStoreError>
    /** Inserts or replaces the peer's row; durable (committed) when the effect succeeds. */
    readonly put: (peer: PeerRecord.PeerRecord) => Effect.Effect<void, PeerStoreError>
    /** Deletes the peer's row, if any; durable when the effect succeeds. */
    readonly remove: (id: NodeId.NodeId) => Effect.Effect<void, PeerStoreError>
    /** Every stored ban; rows that fail to decode are reported and skipped, as peer rows are. */
    readonly loadBans: Effect.Effect<ReadonlyArray<Ban.Ban>, PeerStoreError>
    /** Inserts or replaces the ban of its subject; durable when the effect succeeds. */
    readonly putBan: (ban: Ban.Ban) => Effect.Effect<void, PeerStoreError>
    /** Deletes the ban of a subject (`Ban.key`), if any; durable when the effect succeeds. */
    readonly removeBan: (key: string) => Effect.Effect<void, PeerStoreError>
  }
>()("effect-p2p/PeerStore") {}

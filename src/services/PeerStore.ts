/**
 * Durable storage of known peers (SPEC §3.7): one row per peer holding its protobuf `PeerInfo`.
 * The PeerManager keeps the working set in memory and writes every change through this service;
 * a write has reached the store when the effect succeeds, so the manager never moves ahead of disk.
 *
 * @since 0.1.0
 */
import { Context, Schema, type Effect } from "effect"
import type * as NodeId from "../domain/NodeId.ts"
import type * as PeerRecord from "../domain/PeerRecord.ts"

/** A write or read failed; nothing was changed. `path` names the database. */
export class PeerStoreError extends Schema.TaggedError<PeerStoreError>()("PeerStoreError", {
  path: Schema.String,
  operation: Schema.Literals(["open", "load", "put", "remove"]),
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
  }
>()("effect-p2p/PeerStore") {}

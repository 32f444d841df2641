/**
 * An in-memory peer store for tests and ephemeral nodes. It keeps each peer as encoded protobuf
 * bytes, just as the SQLite store keeps its rows. A record therefore goes through
 * `PeerRecord.encode`/`decode` on every `put`/`load`. Tests that pass on this store exercise the
 * same round trip as production, so a field that is not stored shows up missing here as well.
 *
 * Also holds the row decoding shared with `PeerStoreSqlite` ({@link decodeRows}), so both stores
 * skip and report damaged rows the same way.
 *
 * @since 0.1.0
 */
import { Effect, Layer, Metric, Result, type Context } from "effect"
import * as Ban from "../domain/Ban.ts"
import type * as NodeId from "../domain/NodeId.ts"
import * as PeerRecord from "../domain/PeerRecord.ts"
import * as Metrics from "../services/Metrics.ts"
import { PeerStore, PeerStoreError } from "../services/PeerStore.ts"

/** The service a peer store layer provides. */
export type Service = Context.Service.Shape<typeof PeerStore>

/**
 * Counts stored rows that `load` skipped because they did not decode (bad protobuf, invalid ID
 * or address, wrong column type, or an `id` column that differs from the record's ID). It counts
 * every skipped row on every load, so a row that stays damaged adds one on each load.
 */
export const corruptRows = Metrics.peerStoreCorruptRows

/** One stored row as read back: the key column and the encoded record, of whatever type the store returned. */
export interface Row {
  readonly id: unknown
  readonly info: unknown
}

const typeName = (u: unknown): string => (u === null ? "NULL" : u instanceof Uint8Array ? "a BLOB" : typeof u)

const decodeRow = (row: Row): Result.Result<PeerRecord.PeerRecord, string> => {
  if (typeof row.id !== "string") return Result.fail(`id column holds ${typeName(row.id)}, expected text`)
  if (!(row.info instanceof Uint8Array)) return Result.fail(`info column holds ${typeName(row.info)}, expected a BLOB`)
  const decoded = PeerRecord.decode(row.info)
  if (Result.isFailure(decoded)) return Result.fail(decoded.failure.message)
  if (decoded.success.id !== row.id) return Result.fail(`the record inside is for peer ${decoded.success.id}`)
  return Result.succeed(decoded.success)
}

/**
 * Decodes stored rows into records. A row that does not decode, or whose `id` differs from the
 * decoded record's ID, is skipped: it gets one `Effect.logWarning` naming the store (`source`),
 * the row's id and the reason, and adds one to {@link corruptRows}. Never fails.
 * Shared by the memory and SQLite layers.
 */
export const decodeRows = (source: string, rows: Iterable<Row>): Effect.Effect<ReadonlyArray<PeerRecord.PeerRecord>> =>
  Effect.gen(function*() {
    const records: Array<PeerRecord.PeerRecord> = []
    for (const row of rows) {
      const result = decodeRow(row)
      if (Result.isSuccess(result)) {
        records.push(result.success)
        continue
      }
      yield* Effect.logWarning(
        `peer store ${source}: skipping row ${JSON.stringify(String(row.id))}: ${result.failure}; ` +
          `the peer is forgotten until it is learned again, and the row is replaced on its next write`
      )
      yield* Metric.update(corruptRows, 1)
    }
    return records
  })

/**
 * Decodes stored bans; a row that does not decode is skipped with one warning and counted, like a
 * damaged peer row. Shared by the memory and SQLite layers.
 */
export const decodeBans = (source: string, rows: Iterable<{ readonly subject: unknown; readonly info: unknown }>): Effect.Effect<ReadonlyArray<Ban.Ban>> =>
  Effect.gen(function*() {
    const bans: Array<Ban.Ban> = []
    for (const row of rows) {
      const decoded = row.info instanceof Uint8Array ? Ban.decode(row.info) : Result.fail(new Ban.InvalidBan({ message: `info column holds ${typeName(row.info)}, expected a BLOB` }))
      if (Result.isSuccess(decoded)) {
        bans.push(decoded.success)
        continue
      }
      yield* Effect.logWarning(`peer store ${source}: skipping ban row ${JSON.stringify(String(row.subject))}: ${decoded.failure.message}`)
      yield* Metric.update(corruptRows, 1)
    }
    return bans
  })

/**
 * A peer store backed by `rows`, a map from node ID to encoded record (default: a new empty map).
 * Pass the same map to two calls to "reopen" a store, for example to check what survives a
 * restart. Tests may also write bytes into the map directly to simulate damaged rows. `put` fails
 * with `PeerStoreError` (path `"memory"`) only for a record that cannot be encoded.
 */
export const makeMemory = (rows?: Map<string, Uint8Array>, banRows?: Map<string, Uint8Array>): Effect.Effect<Service> =>
  Effect.sync(() => {
    // Created per call, not as a default parameter value, so every build of `layerMemory` starts empty.
    const store = rows ?? new Map<string, Uint8Array>()
    const bans = banRows ?? new Map<string, Uint8Array>()
    return PeerStore.of({
      load: Effect.suspend(() => decodeRows("memory", Array.from(store, ([id, info]) => ({ id, info })))).pipe(
        Effect.withSpan("PeerStore.load")
      ),
      put: Effect.fn("PeerStore.put")((peer: PeerRecord.PeerRecord) =>
        Effect.try({
          try: () => void store.set(peer.id, PeerRecord.encode(peer)),
          // Only a record that breaks its own type (say, a fractional score) fails to encode.
          catch: (e) => new PeerStoreError({ path: "memory", operation: "put", message: `cannot encode peer ${peer.id}: ${e instanceof Error ? e.message : String(e)}` })
        })
      ),
      remove: Effect.fn("PeerStore.remove")((id: NodeId.NodeId) => Effect.sync(() => void store.delete(id))),
      loadBans: Effect.suspend(() => decodeBans("memory", Array.from(bans, ([subject, info]) => ({ subject, info })))),
      putBan: Effect.fn("PeerStore.putBan")((ban: Ban.Ban) => Effect.sync(() => void bans.set(Ban.key(ban.subject), Ban.encode(ban)))),
      removeBan: Effect.fn("PeerStore.removeBan")((key: string) => Effect.sync(() => void bans.delete(key)))
    })
  })

/** A fresh, empty in-memory peer store. Its contents are lost when the layer is released. */
export const layerMemory: Layer.Layer<PeerStore> = Layer.effect(PeerStore, makeMemory())

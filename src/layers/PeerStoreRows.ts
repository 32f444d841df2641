/**
 * Reading stored rows back, shared by both peer stores (`PeerStoreSqlite`, `PeerStoreMemory`), so
 * they skip and report damaged rows the same way: one warning naming the store, the row and the
 * reason, and one count in `p2p_peer_store_corrupt_rows`.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as Result from "effect/Result"
import type * as Context from "effect/Context"
import * as Ban from "../domain/Ban.ts"
import * as PeerRecord from "../domain/PeerRecord.ts"
import * as Metrics from "./Metrics.ts"
import type { PeerStore } from "../services/PeerStore.ts"

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
 */
export const decodeRows = Effect.fn("PeerStoreRows.decodeRows")(function* (source: string, rows: Iterable<Row>): Effect.fn.Return<ReadonlyArray<PeerRecord.PeerRecord>> {
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
 * damaged peer row.
 */
export const decodeBans = Effect.fn("PeerStoreRows.decodeBans")(function* (source: string, rows: Iterable<{ readonly subject: unknown; readonly info: unknown }>): Effect.fn.Return<ReadonlyArray<Ban.Ban>> {
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


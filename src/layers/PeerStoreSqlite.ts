/**
 * The peer store in a SQLite file, through Node's built-in `node:sqlite` (no native add-on to
 * build). There is one row per peer, `peers(id TEXT PRIMARY KEY, info BLOB NOT NULL)`, and `info`
 * holds the protobuf `PeerInfo` of docs/ARCHITECTURE.md#persistence. A `meta` table records the schema version, so a
 * later release can tell an old file from a foreign one.
 *
 * Durability: the file runs in WAL mode with `synchronous = FULL`. Each `put`/`remove` is one
 * statement in its own implicit transaction, and SQLite fsyncs the WAL before that commit
 * returns. So once the effect succeeds the write survives a process crash *and* a power loss.
 * That is the `PeerStore` contract the PeerManager relies on: it never moves ahead of disk. With
 * `NORMAL`, the WAL is synced only at checkpoints, and a commit can be rolled back by a power
 * loss, which breaks that promise. FULL costs about one fsync per write (0.2 to 0.6 ms here).
 * The manager writes only when a peer's state changes, a few writes per second at most.
 *
 * `node:sqlite` is synchronous: a call blocks the event loop for its duration, and for up to
 * `busyTimeout` while another process holds the lock.
 *
 * @since 0.1.0
 */
import { existsSync, mkdirSync, renameSync, statSync } from "node:fs"
import { dirname } from "node:path"
import { DatabaseSync } from "node:sqlite"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"
import * as Ban from "../domain/Ban.ts"
import type * as NodeId from "../domain/NodeId.ts"
import * as PeerRecord from "../domain/PeerRecord.ts"
import { PeerStore, PeerStoreError } from "../services/PeerStore.ts"
import { decodeBans, decodeRows } from "./PeerStoreRows.ts"

/**
 * The layout this code writes, stored as `meta.schema_version`: 1 had `peers`; 2 adds `bans`. A
 * version-1 file is upgraded in place when opened for writing; a newer file does not open.
 */
export const SCHEMA_VERSION = 2

/** Default for `busyTimeout`: 500 ms. */
export const DEFAULT_BUSY_TIMEOUT = 500

/** Options of {@link layerSqlite}. */
export const SqliteOptions = Schema.Struct({
  /**
   * Open the file read-only (SQLite's `SQLITE_OPEN_READONLY`). `load` works. `put` and `remove`
   * fail with `PeerStoreError`, and SQLite itself enforces this, so it holds even for root, which
   * file permissions do not stop. Use it to inspect a node's store without changing it. The file
   * must already exist and hold a peer store. Default `false`.
   */
  readOnly: Schema.optionalKey(Schema.Boolean),
  /**
   * How long, in milliseconds, a statement waits for another connection's lock before it fails
   * with "locked". The wait blocks the event loop. Default {@link DEFAULT_BUSY_TIMEOUT}.
   */
  busyTimeout: Schema.optionalKey(Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))),
  /**
   * When the file is not a SQLite database or fails SQLite's `quick_check`: move it aside (renamed
   * `<path>.corrupt-<UTC time>`, with its -wal and -shm files; never deleted) and start with an
   * empty store, logging where it went. Default `false`: opening fails with reason `corrupt` and
   * leaves the file as it is.
   */
  recoverCorrupt: Schema.optionalKey(Schema.Boolean)
})

/** Options of {@link layerSqlite}; see {@link SqliteOptions} for each field and its default. */
export type SqliteOptions = typeof SqliteOptions.Type

type Operation = PeerStoreError["operation"]
type Failure = NonNullable<PeerStoreError["reason"]>

// SQLite primary result codes (https://sqlite.org/rescode.html).
const SQLITE_PERM = 3
const SQLITE_BUSY = 5
const SQLITE_LOCKED = 6
const SQLITE_READONLY = 8
const SQLITE_IOERR = 10
const SQLITE_CORRUPT = 11
const SQLITE_FULL = 13
const SQLITE_CANTOPEN = 14
const SQLITE_NOTADB = 26

const errorText = (e: unknown): string => (e instanceof Error ? e.message : String(e))

const sqliteCode = (e: unknown): number | undefined =>
  Predicate.hasProperty(e, "errcode") && typeof e.errcode === "number" ? e.errcode & 0xff : undefined

const isCorruption = (e: unknown): boolean => {
  const code = sqliteCode(e)
  return code === SQLITE_CORRUPT || code === SQLITE_NOTADB
}

/** What a failure means and what to do about it, from SQLite's result code (node:sqlite puts it in `errcode`). */
const diagnose = (e: unknown, path: string, readOnly: boolean): { readonly reason: Failure; readonly advice: string } => {
  const nodeCode = Predicate.hasProperty(e, "code") ? e.code : undefined
  switch (sqliteCode(e)) {
    case SQLITE_READONLY:
    case SQLITE_PERM:
      return {
        reason: "read_only",
        advice: readOnly
          ? "the store was opened with { readOnly: true }; open it without readOnly to write"
          : `check that ${path}, its -wal and -shm files and their directory are writable by this process`
      }
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return { reason: "locked", advice: `another connection holds the lock: make sure only one node uses ${path}, or raise busyTimeout` }
    case SQLITE_FULL:
      return { reason: "disk_full", advice: `the disk is full: free space on the volume holding ${path}` }
    case SQLITE_IOERR:
      return { reason: "io", advice: `check the disk and the file system holding ${path}` }
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return { reason: "corrupt", advice: corruptAdvice(path) }
    case SQLITE_CANTOPEN:
      return readOnly
        ? { reason: "missing", advice: `a read-only store must already exist: check that ${path} exists and is readable` }
        : { reason: "not_a_file", advice: `check that ${path} names a file, not a directory, and that its directory is writable` }
  }
  if (nodeCode === "ERR_INVALID_STATE") return { reason: "closed", advice: "the peer store is closed: its layer's scope has ended" }
  return { reason: "io", advice: `check ${path}` }
}

const corruptAdvice = (path: string) =>
  `it was left as it is; restore it from a backup, move it away (the node then starts with no known peers and learns them again), or open the store with { recoverCorrupt: true } to have ${path} moved aside and an empty store started`

/**
 * Opens the peer store in the SQLite file at `path`, creating the file, and any missing parent
 * directories, when it does not exist. The database closes when the layer's scope closes.
 * `path` may be `":memory:"` for a private in-memory database. An existing file is checked with
 * SQLite's `quick_check` first, so a damaged file is found at start, not at the first write.
 *
 * Errors (`PeerStoreError`, with a `reason`):
 * - `"open"` names `path` and says what to do. Causes: invalid options (`invalid_options`); the path
 *   is a directory or its directory cannot be created (`not_a_file`, `read_only`); the file is not
 *   a SQLite database or is damaged (`corrupt`, unless `recoverCorrupt`); it was written by another
 *   version (`schema_version`, naming both versions); or, with `readOnly`, it does not exist or
 *   holds no peer store (`missing`).
 * - `"load"`, `"put"`, `"remove"` say what failed (read-only file, disk full, locked, I/O error,
 *   store closed) and what to do. A failed write changed nothing.
 *
 * Rows that do not decode are skipped on `load`. Each one gets a warning log and adds one to the
 * `peer_store_corrupt_rows` counter. They stay in the file until the peer is written again.
 *
 * @example
 * ```ts
 * const peers = PeerStoreSqlite.layerSqlite("data/peers.db")
 * ```
 */
export const layerSqlite = (path: string, options: SqliteOptions = {}): Layer.Layer<PeerStore, PeerStoreError> =>
  Layer.effect(PeerStore, make(path, options))

/** `20261128T101500Z` for a time: a file-name-safe UTC stamp. */
const stamp = (ms: number) => new Date(ms).toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z")

/**
 * Runs SQLite's `quick_check` on an existing file: `undefined` when it is healthy, the problem in
 * words when it is not a database or is damaged. Other failures (permissions, locks) are thrown.
 */
const inspect = (path: string, readOnly: boolean, timeout: number): string | undefined => {
  let db: DatabaseSync | undefined
  try {
    db = new DatabaseSync(path, { readOnly, timeout })
    const rows = db.prepare("PRAGMA quick_check(5)").all().flatMap((r) => String(Object.values(r)[0]).split("\n")).map((l) => l.trim()).filter((l) => l !== "")
    return rows.length === 1 && rows[0] === "ok" ? undefined : `SQLite's quick_check found: ${rows.join("; ")}`
  } catch (e) {
    if (isCorruption(e)) return `SQLite: ${errorText(e)}`
    throw e
  } finally {
    if (db?.isOpen === true) db.close()
  }
}

/** Renames a damaged store and its -wal/-shm files to `<path>.corrupt-<stamp>[-wal|-shm]`; returns the new path. */
const moveAside = (path: string, now: number): string => {
  const aside = `${path}.corrupt-${stamp(now)}`
  renameSync(path, aside)
  for (const suffix of ["-wal", "-shm", "-journal"]) if (existsSync(`${path}${suffix}`)) renameSync(`${path}${suffix}`, `${aside}${suffix}`)
  return aside
}

const make = Effect.fn("PeerStoreSqlite.make")(function* (path: string, rawOptions: SqliteOptions) {
  const openError = (reason: Failure, message: string) => new PeerStoreError({ path, operation: "open", reason, message })
  const options = yield* Schema.decodeUnknownEffect(SqliteOptions)(rawOptions).pipe(
    Effect.mapError((e) => openError("invalid_options", `invalid peer store options for ${path}: ${e.message}`))
  )
  const readOnly = options.readOnly ?? false
  const timeout = options.busyTimeout ?? DEFAULT_BUSY_TIMEOUT
  const failure = (operation: Operation, what: string) => (e: unknown) => {
    const { reason, advice } = diagnose(e, path, readOnly)
    return new PeerStoreError({ path, operation, reason, message: `${what}: ${errorText(e)}; ${advice}` })
  }
  const attempt = <A>(operation: Operation, what: string, f: () => A) => Effect.try({ try: f, catch: failure(operation, what) })
  const openFailure = `cannot open the peer store ${path}`

  if (path !== ":memory:") {
    const kind = yield* Effect.try({ try: () => (existsSync(path) ? (statSync(path).isFile() ? "file" : "other") : "none"), catch: failure("open", openFailure) })
    if (kind === "other") return yield* openError("not_a_file", `${openFailure}: it is a directory or a special file, not a database; remove it or use another path`)
    if (kind === "none" && !readOnly) {
      const dir = dirname(path)
      yield* Effect.try({
        try: () => mkdirSync(dir, { recursive: true }),
        catch: (e) => openError("not_a_file", `cannot create the directory ${dir} for the peer store ${path}: ${errorText(e)}; check the permissions of its parent directories`)
      })
    }
    if (kind === "file") {
      const problem = yield* attempt("open", openFailure, () => inspect(path, readOnly, timeout))
      if (problem !== undefined) {
        if (!(options.recoverCorrupt ?? false) || readOnly) {
          const detail = `the peer store ${path} is not a SQLite database or is damaged (${problem})`
          return yield* new PeerStoreError({ path, operation: "open", reason: "corrupt", detail, message: `${detail}; ${corruptAdvice(path)}` })
        }
        const now = yield* Clock.currentTimeMillis
        const aside = yield* attempt("open", `${openFailure}: cannot move the damaged file aside`, () => moveAside(path, now))
        yield* Effect.logWarning(`peer store ${path} was damaged (${problem}); moved it to ${aside} and started with no known peers`)
      }
    }
  }

  const db = yield* Effect.acquireRelease(
    attempt("open", openFailure, () => new DatabaseSync(path, { readOnly, timeout })),
    (db) => Effect.sync(() => {
      if (db.isOpen) db.close()
    })
  )

  // Reading the schema is also the first real access to the file; a file that is not a
  // SQLite database fails here with SQLITE_NOTADB.
  const tables = yield* attempt("open", openFailure, () =>
    new Set(db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('meta', 'peers', 'bans')").all().map((r) => r["name"])))

  if (!readOnly) {
    // A no-op (and no write) when the file is already in WAL mode, so a store whose file has
    // become read-only still opens, and `load` works.
    const mode = yield* attempt("open", openFailure, () => db.prepare("PRAGMA journal_mode = WAL").get()?.["journal_mode"])
    if (mode !== "wal" && path !== ":memory:") {
      yield* Effect.logWarning(`peer store ${path}: SQLite could not enable WAL mode (journal mode is ${String(mode)}); writes stay durable but readers block writers`)
    }
  }
  // Per connection, not stored in the file: see the module comment for why FULL.
  yield* attempt("open", openFailure, () => db.exec("PRAGMA synchronous = FULL"))

  if (!tables.has("meta") || !tables.has("peers")) {
    if (readOnly) {
      return yield* openError("missing", `${openFailure}: it holds no peer store tables; open it once without readOnly to create them`)
    }
    yield* attempt("open", `${openFailure}: cannot create its tables`, () => {
      db.exec("BEGIN IMMEDIATE")
      try {
        db.exec(`
          CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
          CREATE TABLE IF NOT EXISTS peers(id TEXT PRIMARY KEY, info BLOB NOT NULL);
          CREATE TABLE IF NOT EXISTS bans(subject TEXT PRIMARY KEY, info BLOB NOT NULL);
          INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', '${SCHEMA_VERSION}');
        `)
        db.exec("COMMIT")
      } catch (e) {
        if (db.isTransaction) db.exec("ROLLBACK")
        throw e
      }
    })
  }
  let version = yield* attempt("open", openFailure, () => db.prepare("SELECT value FROM meta WHERE key = 'schema_version'").get()?.["value"])
  // Version 1 lacked the bans table: add it, in one transaction with the new version.
  if (version === "1" && !readOnly) {
    yield* attempt("open", `${openFailure}: cannot upgrade it from schema version 1`, () => {
      db.exec("BEGIN IMMEDIATE")
      try {
        db.exec(`
          CREATE TABLE IF NOT EXISTS bans(subject TEXT PRIMARY KEY, info BLOB NOT NULL);
          UPDATE meta SET value = '${SCHEMA_VERSION}' WHERE key = 'schema_version';
        `)
        db.exec("COMMIT")
      } catch (e) {
        if (db.isTransaction) db.exec("ROLLBACK")
        throw e
      }
    })
    version = String(SCHEMA_VERSION)
  }
  const hasBans = version === "1" ? tables.has("bans") : true
  if (version !== String(SCHEMA_VERSION) && !(readOnly && version === "1")) {
    const n = Number(version)
    return yield* openError(
      "schema_version",
      version === undefined
        ? `${openFailure}: its meta table has no schema_version, so it is not a peer store; use another path`
        : Number.isInteger(n) && n > SCHEMA_VERSION
        ? `${openFailure}: it was written by a newer effect-p2p (peer store schema version ${n}; this version reads version ${SCHEMA_VERSION}); upgrade effect-p2p, or move the file away to start with no known peers`
        : `${openFailure}: it has peer store schema version ${String(version)}, and this version of effect-p2p reads version ${SCHEMA_VERSION}; move the file away to start with no known peers, or use another path`
    )
  }

  const selectAll = yield* attempt("open", openFailure, () => db.prepare("SELECT id, info FROM peers"))
  const upsert = yield* attempt("open", openFailure, () => db.prepare("INSERT INTO peers(id, info) VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET info = excluded.info"))
  const deleteOne = yield* attempt("open", openFailure, () => db.prepare("DELETE FROM peers WHERE id = ?"))
  // A version-1 file opened read-only has no bans table: it holds no bans.
  const selectBans = hasBans ? yield* attempt("open", openFailure, () => db.prepare("SELECT subject, info FROM bans")) : undefined
  const upsertBan = hasBans ? yield* attempt("open", openFailure, () => db.prepare("INSERT INTO bans(subject, info) VALUES (?, ?) ON CONFLICT(subject) DO UPDATE SET info = excluded.info")) : undefined
  const deleteBan = hasBans ? yield* attempt("open", openFailure, () => db.prepare("DELETE FROM bans WHERE subject = ?")) : undefined
  const noBansTable = () => {
    throw Object.assign(new Error("this store (schema version 1, opened read-only) has no bans table"), { errcode: SQLITE_READONLY })
  }

  return PeerStore.of({
    load: attempt("load", `cannot read the peer store ${path}`, () => selectAll.all().map((r) => ({ id: r["id"], info: r["info"] }))).pipe(
      Effect.flatMap((rows) => decodeRows(path, rows)),
      Effect.withSpan("PeerStore.load")
    ),
    put: Effect.fn("PeerStore.put")((peer: PeerRecord.PeerRecord) =>
      attempt("put", `cannot store peer ${peer.id} in ${path}`, () => {
        upsert.run(peer.id, PeerRecord.encode(peer))
      })
    ),
    remove: Effect.fn("PeerStore.remove")((id: NodeId.NodeId) =>
      attempt("remove", `cannot remove peer ${id} from ${path}`, () => {
        deleteOne.run(id)
      })
    ),
    loadBans: attempt("load", `cannot read the bans in ${path}`, () => selectBans?.all().map((r) => ({ subject: r["subject"], info: r["info"] })) ?? []).pipe(
      Effect.flatMap((rows) => decodeBans(path, rows))
    ),
    putBan: Effect.fn("PeerStore.putBan")((ban: Ban.Ban) =>
      attempt("put", `cannot store the ban of ${Ban.formatSubject(ban.subject)} in ${path}`, () => {
        if (upsertBan === undefined) return noBansTable()
        upsertBan.run(Ban.key(ban.subject), Ban.encode(ban))
      })
    ),
    removeBan: Effect.fn("PeerStore.removeBan")((key: string) =>
      attempt("remove", `cannot remove the ban ${key} from ${path}`, () => {
        if (deleteBan === undefined) return noBansTable()
        deleteBan.run(key)
      })
    )
  })
})

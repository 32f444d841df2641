import { afterAll, assert, describe, it } from "@effect/vitest"
import { randomBytes, randomFillSync } from "node:crypto"
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { DatabaseSync } from "node:sqlite"
import { Context, Effect, Layer, Logger, Metric } from "effect"
import * as fc from "fast-check"
import * as NodeAddress from "../../src/domain/NodeAddress.ts"
import * as NodeId from "../../src/domain/NodeId.ts"
import * as PeerRecord from "../../src/domain/PeerRecord.ts"
import * as PeerStoreMemory from "../../src/layers/PeerStoreMemory.ts"
import * as PeerStoreSqlite from "../../src/layers/PeerStoreSqlite.ts"
import { PeerStore, type PeerStoreError } from "../../src/services/PeerStore.ts"

const tempDirs: Array<string> = []
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), "p2p-peerstore-"))
  tempDirs.push(dir)
  return dir
}
afterAll(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true })
})
const isRoot = process.getuid?.() === 0

const idA = NodeId.unsafeDecode("a".repeat(40))
const idB = NodeId.unsafeDecode("b".repeat(40))
const idC = NodeId.unsafeDecode("c".repeat(40))

/** A record with every stored field set to something other than its default. */
const full = PeerRecord.empty(idA, {
  addresses: [
    { ...PeerRecord.addressInfo(NodeAddress.unsafeParse(`mconn://${idA}@10.0.0.1:26656`)), lastDialSuccess: 1_700_000_000_123, dialFailures: 0 },
    { ...PeerRecord.addressInfo(NodeAddress.unsafeParse(`tcp://${idA}@[2001:db8::1]:26656`)), lastDialFailure: 1_700_000_005_000, dialFailures: 3 },
    PeerRecord.addressInfo(NodeAddress.unsafeParse(`memory:${idA}`))
  ],
  lastConnected: 1_700_000_000_500,
  inactive: true,
  persistent: true,
  mutableScore: -42
})
const bare = PeerRecord.empty(idB)
const best = PeerRecord.empty(idC, {
  addresses: [PeerRecord.addressInfo(NodeAddress.unsafeParse(`mconn://${idC}@seed.example.com:26656`))],
  mutableScore: 32766
})

/** A record as plain data (addresses as text), for readable diffs. */
const plain = (r: PeerRecord.PeerRecord) => ({ ...r, addresses: r.addresses.map((a) => ({ ...a, address: NodeAddress.format(a.address) })) })
const sorted = (rs: ReadonlyArray<PeerRecord.PeerRecord>) => [...rs].sort((x, y) => x.id.localeCompare(y.id)).map(plain)

/** A store that can be opened, closed and opened again on the same data. */
interface Backend {
  readonly open: () => Layer.Layer<PeerStore, PeerStoreError>
  /** Overwrites the stored bytes of one row behind the store's back. */
  readonly corrupt: (id: string, info: Uint8Array) => void
}

const sqliteBackend = (): Backend & { readonly path: string } => {
  // A subdirectory that does not exist yet: opening must create it.
  const path = join(tempDir(), "data", "peers.db")
  return {
    path,
    open: () => PeerStoreSqlite.layerSqlite(path),
    corrupt: (id, info) => {
      const db = new DatabaseSync(path)
      db.prepare("INSERT INTO peers(id, info) VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET info = excluded.info").run(id, info)
      db.close()
    }
  }
}

const memoryBackend = (): Backend => {
  const rows = new Map<string, Uint8Array>()
  return { open: () => Layer.effect(PeerStore, PeerStoreMemory.makeMemory(rows)), corrupt: (id, info) => void rows.set(id, info) }
}

/** Builds the layer in its own scope, runs `f` with the store, and closes the scope. */
const withStore = <A, E>(layer: Layer.Layer<PeerStore, PeerStoreError>, f: (store: Context.Service.Shape<typeof PeerStore>) => Effect.Effect<A, E>) =>
  Effect.scoped(Effect.flatMap(Layer.build(layer), (context) => f(Context.get(context, PeerStore))))

const putAll = (backend: Backend, records: ReadonlyArray<PeerRecord.PeerRecord>) =>
  withStore(backend.open(), (store) => Effect.forEach(records, store.put, { discard: true }))

const loadAll = (backend: Backend) => withStore(backend.open(), (store) => store.load)

const corruptCount = Effect.map(Metric.value(PeerStoreMemory.corruptRows), (s) => s.count)

/** Runs `effect` with a logger that records every message, and returns them with its result. */
const capturingLogs = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.gen(function*() {
    const lines: Array<string> = []
    const logger = Logger.make(({ logLevel, message }) => {
      lines.push(`${logLevel}: ${Array.isArray(message) ? message.join(" ") : String(message)}`)
    })
    const result = yield* effect.pipe(Effect.provideService(Logger.CurrentLoggers, new Set([logger])))
    return { result, lines }
  })

/** Random records: valid distinct IDs, a few distinct valid addresses, random stored fields. */
const arbTime = fc.option(fc.integer({ min: 0, max: 4_102_444_800_000 }), { nil: undefined })
const arbId = fc.stringMatching(/^[0-9a-f]{40}$/).map((s) => NodeId.unsafeDecode(s))
const arbAddressText = (id: string) =>
  fc.oneof(
    fc.tuple(fc.constantFrom("mconn", "tcp"), fc.ipV4(), fc.integer({ min: 1, max: 65535 })).map(([p, ip, port]) => `${p}://${id}@${ip}:${port}`),
    fc.tuple(fc.constantFrom("seed.example.com", "localhost"), fc.integer({ min: 1, max: 65535 })).map(([host, port]) => `mconn://${id}@${host}:${port}`),
    fc.constant(`memory:${id}`)
  )
const arbRecord = (id: NodeId.NodeId) =>
  fc.record({
    addresses: fc.uniqueArray(
      fc.record({ text: arbAddressText(id), lastDialSuccess: arbTime, lastDialFailure: arbTime, dialFailures: fc.integer({ min: 0, max: 2 ** 32 - 1 }) }),
      { maxLength: 4, selector: (a) => a.text }
    ),
    lastConnected: arbTime,
    inactive: fc.boolean(),
    persistent: fc.boolean(),
    mutableScore: fc.integer({ min: -32768, max: 32766 })
  }).map(({ addresses, ...fields }) =>
    PeerRecord.empty(id, {
      ...fields,
      addresses: addresses.map(({ text, ...stats }) => ({ ...stats, address: NodeAddress.unsafeParse(text) }))
    })
  )
const arbRecords = fc.uniqueArray(arbId, { maxLength: 5 }).chain((ids) => fc.tuple(...ids.map(arbRecord)))

const roundTripSuite = (name: string, backend: () => Backend) =>
  describe(`${name}: round trip`, () => {
    it.effect("every stored field survives closing and reopening the store", () =>
      Effect.gen(function*() {
        const b = backend()
        yield* putAll(b, [full, bare, best])
        assert.deepStrictEqual(sorted(yield* loadAll(b)), sorted([full, bare, best]))
      }))

    it.effect("fixedScore and lastDisconnected are not stored", () =>
      Effect.gen(function*() {
        const b = backend()
        yield* putAll(b, [{ ...bare, fixedScore: 7, lastDisconnected: 1_700_000_000_000 }])
        assert.deepStrictEqual(sorted(yield* loadAll(b)), sorted([bare]))
      }))

    it.effect("put replaces the peer's whole record", () =>
      Effect.gen(function*() {
        const b = backend()
        yield* putAll(b, [full])
        const changed = { ...full, addresses: full.addresses.slice(1), inactive: false, mutableScore: 3 }
        yield* putAll(b, [changed])
        assert.deepStrictEqual(sorted(yield* loadAll(b)), sorted([changed]))
      }))

    it.effect("remove deletes the peer for good; removing an unknown peer does nothing", () =>
      Effect.gen(function*() {
        const b = backend()
        yield* putAll(b, [full, bare])
        yield* withStore(b.open(), (store) => Effect.andThen(store.remove(idA), store.remove(idC)))
        assert.deepStrictEqual(sorted(yield* loadAll(b)), sorted([bare]))
      }))

    it.effect("damaged rows are skipped with a warning naming the row and counted; the others load", () =>
      Effect.gen(function*() {
        const b = backend()
        yield* putAll(b, [full, bare, best])
        b.corrupt(idA, new Uint8Array([0xff, 0xff, 0xff, 0x01]))
        // Valid bytes filed under the wrong ID.
        b.corrupt(idC, PeerRecord.encode(bare))
        const before = yield* corruptCount
        const { result, lines } = yield* capturingLogs(loadAll(b))
        assert.deepStrictEqual(sorted(result), sorted([bare]))
        assert.strictEqual((yield* corruptCount) - before, 2)
        const warnings = lines.filter((l) => l.startsWith("Warn"))
        assert.strictEqual(warnings.length, 2, lines.join("\n"))
        assert.isTrue(warnings.some((l) => l.includes(idA) && l.includes("not a PeerInfo message")), warnings.join("\n"))
        assert.isTrue(warnings.some((l) => l.includes(idC) && l.includes(`for peer ${idB}`)), warnings.join("\n"))
      }))

    it("random records round trip exactly through put, reopen and load", async () => {
      await fc.assert(
        fc.asyncProperty(arbRecords, async (records) => {
          const b = backend()
          const loaded = await Effect.runPromise(Effect.andThen(putAll(b, records), loadAll(b)))
          assert.deepStrictEqual(sorted(loaded), sorted(records))
        }),
        { numRuns: 40 }
      )
    })
  })

roundTripSuite("layerSqlite", sqliteBackend)
roundTripSuite("makeMemory", memoryBackend)

describe("layerMemory", () => {
  it.effect("starts empty on every build", () =>
    Effect.gen(function*() {
      yield* withStore(PeerStoreMemory.layerMemory, (store) => store.put(full))
      assert.deepStrictEqual(yield* withStore(PeerStoreMemory.layerMemory, (store) => store.load), [])
    }))
})

describe("layerSqlite", () => {
  it.effect("creates the directory and a WAL database with the peers and meta tables", () =>
    Effect.gen(function*() {
      const b = sqliteBackend()
      yield* putAll(b, [bare])
      const db = new DatabaseSync(b.path, { readOnly: true })
      assert.strictEqual(db.prepare("PRAGMA journal_mode").get()?.["journal_mode"], "wal")
      assert.strictEqual(db.prepare("SELECT value FROM meta WHERE key = 'schema_version'").get()?.["value"], String(PeerStoreSqlite.SCHEMA_VERSION))
      assert.deepStrictEqual(db.prepare("SELECT id FROM peers").all().map((r) => r["id"]), [idB])
      db.close()
    }))

  it.effect("closes the database when the layer's scope closes", () =>
    Effect.gen(function*() {
      const b = sqliteBackend()
      const store = yield* withStore(b.open(), (store) => Effect.as(store.put(bare), store))
      // SQLite checkpoints and deletes the WAL when the last connection closes.
      assert.isFalse(existsSync(`${b.path}-wal`))
      const err = yield* Effect.flip(store.put(full))
      assert.strictEqual(err.operation, "put")
      assert.include(err.message, "closed")
    }))

  it.effect("readOnly: put and remove fail with PeerStoreError, load works and the data is intact", () =>
    Effect.gen(function*() {
      const b = sqliteBackend()
      yield* putAll(b, [full, bare])
      const readOnly = PeerStoreSqlite.layerSqlite(b.path, { readOnly: true })
      yield* withStore(readOnly, (store) =>
        Effect.gen(function*() {
          const put = yield* Effect.flip(store.put(best))
          assert.strictEqual(put._tag, "PeerStoreError")
          assert.strictEqual(put.operation, "put")
          assert.strictEqual(put.path, b.path)
          assert.include(put.message, idC)
          assert.include(put.message, "readOnly")
          const remove = yield* Effect.flip(store.remove(idA))
          assert.strictEqual(remove.operation, "remove")
          assert.deepStrictEqual(sorted(yield* store.load), sorted([full, bare]))
        }))
      assert.deepStrictEqual(sorted(yield* loadAll(b)), sorted([full, bare]))
    }))

  // Root ignores file permissions, so this runs only as an ordinary user; the readOnly test above
  // covers the same path for root.
  it.effect.skipIf(isRoot)("a file without write permission: put fails saying so, load works", () =>
    Effect.gen(function*() {
      const b = sqliteBackend()
      yield* putAll(b, [full])
      chmodSync(b.path, 0o444)
      yield* withStore(b.open(), (store) =>
        Effect.gen(function*() {
          const put = yield* Effect.flip(store.put(best))
          assert.strictEqual(put.operation, "put")
          assert.include(put.message, "writable")
          assert.deepStrictEqual(sorted(yield* store.load), sorted([full]))
        }))
    }))

  it.effect("a write while another connection holds the lock fails with PeerStoreError saying so", () =>
    Effect.gen(function*() {
      const b = sqliteBackend()
      yield* putAll(b, [bare])
      const other = new DatabaseSync(b.path)
      other.exec("BEGIN IMMEDIATE")
      const err = yield* withStore(PeerStoreSqlite.layerSqlite(b.path, { busyTimeout: 0 }), (store) => Effect.flip(store.put(full)))
      other.exec("ROLLBACK")
      other.close()
      assert.strictEqual(err.operation, "put")
      assert.include(err.message, "lock")
      assert.deepStrictEqual(sorted(yield* loadAll(b)), sorted([bare]))
    }))

  it.effect("a file that is not a SQLite database fails to open, naming the path", () =>
    Effect.gen(function*() {
      const path = join(tempDir(), "peers.db")
      writeFileSync(path, "this is not a database, just some text that is long enough to be read as a header ".repeat(20))
      const err = yield* Effect.flip(withStore(PeerStoreSqlite.layerSqlite(path), (store) => store.load))
      assert.strictEqual(err._tag, "PeerStoreError")
      assert.strictEqual(err.operation, "open")
      assert.strictEqual(err.path, path)
      assert.include(err.message, path)
      assert.include(err.message, "not a database")
    }))

  it.effect("a store of another schema version fails to open", () =>
    Effect.gen(function*() {
      const b = sqliteBackend()
      yield* putAll(b, [bare])
      const db = new DatabaseSync(b.path)
      db.exec("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
      db.close()
      const err = yield* Effect.flip(loadAll(b))
      assert.strictEqual(err.operation, "open")
      assert.include(err.message, "schema version 99")
    }))

  it.effect("readOnly on a missing file fails to open and creates nothing", () =>
    Effect.gen(function*() {
      const path = join(tempDir(), "missing", "peers.db")
      const err = yield* Effect.flip(withStore(PeerStoreSqlite.layerSqlite(path, { readOnly: true }), (store) => store.load))
      assert.strictEqual(err.operation, "open")
      assert.include(err.message, path)
      assert.isFalse(existsSync(path))
    }))

  it.effect("invalid options fail to open, naming the option", () =>
    Effect.gen(function*() {
      const path = join(tempDir(), "peers.db")
      const err = yield* Effect.flip(withStore(PeerStoreSqlite.layerSqlite(path, { busyTimeout: -1 }), (store) => store.load))
      assert.strictEqual(err.operation, "open")
      assert.include(err.message, "busyTimeout")
    }))
})

describe("PeerStoreSqlite: a damaged or foreign file", () => {
  /** A store file holding `records`, closed, with its bytes; many rows so the file spans pages. */
  const storeFile = Effect.gen(function*() {
    const b = sqliteBackend()
    const many = Array.from({ length: 200 }, (_, i) => PeerRecord.empty(NodeId.unsafeDecode(i.toString(16).padStart(40, "0")), { mutableScore: i }))
    yield* putAll(b, many)
    // Fold the WAL into the main file, so the file alone is the store.
    const db = new DatabaseSync(b.path)
    db.exec("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return b.path
  })
  const openErr = (path: string, options: PeerStoreSqlite.SqliteOptions = {}) =>
    Effect.flip(withStore(PeerStoreSqlite.layerSqlite(path, options), (store) => store.load))
  const damaged: ReadonlyArray<readonly [string, (bytes: Buffer) => Buffer]> = [
    ["truncated to half", (bytes) => bytes.subarray(0, bytes.length >> 1)],
    ["a page of random bytes", (bytes) => {
      const out = Buffer.from(bytes)
      randomFillSync(out, 4096 * 2, 4096)
      return out
    }],
    ["entirely random", (bytes) => randomBytes(bytes.length)]
  ]

  for (const [name, damage] of damaged) {
    it.effect(`${name}: opening fails with reason corrupt, naming the path, and leaves the file as it was`, () =>
      Effect.gen(function*() {
        const path = yield* storeFile
        const bad = damage(readFileSync(path))
        writeFileSync(path, bad)
        const err = yield* openErr(path)
        assert.strictEqual(err.reason, "corrupt")
        assert.strictEqual(err.operation, "open")
        assert.include(err.message, path)
        assert.include(err.message, "recoverCorrupt")
        assert.isTrue(readFileSync(path).equals(bad))
      }))

    it.effect(`${name}: with recoverCorrupt the file is moved aside, kept, and an empty store starts`, () =>
      Effect.gen(function*() {
        const path = yield* storeFile
        const bad = damage(readFileSync(path))
        writeFileSync(path, bad)
        const loaded = yield* withStore(PeerStoreSqlite.layerSqlite(path, { recoverCorrupt: true }), (store) => store.load)
        assert.deepStrictEqual(loaded, [])
        const aside = readdirSync(dirname(path)).filter((f) => /^peers\.db\.corrupt-\d{8}T\d{6}Z$/.test(f))
        assert.strictEqual(aside.length, 1)
        assert.isTrue(readFileSync(join(dirname(path), aside[0]!)).equals(bad))
      }))
  }

  it.effect("a directory where the file should be: reason not_a_file, nothing touched", () =>
    Effect.gen(function*() {
      const path = join(tempDir(), "peers.db")
      mkdirSync(path)
      const err = yield* openErr(path, { recoverCorrupt: true })
      assert.strictEqual(err.reason, "not_a_file")
      assert.include(err.message, "directory")
      assert.isTrue(statSync(path).isDirectory())
    }))

  it.effect("a store from a newer version is refused with both versions named, and kept", () =>
    Effect.gen(function*() {
      const path = yield* storeFile
      const db = new DatabaseSync(path)
      db.exec("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
      db.close()
      const before = readFileSync(path)
      const err = yield* openErr(path, { recoverCorrupt: true })
      assert.strictEqual(err.reason, "schema_version")
      assert.include(err.message, "newer effect-p2p (peer store schema version 3; this version reads version 2)")
      assert.isTrue(readFileSync(path).equals(before))
    }))

  it.effect("a healthy store is not touched by recoverCorrupt", () =>
    Effect.gen(function*() {
      const path = yield* storeFile
      const loaded = yield* withStore(PeerStoreSqlite.layerSqlite(path, { recoverCorrupt: true }), (store) => store.load)
      assert.strictEqual(loaded.length, 200)
      assert.deepStrictEqual(readdirSync(dirname(path)).filter((f) => f.includes("corrupt")), [])
    }))
})

/**
 * PeerManager over a real SQLite file: what survives closing and reopening the manager and its
 * store, damaged rows, and a read-only store.
 */
import { afterAll, assert, describe, it } from "@effect/vitest"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { DatabaseSync } from "node:sqlite"
import { Context, Effect, Layer, type Scope } from "effect"
import { TestClock } from "effect/testing"
import * as NodeAddress from "../../src/domain/NodeAddress.ts"
import * as PeerManagerLayer from "../../src/layers/PeerManager.ts"
import * as PeerStoreSqlite from "../../src/layers/PeerStoreSqlite.ts"
import { zero, type OptionsInput } from "../../src/services/PeerManager.ts"
import { PeerStore, type PeerStoreError } from "../../src/services/PeerStore.ts"
import { a, b, c, d, mem, self, tcp, type Manager } from "./PeerManager.fixtures.ts"

const dirs: Array<string> = []
const dbPath = () => {
  const dir = mkdtempSync(join(tmpdir(), "p2p-peermanager-"))
  dirs.push(dir)
  return join(dir, "peers.db")
}
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
})

const T0 = 1_700_000_000_000

/** Opens the store at `path` and a manager over it, runs `f`, then closes both (manager first). */
const session = <A, E>(
  path: string,
  options: OptionsInput,
  f: (pm: Manager, store: Context.Service.Shape<typeof PeerStore>) => Effect.Effect<A, E, Scope.Scope>,
  storeOptions: PeerStoreSqlite.SqliteOptions = {}
) =>
  Effect.scoped(Effect.gen(function* () {
    const context = yield* Layer.build(PeerStoreSqlite.layerSqlite(path, storeOptions))
    const pm = yield* PeerManagerLayer.make(self, { ...zero, ...options }).pipe(Effect.provideContext(context))
    return yield* f(pm, Context.get(context, PeerStore))
  }))

const format = (addresses: ReadonlyArray<NodeAddress.NodeAddress>) => addresses.map(NodeAddress.format)

const expectStoreError = <A, E extends { readonly _tag: string }>(effect: Effect.Effect<A, E>, operation: PeerStoreError["operation"]) =>
  Effect.map(Effect.flip(effect), (err) => {
    assert.strictEqual(err._tag, "PeerStoreError")
    assert.strictEqual((err as unknown as PeerStoreError).operation, operation)
  })

describe("PeerManager restart on SQLite", () => {
  it.effect("addresses, dial statistics, the inactive flag and mutable scores survive a restart", () =>
    Effect.gen(function* () {
      const path = dbPath()
      yield* TestClock.setTime(T0)
      const options = { minRetryTime: 1000 }
      yield* session(path, options, (pm) =>
        Effect.gen(function* () {
          for (const address of [mem(a), tcp(a), mem(b), mem(c), mem(d)]) assert.isTrue(yield* pm.add(address))
          yield* pm.report(a, "bad")
          yield* pm.report(a, "bad")
          yield* pm.report(c, "good")
          yield* pm.inactivate(d)
          assert.deepStrictEqual(yield* pm.tryDialNext, mem(c))
          yield* pm.dialed(mem(c))
          assert.deepStrictEqual(yield* pm.tryDialNext, mem(b))
          yield* pm.dialFailed(mem(b))
        }))
      yield* session(path, options, (pm, store) =>
        Effect.gen(function* () {
          assert.deepStrictEqual(format(yield* pm.addresses(a)), format([mem(a), tcp(a)]))
          assert.deepStrictEqual(
            (yield* pm.peers).map((p) => [p.nodeId, p.score, p.state, p.inactive]),
            [[c, 1, "candidate", false], [d, 0, "candidate", true], [b, -1, "candidate", false], [a, -2, "candidate", false]]
          )
          const records = new Map((yield* store.load).map((r) => [r.id, r]))
          assert.strictEqual(records.get(c)!.lastConnected, T0)
          assert.strictEqual(records.get(c)!.addresses[0]!.lastDialSuccess, T0)
          assert.deepStrictEqual(
            [records.get(b)!.addresses[0]!.dialFailures, records.get(b)!.addresses[0]!.lastDialFailure],
            [1, T0]
          )
          assert.strictEqual(records.get(a)!.mutableScore, -2)
          // b's backoff continues from its stored failure (no jitter after a restart); d stays inactive.
          assert.deepStrictEqual(yield* pm.tryDialNext, mem(c))
          assert.deepStrictEqual(yield* pm.tryDialNext, mem(a))
          assert.isUndefined(yield* pm.tryDialNext)
          yield* TestClock.adjust(999)
          assert.isUndefined(yield* pm.tryDialNext)
          yield* TestClock.adjust(1)
          assert.deepStrictEqual(yield* pm.tryDialNext, mem(b))
          assert.isUndefined(yield* pm.tryDialNext)
        }))
    }))

  it.effect("25 on SQLite: persistent peers and fixed scores come from the options on reopen", () =>
    Effect.gen(function* () {
      const path = dbPath()
      const scores = (pm: Manager) => Effect.map(pm.scores, (m) => Object.fromEntries([...m].map(([id, s]) => [id.slice(0, 1), s])))
      yield* session(path, { persistentPeers: [a], peerScores: { [b]: 1 } }, (pm) =>
        Effect.gen(function* () {
          for (const id of [a, b, c]) {
            yield* pm.add(mem(id))
            yield* pm.add(tcp(id))
          }
          assert.deepStrictEqual(yield* scores(pm), { a: 32767, b: 1, c: 0 })
        }))
      yield* session(path, { persistentPeers: [b], peerScores: { [c]: 1 } }, (pm) =>
        Effect.gen(function* () {
          for (const id of [a, b, c]) assert.deepStrictEqual(format(yield* pm.addresses(id)), format([mem(id), tcp(id)]))
          assert.deepStrictEqual(yield* scores(pm), { a: 0, b: 32767, c: 1 })
        }))
      // and once more with no persistent peers at all: nobody keeps the flag
      yield* session(path, {}, (pm) =>
        Effect.map(pm.peers, (peers) => assert.isTrue(peers.every((p) => !p.persistent && p.score === 0))))
    }))

  it.effect("a damaged row is skipped and the other peers load; the peer can be learned again", () =>
    Effect.gen(function* () {
      const path = dbPath()
      yield* session(path, {}, (pm) => Effect.forEach([a, b, c], (id) => pm.add(mem(id))))
      const db = new DatabaseSync(path)
      db.prepare("UPDATE peers SET info = ? WHERE id = ?").run(Uint8Array.of(0xff, 0xff, 0xff, 0x07), b)
      db.close()
      yield* session(path, {}, (pm) =>
        Effect.gen(function* () {
          assert.deepStrictEqual((yield* pm.peers).map((p) => p.nodeId), [a, c])
          assert.isTrue(yield* pm.add(tcp(b)))
        }))
      yield* session(path, {}, (pm) =>
        Effect.gen(function* () {
          assert.deepStrictEqual((yield* pm.peers).map((p) => p.nodeId), [a, b, c])
          assert.deepStrictEqual(format(yield* pm.addresses(b)), format([tcp(b)]))
        }))
    }))

  it.effect("a read-only store: writes fail with PeerStoreError and the in-memory view does not change", () =>
    Effect.gen(function* () {
      const path = dbPath()
      yield* session(path, {}, (pm) => Effect.andThen(pm.add(mem(a)), pm.add(mem(b))))
      yield* session(path, { minRetryTime: 1000 }, (pm) =>
        Effect.gen(function* () {
          assert.deepStrictEqual((yield* pm.peers).map((p) => p.nodeId), [a, b])
          yield* expectStoreError(pm.add(tcp(a)), "put")
          yield* expectStoreError(pm.add(mem(c)), "put")
          assert.deepStrictEqual(format(yield* pm.addresses(a)), format([mem(a)]))
          assert.deepStrictEqual(yield* pm.addresses(c), [])
          assert.deepStrictEqual((yield* pm.peers).map((p) => p.nodeId), [a, b])
          yield* expectStoreError(pm.report(a, "good"), "put")
          yield* expectStoreError(pm.inactivate(a), "put")
          const [pa] = yield* pm.peers
          assert.deepStrictEqual([pa!.score, pa!.inactive], [0, false])
          // A failed dial that cannot be recorded still frees the dialing slot.
          assert.deepStrictEqual(yield* pm.tryDialNext, mem(a))
          yield* expectStoreError(pm.dialFailed(mem(a)), "put")
          assert.strictEqual((yield* pm.peers)[0]!.state, "candidate")
          assert.strictEqual((yield* pm.scores).get(a), 0)
        }), { readOnly: true })
    }))

  it.effect("a read-only store cannot back a manager whose options make loading rewrite rows (PeerStoreError)", () =>
    Effect.gen(function* () {
      const path = dbPath()
      yield* session(path, {}, (pm) => Effect.andThen(pm.add(mem(a)), pm.add(mem(b))))
      // Same options: nothing to rewrite, so it opens.
      yield* session(path, {}, (pm) => Effect.map(pm.peers, (ps) => assert.strictEqual(ps.length, 2)), { readOnly: true })
      // A new persistent flag must be written; our own ID must be removed.
      yield* expectStoreError(session(path, { persistentPeers: [a] }, () => Effect.void, { readOnly: true }), "put")
      const err = yield* Effect.flip(Effect.scoped(Effect.gen(function* () {
        const context = yield* Layer.build(PeerStoreSqlite.layerSqlite(path, { readOnly: true }))
        return yield* PeerManagerLayer.make(a, zero).pipe(Effect.provideContext(context))
      })))
      assert.strictEqual(err._tag, "PeerStoreError")
      assert.strictEqual(err._tag === "PeerStoreError" && err.operation, "remove")
    }))

  it.effect("a read-only store: a connection whose record cannot be written is refused and holds no slot", () =>
    Effect.gen(function* () {
      const path = dbPath()
      yield* session(path, {}, (pm) => Effect.andThen(pm.add(mem(a)), pm.add(mem(b))))
      yield* session(path, { maxConnected: 1 }, (pm) =>
        Effect.gen(function* () {
          assert.deepStrictEqual(yield* pm.tryDialNext, mem(a))
          yield* expectStoreError(pm.dialed(mem(a)), "put")
          yield* expectStoreError(pm.accepted(b), "put")
          assert.deepStrictEqual((yield* pm.peers).map((p) => p.state), ["candidate", "candidate"])
          assert.isFalse(yield* pm.isFull)
          assert.deepStrictEqual(yield* pm.tryDialNext, mem(a))
        }), { readOnly: true })
    }))
})

/**
 * The persistent map behind the PeerManager's large collections, against a plain `Map`: random
 * sets and deletes (with colliding and near-colliding keys), old versions untouched, the shape a
 * function of the keys alone.
 */
import { assert, describe, it } from "@effect/vitest"
import * as fc from "fast-check"
import { PersistentMap } from "../../../src/domain/peermanager/PersistentMap.ts"

const key = fc.oneof(fc.string({ unit: fc.constantFrom("0", "1", "a", "f"), minLength: 0, maxLength: 3 }), fc.nat({ max: 5000 }).map((n) => n.toString(16).padStart(40, "0")))
const op = fc.record({ set: fc.boolean(), key, value: fc.nat({ max: 3 }) })

describe("PersistentMap", () => {
  it("behaves like a Map, and never changes an old version", () => {
    fc.assert(fc.property(fc.array(op, { maxLength: 400 }), (ops) => {
      let map = PersistentMap.empty<string, number>()
      const model = new Map<string, number>()
      const versions: Array<[PersistentMap<string, number>, Array<[string, number]>]> = []
      for (const o of ops) {
        map = o.set ? map.with(o.key, o.value) : map.without(o.key)
        if (o.set) model.set(o.key, o.value)
        else model.delete(o.key)
        assert.strictEqual(map.size, model.size)
        assert.strictEqual(map.get(o.key), model.get(o.key))
        assert.strictEqual(map.has(o.key), model.has(o.key))
        if (versions.length < 20) versions.push([map, [...model].sort()])
      }
      assert.deepStrictEqual([...map].sort(), [...model].sort())
      for (const [v, entries] of versions) assert.deepStrictEqual([...v.entries()].sort(), entries)
    }), { numRuns: 200 })
  })

  it("has one shape per key set, whatever the order of writes", () => {
    fc.assert(fc.property(fc.uniqueArray(key, { maxLength: 200 }), fc.nat(), (keys, seed) => {
      const forward = keys.reduce((m, k) => m.with(k, 1), PersistentMap.empty<string, number>())
      const shuffled = [...keys].sort((x, y) => ((x.length * 31 + seed) % 7) - ((y.length * 31 + seed) % 7) || (x < y ? -1 : 1))
      // Built from more keys, then the extra ones removed.
      const extra = keys.map((k) => `${k}x`)
      let other = [...shuffled, ...extra].reduce((m, k) => m.with(k, 1), PersistentMap.empty<string, number>())
      for (const k of extra) if (!keys.includes(k)) other = other.without(k)
      assert.deepStrictEqual([...other.keys()], [...forward.keys()])
      assert.strictEqual(JSON.stringify(other), JSON.stringify(forward))
    }), { numRuns: 200 })
  })

  it("returns itself for writes that change nothing", () => {
    const m = PersistentMap.empty<string, number>().with("a", 1)
    assert.strictEqual(m.with("a", 1), m)
    assert.strictEqual(m.without("b"), m)
    assert.strictEqual(PersistentMap.from(m), m)
  })
})

import { assert, describe, it } from "@effect/vitest"
import * as fc from "fast-check"
import { RATE, Strobe128 } from "../../src/wire/Strobe.ts"
import { hasFixture, hex, readJsonFixture, toHex } from "../fixtures.ts"

interface StrobeOp {
  readonly name: string
  readonly meta?: boolean
  readonly stream?: boolean
  readonly custom_string?: string
  readonly security?: number
  readonly input_data?: string
  readonly input_length?: number
  readonly output?: string
  readonly state_after: string
}
interface StrobeVectors {
  readonly test_vectors: ReadonlyArray<{ readonly name: string; readonly operations: ReadonlyArray<StrobeOp> }>
}

const FIXTURE = "strobego-test_vectors.json"
const encoder = new TextEncoder()

/**
 * Applies one vector operation if this implementation supports it (init, KEY, AD, meta-AD, PRF);
 * returns false for transport operations, after which the vector's state can no longer be followed.
 */
const apply = (s: Strobe128, op: StrobeOp): boolean => {
  const more = op.stream === true
  const data = hex(op.input_data ?? "")
  switch (op.name) {
    case "KEY":
      if (op.meta === true) return false
      s.key(data, more)
      return true
    case "AD":
      if (op.meta === true) s.metaAd(data, more)
      else s.ad(data, more)
      return true
    case "PRF": {
      if (op.meta === true) return false
      const out = s.prf(op.input_length ?? 0, more)
      assert.strictEqual(toHex(out), op.output, "PRF output")
      return true
    }
    default:
      return false
  }
}

describe.runIf(hasFixture(FIXTURE))("STROBE-128 (StrobeGo vectors)", () => {
  const vectors = hasFixture(FIXTURE) ? readJsonFixture<StrobeVectors>(FIXTURE).test_vectors : []

  for (const vector of vectors) {
    it(`${vector.name}: state after every applicable operation`, () => {
      const [init, ...rest] = vector.operations
      assert.isDefined(init)
      if (init === undefined) return
      assert.strictEqual(init.name, "init")
      assert.strictEqual(init.security, 128)
      const s = Strobe128.init(encoder.encode(init.custom_string ?? ""))
      assert.strictEqual(toHex(s.snapshot()), init.state_after, "after init")
      let checked = 1
      for (const op of rest) {
        if (!apply(s, op)) break // a transport op (ENC/MAC/CLR/RATCHET): Merlin never needs it
        assert.strictEqual(toHex(s.snapshot()), op.state_after, `after op ${checked} (${op.name})`)
        checked++
      }
      // Every vector starts init, KEY, AD: at least those three are always checked.
      assert.isAtLeast(checked, 3)
    })
  }

  it("covers KEY, AD, meta-AD, PRF and streamed KEY/AD across the vector file", () => {
    const seen = new Set<string>()
    for (const vector of vectors) {
      const [init, ...rest] = vector.operations
      if (init === undefined) continue
      const s = Strobe128.init(encoder.encode(init.custom_string ?? ""))
      for (const op of rest) {
        if (!apply(s, op)) break
        seen.add(`${op.meta === true ? "meta-" : ""}${op.name}${op.stream === true ? "+more" : ""}`)
      }
    }
    assert.deepStrictEqual([...seen].sort(), ["AD", "AD+more", "KEY", "KEY+more", "PRF", "meta-AD"])
  })
})

describe("STROBE-128", () => {
  it("continuing an operation (more) is the same as doing it in one call, across the rate boundary", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 3 * RATE }),
        fc.nat({ max: 3 * RATE }),
        fc.constantFrom("ad", "metaAd", "key") as fc.Arbitrary<"ad" | "metaAd" | "key">,
        (data, cut, op) => {
          const split = Math.min(cut, data.length)
          const whole = Strobe128.init(encoder.encode("p"))
          const parts = whole.clone()
          whole[op](data)
          parts[op](data.subarray(0, split))
          parts[op](data.subarray(split), true)
          return toHex(whole.snapshot()) === toHex(parts.snapshot()) &&
            toHex(whole.prf(RATE + 9)) === toHex(parts.prf(RATE + 9))
        }
      )
    )
  })

  it("clone forks: the copy is unaffected by later operations on the original", () => {
    const a = Strobe128.init(encoder.encode("p"))
    a.ad(encoder.encode("x"))
    const b = a.clone()
    const expected = b.clone().prf(32)
    a.ad(encoder.encode("y"))
    assert.strictEqual(toHex(b.prf(32)), toHex(expected))
    assert.notStrictEqual(toHex(a.prf(32)), toHex(expected))
  })

  it("refuses to continue an operation under different flags", () => {
    const s = Strobe128.init(encoder.encode("p"))
    s.ad(encoder.encode("x"))
    assert.throws(() => s.metaAd(encoder.encode("y"), true))
    assert.throws(() => Strobe128.init(encoder.encode("p")).prf(1, true))
  })
})

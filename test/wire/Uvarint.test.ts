import { assert, describe, it } from "@effect/vitest"
import * as fc from "fast-check"
import * as U from "../../src/wire/Uvarint.ts"
import { hex, toHex } from "../fixtures.ts"
import { thrown } from "../helpers.ts"


const uvarintReason = (f: () => unknown): U.UvarintErrorReason => {
  const e = thrown(f)
  assert.instanceOf(e, U.UvarintError)
  return (e as U.UvarintError).reason
}

/** Reference encoder over BigInt. */
const reference = (value: number): string => {
  let v = BigInt(value)
  const out: Array<number> = []
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80)
    v >>= 7n
  }
  out.push(Number(v))
  return toHex(Uint8Array.from(out))
}

const decodeAll = (bytes: Uint8Array, max = Number.MAX_SAFE_INTEGER): { value: number; next: number } | undefined => {
  const d = new U.UvarintDecoder(max)
  return d.decode(bytes, 0, bytes.length) ? { value: d.value, next: d.next } : undefined
}

describe("Uvarint", () => {
  it("encodes known values", () => {
    const cases: Array<[number, string]> = [
      [0, "00"],
      [1, "01"],
      [127, "7f"],
      [128, "8001"],
      [300, "ac02"],
      [1034, "8a08"],
      [16383, "ff7f"],
      [16384, "808001"],
      [2 ** 31, "8080808008"],
      [2 ** 32 - 1, "ffffffff0f"],
      [Number.MAX_SAFE_INTEGER, "ffffffffffffff0f"]
    ]
    for (const [value, h] of cases) {
      assert.strictEqual(toHex(U.encodeUvarint(value)), h, String(value))
      assert.strictEqual(U.uvarintLength(value), h.length / 2, String(value))
    }
  })

  it("encodes into a target at an offset and returns the next offset", () => {
    const target = new Uint8Array(6).fill(0xee)
    assert.strictEqual(U.encodeUvarintInto(target, 2, 300), 4)
    assert.strictEqual(toHex(target), "eeeeac02eeee")
  })

  it("round-trips every safe integer, matching a BigInt reference encoder", () => {
    fc.assert(
      fc.property(fc.oneof(fc.integer({ min: 0, max: 0xffff }), fc.maxSafeNat()), (value) => {
        const bytes = U.encodeUvarint(value)
        assert.strictEqual(toHex(bytes), reference(value))
        assert.strictEqual(bytes.length, U.uvarintLength(value))
        assert.deepStrictEqual(decodeAll(bytes), { value, next: bytes.length })
      }),
      { numRuns: 2000 }
    )
  })

  it("decodes a varint fed one byte at a time, reporting need-more until the last byte", () => {
    fc.assert(
      fc.property(fc.maxSafeNat(), (value) => {
        const bytes = U.encodeUvarint(value)
        const d = new U.UvarintDecoder(Number.MAX_SAFE_INTEGER)
        for (let i = 0; i < bytes.length - 1; i++) {
          assert.isFalse(d.decode(bytes, i, i + 1))
          assert.strictEqual(d.next, i + 1)
          assert.isTrue(d.pending)
        }
        assert.isTrue(d.decode(bytes, bytes.length - 1, bytes.length))
        assert.strictEqual(d.value, value)
        assert.isFalse(d.pending)
      })
    )
  })

  it("decodes consecutive varints from one buffer and stops after each", () => {
    const bytes = hex("01ac0200ff7f")
    const d = new U.UvarintDecoder(1 << 20)
    const values: Array<number> = []
    for (let pos = 0; pos < bytes.length; pos = d.next) {
      assert.isTrue(d.decode(bytes, pos, bytes.length))
      values.push(d.value)
    }
    assert.deepStrictEqual(values, [1, 300, 0, 16383])
  })

  it("reports need-more on an empty range without consuming", () => {
    const d = new U.UvarintDecoder(10)
    assert.isFalse(d.decode(new Uint8Array(4), 2, 2))
    assert.strictEqual(d.next, 2)
    assert.isFalse(d.pending)
  })

  it("accepts non-minimal encodings up to 10 bytes, as Go's ReadUvarint", () => {
    assert.deepStrictEqual(decodeAll(hex("8000")), { value: 0, next: 2 })
    assert.deepStrictEqual(decodeAll(hex("808080808080808080" + "00"), 5), { value: 0, next: 10 })
    assert.deepStrictEqual(decodeAll(hex("818080808080808000")), { value: 1, next: 9 })
  })

  it("rejects an 11th byte as overflow", () => {
    assert.strictEqual(uvarintReason(() => decodeAll(hex("80808080808080808080" + "00"))), "overflow")
    // Also when the bytes arrive one at a time.
    const d = new U.UvarintDecoder(10)
    const bytes = hex("8080808080808080808000")
    assert.strictEqual(
      uvarintReason(() => {
        for (let i = 0; i < bytes.length; i++) d.decode(bytes, i, i + 1)
      }),
      "overflow"
    )
  })

  it("rejects a 10th byte above 1 as overflow (beyond 64 bits)", () => {
    assert.strictEqual(uvarintReason(() => decodeAll(hex("80808080808080808002"), Number.MAX_SAFE_INTEGER)), "overflow")
  })

  it("rejects a value above the maximum as soon as the bits read exceed it", () => {
    assert.strictEqual(uvarintReason(() => decodeAll(hex("8b08"), 1034)), "too_large")
    assert.deepStrictEqual(decodeAll(hex("8a08"), 1034), { value: 1034, next: 2 })
    assert.strictEqual(uvarintReason(() => decodeAll(hex("0b"), 10)), "too_large")
    // The first byte alone (continuation set) already exceeds 100: refused before more arrive.
    const d = new U.UvarintDecoder(100)
    assert.strictEqual(uvarintReason(() => d.decode(hex("ff"), 0, 1)), "too_large")
    // A huge length is refused at its first bytes, long before 10.
    assert.strictEqual(uvarintReason(() => new U.UvarintDecoder(1034).decode(hex("ffffffffffffffffff01"), 0, 2)), "too_large")
  })

  it("refuses to encode what is not a non-negative safe integer, or into too small a target", () => {
    for (const v of [-1, 1.5, Number.NaN, Infinity, 2 ** 53]) {
      assert.throws(() => U.encodeUvarint(v), RangeError)
      assert.throws(() => U.encodeUvarintInto(new Uint8Array(10), 0, v), RangeError)
    }
    assert.throws(() => U.encodeUvarintInto(new Uint8Array(1), 0, 128), RangeError)
    assert.throws(() => U.encodeUvarintInto(new Uint8Array(2), 1, 128), RangeError)
    assert.throws(() => U.encodeUvarintInto(new Uint8Array(2), -1, 1), RangeError)
    assert.throws(() => new U.UvarintDecoder(-1), RangeError)
    assert.throws(() => new U.UvarintDecoder(2 ** 53), RangeError)
  })
})

import { assert, describe, it } from "@effect/vitest"
import { createHash } from "node:crypto"
import * as fc from "fast-check"
import { keccakF1600, STATE_BYTES } from "../../src/wire/Keccak.ts"

/** SHA3-256 built on our permutation (rate 136, domain padding 0x06 … 0x80), to compare with OpenSSL's. */
const sha3_256 = (message: Uint8Array): string => {
  const rate = 136
  const state = new Uint8Array(STATE_BYTES)
  const padded = new Uint8Array(Math.floor(message.length / rate + 1) * rate)
  padded.set(message)
  padded[message.length] = 0x06
  padded[padded.length - 1] = padded[padded.length - 1]! | 0x80
  for (let block = 0; block < padded.length; block += rate) {
    for (let i = 0; i < rate; i++) state[i] = state[i]! ^ padded[block + i]!
    keccakF1600(state)
  }
  return Buffer.from(state.subarray(0, 32)).toString("hex")
}

describe("Keccak", () => {
  it("the permutation of the all-zero state matches the Keccak team's known answer", () => {
    const state = new Uint8Array(STATE_BYTES)
    keccakF1600(state)
    // First lane of keccak-f[1600] applied to zero (KeccakF-1600-IntermediateValues.txt): F1258F7940E1DDE7
    assert.strictEqual(Buffer.from(state.subarray(0, 8)).toString("hex"), "e7dde140798f25f1")
  })

  it("SHA3-256 over our permutation matches node:crypto at block boundaries", () => {
    for (const n of [0, 1, 135, 136, 137, 271, 272, 1000]) {
      const m = new Uint8Array(n).map((_, i) => (i * 31 + 7) & 0xff)
      assert.strictEqual(sha3_256(m), createHash("sha3-256").update(m).digest("hex"), `length ${n}`)
    }
  })

  it("SHA3-256 over our permutation matches node:crypto for random messages", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (m) => sha3_256(m) === createHash("sha3-256").update(m).digest("hex"))
    )
  })

  it("works on a state that is a view at an odd offset of a larger buffer", () => {
    const backing = new Uint8Array(STATE_BYTES + 3)
    const view = backing.subarray(3)
    const plain = new Uint8Array(STATE_BYTES)
    keccakF1600(view)
    keccakF1600(plain)
    assert.deepStrictEqual(Array.from(view), Array.from(plain))
    assert.deepStrictEqual(Array.from(backing.subarray(0, 3)), [0, 0, 0])
  })

  it("rejects a state that is not 200 bytes", () => {
    assert.throws(() => keccakF1600(new Uint8Array(199)), RangeError)
    assert.throws(() => keccakF1600(new Uint8Array(201)), RangeError)
  })
})

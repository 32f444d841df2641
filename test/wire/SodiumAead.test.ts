import { assert, describe, it } from "@effect/vitest"
import * as fc from "fast-check"
import { FrameOpener, FrameSealer, SEALED_FRAME_SIZE, nodeCryptoAead } from "../../src/wire/FrameCipher.ts"
import { SecretReader, SecretWriter } from "../../src/wire/SecretStream.ts"
import { defaultAead, loadSodium, sodiumAead } from "../../src/wire/SodiumAead.ts"

const key = new Uint8Array(32).fill(3)

describe.runIf(loadSodium() !== undefined)("sodium-native frames", () => {
  it("seal the same bytes as node:crypto, and each opens the other's", () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 1024 }), (chunk) => {
      const a = new FrameSealer(key, { aead: sodiumAead }).sealFrame(chunk)
      const b = new FrameSealer(key, { aead: nodeCryptoAead }).sealFrame(chunk)
      assert.deepStrictEqual(a, b)
      assert.deepStrictEqual(new FrameOpener(key, { aead: nodeCryptoAead }).openFrame(a), chunk)
      assert.deepStrictEqual(new FrameOpener(key, { aead: sodiumAead }).openFrame(b), chunk)
    }), { numRuns: 50 })
  })

  it("a SecretReader decrypting in place through libsodium returns the same plaintext as through node:crypto", () => {
    fc.assert(fc.property(fc.array(fc.uint8Array({ maxLength: 3000 }), { minLength: 1, maxLength: 6 }), fc.nat({ max: 5000 }), (writes, cut) => {
      const writer = new SecretWriter(new FrameSealer(key, { aead: sodiumAead }))
      const wire = Buffer.concat(writes.map((w) => writer.seal(w)))
      const read = (aead: typeof sodiumAead) => {
        const reader = new SecretReader(new FrameOpener(key, { aead }))
        const at = Math.min(cut, wire.length)
        return Buffer.concat([...reader.push(wire.subarray(0, at)), ...reader.push(wire.subarray(at))])
      }
      assert.deepStrictEqual(read(sodiumAead), Buffer.concat(writes))
      assert.deepStrictEqual(read(nodeCryptoAead), Buffer.concat(writes))
    }), { numRuns: 50 })
  })

  it("tampering any byte fails to open", () => {
    const sealed = new FrameSealer(key, { aead: sodiumAead }).sealFrame(new Uint8Array(100).fill(1))
    for (const i of [0, 500, 1027, 1028, SEALED_FRAME_SIZE - 1]) {
      const t = Uint8Array.from(sealed)
      t[i] = t[i]! ^ 1
      assert.throws(() => new FrameOpener(key, { aead: sodiumAead }).openFrame(t), /decrypt/)
    }
  })
})

describe("default AEAD", () => {
  it("is libsodium when available, otherwise node:crypto", () => {
    assert.strictEqual(defaultAead(key).name, loadSodium() !== undefined ? "sodium-native" : "node:crypto")
  })
})

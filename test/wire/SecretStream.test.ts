import { assert, describe, it } from "@effect/vitest"
import { createCipheriv, randomBytes } from "node:crypto"
import * as fc from "fast-check"
import * as F from "../../src/wire/FrameCipher.ts"
import { SecretReader, SecretWriter } from "../../src/wire/SecretStream.ts"
import { hex, toHex } from "../fixtures.ts"
import { split, thrown } from "../helpers.ts"


const openReason = (f: () => unknown): F.FrameOpenErrorReason => {
  const e = thrown(f)
  assert.instanceOf(e, F.FrameOpenError)
  return (e as F.FrameOpenError).reason
}

const pair = (key: Uint8Array = randomBytes(32)) => ({
  key,
  writer: new SecretWriter(new F.FrameSealer(key)),
  reader: new SecretReader(new F.FrameOpener(key))
})


describe("SecretWriter", () => {
  it("seals data into back-to-back 1044-byte frames, identical to FrameSealer.sealData", () => {
    const key = randomBytes(32)
    const writer = new SecretWriter(new F.FrameSealer(key))
    const sealer = new F.FrameSealer(key)
    for (const length of [0, 1, 1023, 1024, 1025, 2048, 5000]) {
      const data = randomBytes(length)
      const sealed = writer.seal(data)
      assert.strictEqual(sealed.length, Math.ceil(length / 1024) * 1044, String(length))
      assert.strictEqual(toHex(sealed), toHex(sealer.sealData(data)), String(length))
    }
  })

  it("sealRange seals a region of a larger buffer as seal would its copy", () => {
    const key = randomBytes(32)
    const a = new SecretWriter(new F.FrameSealer(key))
    const b = new SecretWriter(new F.FrameSealer(key))
    const big = randomBytes(6000)
    for (const [start, end] of [[0, 0], [10, 10], [3, 2051], [100, 6000], [0, 6000]] as const) {
      assert.strictEqual(toHex(a.sealRange(big, start, end)), toHex(b.seal(big.slice(start, end))))
    }
    assert.throws(() => a.sealRange(big, 5, 4), RangeError)
    assert.throws(() => a.sealRange(big, 0, 6001), RangeError)
    assert.throws(() => a.sealRange(big, -1, 3), RangeError)
  })

  it("sealAll seals a list of buffers exactly as seal seals their concatenation", () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.uint8Array({ maxLength: 50 }), fc.uint8Array({ minLength: 900, maxLength: 3000 })), { maxLength: 12 }), (buffers) => {
        const key = randomBytes(32)
        const a = new SecretWriter(new F.FrameSealer(key))
        const b = new SecretWriter(new F.FrameSealer(key))
        assert.strictEqual(toHex(a.sealAll(buffers)), toHex(b.seal(Buffer.concat(buffers))))
        // The nonces advanced alike: the next frames match too.
        assert.strictEqual(toHex(a.seal(Uint8Array.of(1))), toHex(b.seal(Uint8Array.of(1))))
      }),
      { numRuns: 100 }
    )
  })

  it("passes NonceOverflowError through and seals nothing with the exhausted nonce", () => {
    const key = randomBytes(32)
    const writer = new SecretWriter(new F.FrameSealer(key, { nonce: F.Nonce.fromBytes(hex("00000000ffffffffffffffff")) }))
    assert.instanceOf(thrown(() => writer.seal(Uint8Array.of(1))), F.NonceOverflowError)
    assert.instanceOf(thrown(() => writer.sealAll([Uint8Array.of(1)])), F.NonceOverflowError)
    assert.strictEqual(writer.seal(new Uint8Array(0)).length, 0)
  })
})

describe("SecretReader", () => {
  it("returns the plaintext of every complete frame, whatever the chunking (short frames mid-chunk included), holding at most one partial frame", () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.uint8Array({ maxLength: 100 }), fc.uint8Array({ minLength: 1000, maxLength: 5000 })), { minLength: 1, maxLength: 8 }),
        fc.array(fc.nat(), { maxLength: 40 }),
        (writes, cuts) => {
          const { writer, reader } = pair()
          const wire = Buffer.concat(writes.map((w) => writer.seal(w)))
          const out: Array<Uint8Array> = []
          for (const chunk of split(wire, cuts)) {
            const pts = reader.push(chunk)
            // Every frame a chunk completes comes out as one plaintext, short frames included.
            assert.isAtMost(pts.length, 1)
            for (const pt of pts) out.push(pt)
            assert.isBelow(reader.bufferedBytes, F.SEALED_FRAME_SIZE)
          }
          assert.strictEqual(reader.bufferedBytes, 0)
          assert.strictEqual(toHex(Buffer.concat(out)), toHex(Buffer.concat(writes)))
          assert.isTrue(out.every((pt) => pt.length > 0))
        }
      ),
      { numRuns: 150 }
    )
  })

  it("reads frames fed one byte at a time, and many frames in one chunk", () => {
    const { writer, reader } = pair()
    const data = randomBytes(3000)
    const sealed = writer.seal(data)
    const out: Array<Uint8Array> = []
    for (let i = 0; i < 1044 + 10; i++) {
      const n = reader.pushTo(sealed.subarray(i, i + 1), out)
      assert.strictEqual(n, i === 1043 ? 1 : 0)
    }
    for (const pt of reader.push(sealed.subarray(1044 + 10))) out.push(pt)
    assert.strictEqual(toHex(Buffer.concat(out)), toHex(data))
  })

  it("skips frames with an empty chunk (never sent by Go, harmless from a peer)", () => {
    const key = randomBytes(32)
    const sealer = new F.FrameSealer(key)
    const reader = new SecretReader(new F.FrameOpener(key))
    const wire = Buffer.concat([sealer.sealFrame(new Uint8Array(0)), sealer.sealFrame(Uint8Array.of(5))])
    assert.deepStrictEqual(reader.push(wire).map(toHex), ["05"])
  })

  it("refuses a tampered frame as authentication, inside a chunk and across chunks", () => {
    const { writer, reader } = pair()
    const sealed = writer.seal(randomBytes(3000))
    sealed[1044 + 7]! ^= 1
    assert.strictEqual(reader.push(sealed.subarray(0, 1044)).length, 1)
    assert.strictEqual(openReason(() => reader.push(sealed.subarray(1044))), "authentication")
    const p2 = pair()
    const s2 = p2.writer.seal(randomBytes(100))
    s2[1040]! ^= 0x80
    p2.reader.push(s2.subarray(0, 500))
    assert.strictEqual(openReason(() => p2.reader.push(s2.subarray(500))), "authentication")
  })

  it("refuses frames out of order (wrong nonce) and frames under another key", () => {
    const { writer, reader } = pair()
    writer.seal(Uint8Array.of(1))
    assert.strictEqual(openReason(() => reader.push(writer.seal(Uint8Array.of(2)))), "authentication")
    const other = pair()
    assert.strictEqual(openReason(() => other.reader.push(pair().writer.seal(Uint8Array.of(1)))), "authentication")
  })

  it("refuses a validly sealed frame whose chunk length exceeds 1024", () => {
    const key = randomBytes(32)
    const plaintext = new Uint8Array(1028)
    new DataView(plaintext.buffer).setUint32(0, 1025, true)
    const c = createCipheriv("chacha20-poly1305", key, new Uint8Array(12), { authTagLength: 16 })
    const frame = Buffer.concat([c.update(plaintext), c.final(), c.getAuthTag()])
    const reader = new SecretReader(new F.FrameOpener(key))
    assert.strictEqual(openReason(() => reader.push(frame)), "chunk_length")
  })

  it("passes NonceOverflowError through", () => {
    const key = randomBytes(32)
    const frame = new F.FrameSealer(key).sealFrame(Uint8Array.of(1))
    const reader = new SecretReader(new F.FrameOpener(key, { nonce: F.Nonce.fromBytes(hex("00000000ffffffffffffffff")) }))
    assert.instanceOf(thrown(() => reader.push(frame)), F.NonceOverflowError)
  })
})

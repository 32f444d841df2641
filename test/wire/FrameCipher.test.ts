import { assert, describe, it } from "@effect/vitest"
import { createCipheriv, randomBytes } from "node:crypto"
import * as fc from "fast-check"
import * as F from "../../src/wire/FrameCipher.ts"
import { hasFixture, hex, readJsonFixture, toHex } from "../fixtures.ts"
import { thrown } from "../helpers.ts"

const RS_VECTORS = "tendermint-rs-vectors.json"

interface RsVectors {
  readonly nonce_increment_checkpoints: { readonly checkpoints: Readonly<Record<string, string>> }
}


const openReason = (f: () => unknown): F.FrameOpenErrorReason => {
  const e = thrown(f)
  assert.instanceOf(e, F.FrameOpenError)
  return (e as F.FrameOpenError).reason
}

/** A sealer and the peer's opener for the same direction. */
const pair = () => {
  const key = randomBytes(32)
  return { key, sealer: new F.FrameSealer(key), opener: new F.FrameOpener(key) }
}

describe("Nonce", () => {
  it.skipIf(!hasFixture(RS_VECTORS))("matches tendermint-rs's increment checkpoints over 1024 increments", () => {
    const checkpoints = readJsonFixture<RsVectors>(RS_VECTORS).nonce_increment_checkpoints.checkpoints
    assert.strictEqual(Object.keys(checkpoints).length, 6)
    const nonce = new F.Nonce()
    assert.strictEqual(toHex(nonce.bytes), "00".repeat(12))
    for (let i = 0; i < 1024; i++) {
      nonce.increment()
      const expected = checkpoints[String(i)]
      if (expected !== undefined) assert.strictEqual(toHex(nonce.bytes), expected, `after increment ${i}`)
    }
    assert.strictEqual(nonce.counter, 1024n)
  })

  it("carries from the low to the high 32 bits", () => {
    const nonce = F.Nonce.fromBytes(hex("00000000ffffffff00000000"))
    nonce.increment()
    assert.strictEqual(toHex(nonce.bytes), "000000000000000001000000")
    assert.strictEqual(nonce.counter, 1n << 32n)
  })

  it("incrementing 00000000ffffffffffffffff fails and leaves the nonce unchanged", () => {
    const nonce = F.Nonce.fromBytes(hex("00000000ffffffffffffffff"))
    assert.isTrue(nonce.exhausted)
    assert.instanceOf(thrown(() => nonce.increment()), F.NonceOverflowError)
    assert.strictEqual(toHex(nonce.bytes), "00000000ffffffffffffffff")
    assert.strictEqual(nonce.counter, (1n << 64n) - 1n)
  })

  it("sealing and opening refuse to use an exhausted nonce, and advance nothing", () => {
    const key = randomBytes(32)
    const exhausted = () => F.Nonce.fromBytes(hex("00000000ffffffffffffffff"))
    const sealer = new F.FrameSealer(key, { nonce: exhausted() })
    assert.instanceOf(thrown(() => sealer.sealFrame(new Uint8Array(1))), F.NonceOverflowError)
    assert.isTrue(sealer.nonce.exhausted)
    const frame = new F.FrameSealer(key).sealFrame(new Uint8Array(3))
    const opener = new F.FrameOpener(key, { nonce: exhausted() })
    assert.instanceOf(thrown(() => opener.openFrame(frame)), F.NonceOverflowError)
    assert.isTrue(opener.nonce.exhausted)
  })

  it("the last usable nonce (2^64-2) seals and opens, then the connection is exhausted", () => {
    const key = randomBytes(32)
    const last = () => F.Nonce.fromBytes(hex("00000000feffffffffffffff"))
    const sealer = new F.FrameSealer(key, { nonce: last() })
    const opener = new F.FrameOpener(key, { nonce: last() })
    assert.deepStrictEqual(Array.from(opener.openFrame(sealer.sealFrame(Uint8Array.of(7)))), [7])
    assert.isTrue(sealer.nonce.exhausted)
    assert.instanceOf(thrown(() => sealer.sealFrame(new Uint8Array(0))), F.NonceOverflowError)
  })
})

describe("FrameCipher", () => {
  it("sealed frames are always 1044 bytes and round trip for chunks of 0, 1 and 1024 bytes", () => {
    const { sealer, opener } = pair()
    for (const n of [0, 1, 1024]) {
      const chunk = randomBytes(n)
      const frame = sealer.sealFrame(chunk)
      assert.strictEqual(frame.length, F.SEALED_FRAME_SIZE)
      assert.strictEqual(F.SEALED_FRAME_SIZE, 1044)
      assert.strictEqual(toHex(opener.openFrame(frame)), toHex(chunk))
    }
    assert.strictEqual(sealer.nonce.counter, 3n)
    assert.strictEqual(opener.nonce.counter, 3n)
  })

  it("is ChaCha20-Poly1305 over LE32(len) ‖ chunk ‖ zeros with the counter nonce and no AAD", () => {
    const { key, sealer } = pair()
    sealer.sealFrame(new Uint8Array(5)) // nonce 0
    const chunk = randomBytes(10)
    const frame = sealer.sealFrame(chunk) // nonce 1
    const plaintext = new Uint8Array(1028)
    plaintext[0] = 10
    plaintext.set(chunk, 4)
    const c = createCipheriv("chacha20-poly1305", key, hex("000000000100000000000000"), { authTagLength: 16 })
    const expected = Buffer.concat([c.update(plaintext), c.final(), c.getAuthTag()])
    assert.strictEqual(toHex(frame), expected.toString("hex"))
  })

  it("frames and chunks are plain Uint8Arrays, so slice copies (not Buffer's view-returning slice)", () => {
    const { sealer, opener } = pair()
    const frame = sealer.sealFrame(Uint8Array.of(1, 2))
    const chunk = opener.openFrame(frame)
    for (const bytes of [frame, chunk, sealer.sealData(new Uint8Array(5))]) {
      assert.isFalse(Buffer.isBuffer(bytes))
      const copy = bytes.slice()
      copy[0] = copy[0]! ^ 0xff
      assert.notStrictEqual(copy[0], bytes[0])
    }
  })

  it("a sealed chunk over 1024 bytes is a RangeError, and nothing advances", () => {
    const { sealer } = pair()
    assert.throws(() => sealer.sealFrame(new Uint8Array(1025)), RangeError)
    assert.strictEqual(sealer.nonce.counter, 0n)
  })

  it("tampering with any byte of a sealed frame makes it fail to open", () => {
    const { sealer, opener } = pair()
    const frame = sealer.sealFrame(randomBytes(100))
    for (let i = 0; i < F.SEALED_FRAME_SIZE; i++) {
      const bad = frame.slice()
      bad[i] = bad[i]! ^ (1 << (i % 8))
      assert.strictEqual(openReason(() => opener.openFrame(bad)), "authentication", `byte ${i}`)
    }
    assert.strictEqual(opener.nonce.counter, 0n)
    assert.strictEqual(opener.openFrame(frame).length, 100)
  })

  it("frames must be opened in order: a replayed or skipped frame fails", () => {
    const { sealer, opener } = pair()
    const f0 = sealer.sealFrame(new Uint8Array(1))
    const f1 = sealer.sealFrame(new Uint8Array(2))
    assert.strictEqual(openReason(() => opener.openFrame(f1)), "authentication")
    opener.openFrame(f0)
    assert.strictEqual(openReason(() => opener.openFrame(f0)), "authentication")
    assert.strictEqual(opener.openFrame(f1).length, 2)
  })

  it("a validly sealed frame whose chunk length exceeds 1024 is rejected", () => {
    for (const length of [1025, 0xffff, 0x80000000, 0xffffffff]) {
      const key = randomBytes(32)
      const plaintext = new Uint8Array(1028)
      new DataView(plaintext.buffer).setUint32(0, length, true)
      const c = createCipheriv("chacha20-poly1305", key, new Uint8Array(12), { authTagLength: 16 })
      const frame = Buffer.concat([c.update(plaintext), c.final(), c.getAuthTag()])
      assert.strictEqual(openReason(() => new F.FrameOpener(key).openFrame(frame)), "chunk_length", String(length))
    }
  })

  it("rejects frames that are not 1044 bytes and keys that are not 32 bytes", () => {
    const { opener } = pair()
    assert.throws(() => opener.openFrame(new Uint8Array(1043)), RangeError)
    assert.throws(() => opener.openFrameAt(new Uint8Array(2000), 1000), RangeError)
    assert.throws(() => new F.FrameSealer(new Uint8Array(16)), RangeError)
  })

  it("sealData cuts data into 1024-byte chunks sealed back to back; openFrameAt reads them in place", () => {
    const { sealer, opener } = pair()
    const data = randomBytes(2500)
    const sealed = sealer.sealData(data)
    assert.strictEqual(sealed.length, 3 * 1044)
    const chunks = [0, 1, 2].map((i) => opener.openFrameAt(sealed, i * 1044))
    assert.deepStrictEqual(chunks.map((c) => c.length), [1024, 1024, 452])
    assert.strictEqual(toHex(Buffer.concat(chunks)), toHex(data))
    assert.strictEqual(sealer.sealData(new Uint8Array(0)).length, 0)
  })

  it("sealFrameInto writes one frame at an offset and nothing else", () => {
    const { sealer, opener } = pair()
    const target = new Uint8Array(10 + 1044 + 10).fill(0xaa)
    sealer.sealFrameInto(target, 10, Uint8Array.of(1, 2, 3))
    assert.isTrue(target.subarray(0, 10).every((b) => b === 0xaa))
    assert.isTrue(target.subarray(1054).every((b) => b === 0xaa))
    assert.deepStrictEqual(Array.from(opener.openFrameAt(target, 10)), [1, 2, 3])
  })

  it("random chunks round trip in sequence", () => {
    const { sealer, opener } = pair()
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 1024 }), (chunk) => toHex(opener.openFrame(sealer.sealFrame(chunk))) === toHex(chunk))
    )
    assert.strictEqual(sealer.nonce.counter, opener.nonce.counter)
  })

  it("random data round trips through sealData and frame-by-frame opening", () => {
    const { sealer, opener } = pair()
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 5000 }), (data) => {
        const sealed = sealer.sealData(data)
        const parts: Array<Uint8Array> = []
        for (let o = 0; o < sealed.length; o += F.SEALED_FRAME_SIZE) parts.push(opener.openFrameAt(sealed, o))
        return sealed.length === F.frameCount(data.length) * 1044 && toHex(Buffer.concat(parts)) === toHex(data)
      }),
      { numRuns: 50 }
    )
  })

  it("the default implementation is node:crypto, and another AEAD can be plugged in", () => {
    assert.strictEqual(pair().sealer.implementation, "node:crypto")
    const calls: Array<string> = []
    const traced: F.FrameAeadFactory = (key) => {
      const inner = F.nodeCryptoAead(key)
      return {
        name: "traced",
        sealInto: (pt, nonce, target, offset) => {
          calls.push(`seal ${toHex(nonce)}`)
          inner.sealInto(pt, nonce, target, offset)
        },
        open: (sealed, nonce) => {
          calls.push(`open ${toHex(nonce)}`)
          return inner.open(sealed, nonce)
        },
        openInto: (sealed, nonce, target, offset) => {
          calls.push(`open ${toHex(nonce)}`)
          return inner.openInto(sealed, nonce, target, offset)
        }
      }
    }
    const key = randomBytes(32)
    const sealer = new F.FrameSealer(key, { aead: traced })
    const opener = new F.FrameOpener(key, { aead: traced })
    assert.strictEqual(sealer.implementation, "traced")
    opener.openFrame(sealer.sealFrame(new Uint8Array(1)))
    // interoperates with the default implementation
    assert.strictEqual(new F.FrameOpener(key, { nonce: F.Nonce.fromBytes(hex("000000000100000000000000")) }).openFrame(sealer.sealFrame(Uint8Array.of(9)))[0], 9)
    assert.deepStrictEqual(calls.slice(0, 2), ["seal 000000000000000000000000", "open 000000000000000000000000"])
  })
})

import { assert, describe, it } from "@effect/vitest"
import { create, toBinary } from "@bufbuild/protobuf"
import { randomBytes } from "node:crypto"
import * as fc from "fast-check"
import { AuthSigMessageSchema } from "../../src/proto/tendermint/p2p/conn_pb.ts"
import * as NodeKey from "../../src/domain/NodeKey.ts"
import * as SC from "../../src/wire/SecretConnectionCrypto.ts"
import { hasFixture, hex, readFixture, readJsonFixture, toHex } from "../fixtures.ts"
import { thrown } from "../helpers.ts"

const GOLDEN_FILES = ["cometbft-TestDeriveSecretsAndChallengeGolden.golden", "tendermint-rs-TestDeriveSecretsAndChallenge.golden"]
const RS_VECTORS = "tendermint-rs-vectors.json"

interface RsVectors {
  readonly initial_handshake_framing: { readonly auth_sig_msg_response_len: number }
  readonly low_order_x25519_points: { readonly points_hex: ReadonlyArray<string> }
}

/** Runs `f` and returns the error it throws, failing the test if it does not throw. */

const authSigReason = (f: () => unknown): SC.AuthSigErrorReason => {
  const e = thrown(f)
  assert.instanceOf(e, SC.AuthSigError)
  return (e as SC.AuthSigError).reason
}

const body = (delimited: Uint8Array): Uint8Array => delimited.subarray(1)

describe("SecretConnection crypto: HKDF golden vectors", () => {
  for (const file of GOLDEN_FILES) {
    it.skipIf(!hasFixture(file))(`${file}: recv, send and legacy challenge for all 32 vectors`, () => {
      const lines = readFixture(file).split("\n").filter((l) => l.trim() !== "")
      assert.strictEqual(lines.length, 32)
      for (const line of lines) {
        const [dh, locIsLeast, recv, send, legacy] = line.split(",")
        assert.include(["true", "false"], locIsLeast)
        const s = SC.deriveSecrets(hex(dh ?? ""), locIsLeast === "true")
        assert.strictEqual(toHex(s.recvKey), recv, line)
        assert.strictEqual(toHex(s.sendKey), send, line)
        assert.strictEqual(toHex(s.legacyChallenge), legacy, line)
      }
    })
  }
})

describe("SecretConnection crypto: ephemeral keys", () => {
  it("encodes a public key as the 35 bytes 22 0a 20 ‖ pub and decodes it back", () => {
    const { publicKey } = SC.generateEphemeralKeyPair()
    const msg = SC.encodeEphemeralKey(publicKey)
    assert.strictEqual(msg.length, 35)
    assert.strictEqual(toHex(msg), "220a20" + toHex(publicKey))
    assert.strictEqual(toHex(SC.decodeEphemeralKeyBody(msg.subarray(1))), toHex(publicKey))
    assert.strictEqual(toHex(SC.decodeEphemeralKey(msg)), toHex(publicKey))
  })

  it("accepts only a 32-byte value: short, long, wrongly tagged or padded bodies are rejected", () => {
    const pub = randomBytes(32)
    const bad = [
      new Uint8Array(0),
      Uint8Array.from([0x0a, 0x1f, ...pub.subarray(0, 31)]), // 31-byte value (Go would zero-pad)
      Uint8Array.from([0x0a, 0x21, ...pub, 0]), // 33-byte value (Go would truncate)
      Uint8Array.from([0x12, 0x20, ...pub]), // field 2
      Uint8Array.from([0x0a, 0x20, ...pub, 0x08, 0x01]), // trailing field
      Uint8Array.from([0x0a, 0x20, ...pub.subarray(0, 31)]) // truncated
    ]
    for (const b of bad) {
      const e = thrown(() => SC.decodeEphemeralKeyBody(b))
      assert.instanceOf(e, SC.EphemeralKeyError)
      assert.strictEqual((e as SC.EphemeralKeyError).reason, "encoding")
    }
    assert.instanceOf(thrown(() => SC.decodeEphemeralKey(Uint8Array.from([0x23, 0x0a, 0x20, ...pub]))), SC.EphemeralKeyError)
  })

  it("random bodies either decode to 32 bytes or fail with EphemeralKeyError", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), (b) => {
        try {
          return SC.decodeEphemeralKeyBody(b).length === 32
        } catch (e) {
          return e instanceof SC.EphemeralKeyError
        }
      })
    )
  })

  it("key pairs from a fixed scalar are deterministic and the public key is X25519(scalar, 9)", () => {
    // RFC 7748 §6.1 Alice
    const pair = SC.ephemeralKeyPairFromSecret(hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"))
    assert.strictEqual(toHex(pair.publicKey), "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
  })
})

describe("SecretConnection crypto: sorting and DH", () => {
  it("sort32 orders the keys bytewise and reports whether ours is the lower", () => {
    const a = hex("00".repeat(31) + "01")
    const b = hex("00".repeat(31) + "02")
    const fromA = SC.sort32(a, b)
    assert.strictEqual(toHex(fromA.lo), toHex(a))
    assert.strictEqual(toHex(fromA.hi), toHex(b))
    assert.isTrue(fromA.locIsLeast)
    const fromB = SC.sort32(b, a)
    assert.strictEqual(toHex(fromB.lo), toHex(a))
    assert.isFalse(fromB.locIsLeast)
    assert.isTrue(SC.sort32(a, a).locIsLeast) // Go: bytes.Equal(loc, lo)
  })

  it.skipIf(!hasFixture(RS_VECTORS))("the built-in low-order list is tendermint-rs's seven points", () => {
    const points = readJsonFixture<RsVectors>(RS_VECTORS).low_order_x25519_points.points_hex
    assert.deepStrictEqual(SC.LOW_ORDER_POINTS.map(toHex), [...points])
  })

  it.skipIf(!hasFixture(RS_VECTORS))("every low-order point is rejected before DH", () => {
    const { secretKey } = SC.generateEphemeralKeyPair()
    const points = readJsonFixture<RsVectors>(RS_VECTORS).low_order_x25519_points.points_hex
    assert.strictEqual(points.length, 7)
    for (const p of points) {
      assert.isTrue(SC.isLowOrderPoint(hex(p)))
      const e = thrown(() => SC.computeSharedSecret(secretKey, hex(p)))
      assert.instanceOf(e, SC.KeyExchangeError)
      assert.strictEqual((e as SC.KeyExchangeError).reason, "low_order_point", p)
    }
  })

  it.skipIf(!hasFixture(RS_VECTORS))("low-order points outside the list (high bit set) are caught by the all-zero check", () => {
    const { secretKey } = SC.generateEphemeralKeyPair()
    for (const p of readJsonFixture<RsVectors>(RS_VECTORS).low_order_x25519_points.points_hex) {
      const variant = hex(p)
      variant[31] = variant[31]! | 0x80 // X25519 ignores bit 255, so this is the same point
      assert.isFalse(SC.isLowOrderPoint(variant))
      const e = thrown(() => SC.computeSharedSecret(secretKey, variant))
      assert.instanceOf(e, SC.KeyExchangeError)
      assert.strictEqual((e as SC.KeyExchangeError).reason, "zero_shared_secret", toHex(variant))
    }
  })

  it("two peers derive the same DH secret, mirrored keys and the same challenge", () => {
    const alice = SC.generateEphemeralKeyPair()
    const bob = SC.generateEphemeralKeyPair()
    const dhA = SC.computeSharedSecret(alice.secretKey, SC.decodeEphemeralKeyBody(body(SC.encodeEphemeralKey(bob.publicKey))))
    const dhB = SC.computeSharedSecret(bob.secretKey, SC.decodeEphemeralKeyBody(body(SC.encodeEphemeralKey(alice.publicKey))))
    assert.strictEqual(toHex(dhA), toHex(dhB))
    const sa = SC.sort32(alice.publicKey, bob.publicKey)
    const sb = SC.sort32(bob.publicKey, alice.publicKey)
    assert.notStrictEqual(sa.locIsLeast, sb.locIsLeast)
    const ka = SC.deriveSecrets(dhA, sa.locIsLeast)
    const kb = SC.deriveSecrets(dhB, sb.locIsLeast)
    assert.strictEqual(toHex(ka.sendKey), toHex(kb.recvKey))
    assert.strictEqual(toHex(ka.recvKey), toHex(kb.sendKey))
    assert.notStrictEqual(toHex(ka.sendKey), toHex(ka.recvKey))
    const ca = SC.challenge(sa.lo, sa.hi, dhA)
    const cb = SC.challenge(sb.lo, sb.hi, dhB)
    assert.strictEqual(ca.length, 32)
    assert.strictEqual(toHex(ca), toHex(cb))
  })

  it("the challenge binds the ephemeral keys, not only the DH secret", () => {
    const dh = randomBytes(32)
    const lo = randomBytes(32)
    const hi = randomBytes(32)
    assert.notStrictEqual(toHex(SC.challenge(lo, hi, dh)), toHex(SC.challenge(hi, lo, dh)))
  })
})

describe("SecretConnection crypto: AuthSigMessage", () => {
  const nodeKey = randomBytes(32)
  const nodePub = SC.ed25519PublicKey(nodeKey)
  const challenge = randomBytes(32)

  it("round trips, is 103 bytes with the layout of docs/PROTOCOL.md#authsigmessage, and verifies", () => {
    const sig = SC.signEd25519(nodeKey, challenge)
    const msg = SC.encodeAuthSigMessage(nodePub, sig)
    assert.strictEqual(msg.length, SC.AUTH_SIG_MESSAGE_LENGTH)
    if (hasFixture(RS_VECTORS)) {
      assert.strictEqual(msg.length, readJsonFixture<RsVectors>(RS_VECTORS).initial_handshake_framing.auth_sig_msg_response_len)
    }
    assert.strictEqual(toHex(msg), "660a220a20" + toHex(nodePub) + "1240" + toHex(sig))
    const decoded = SC.decodeAuthSigMessageDelimited(msg)
    assert.strictEqual(toHex(decoded.publicKey), toHex(nodePub))
    assert.strictEqual(toHex(decoded.signature), toHex(sig))
    assert.deepStrictEqual(SC.decodeAuthSigMessage(body(msg)), decoded)
    SC.verifyAuthSig(decoded, challenge)
  })

  it("a 64-byte Go-style private key (seed ‖ pub) signs like its seed", () => {
    const goKey = Uint8Array.from([...nodeKey, ...nodePub])
    assert.strictEqual(toHex(SC.ed25519PublicKey(goKey)), toHex(nodePub))
    assert.strictEqual(toHex(SC.signEd25519(goKey, challenge)), toHex(SC.signEd25519(nodeKey, challenge)))
  })

  it("signChallenge (libsodium when installed) signs exactly like NodeKey.sign", () => {
    for (let i = 0; i < 20; i++) {
      const key = NodeKey.fromSeed(randomBytes(32))
      const challenge = randomBytes(32)
      assert.strictEqual(toHex(SC.signChallenge(key, challenge)), toHex(NodeKey.sign(key, challenge)))
      assert.strictEqual(toHex(SC.signChallenge(key, challenge)), toHex(NodeKey.sign(key, challenge)))
    }
  })

  it("a tampered signature, another challenge or another key fails verification", () => {
    const sig = SC.signEd25519(nodeKey, challenge)
    for (let i = 0; i < 64; i += 7) {
      const bad = sig.slice()
      bad[i] = bad[i]! ^ 0x01
      assert.strictEqual(authSigReason(() => SC.verifyAuthSig({ publicKey: nodePub, signature: bad }, challenge)), "signature")
    }
    assert.strictEqual(authSigReason(() => SC.verifyAuthSig({ publicKey: nodePub, signature: sig }, randomBytes(32))), "signature")
    const other = SC.ed25519PublicKey(randomBytes(32))
    assert.strictEqual(authSigReason(() => SC.verifyAuthSig({ publicKey: other, signature: sig }, challenge)), "signature")
    assert.isFalse(SC.verifyEd25519(nodePub, challenge, sig.subarray(0, 63)))
  })

  it("rejects a missing key, a non-ed25519 key, wrong key or signature length and garbage", () => {
    const sig = new Uint8Array(64).fill(1)
    const encode = (init: Parameters<typeof create<typeof AuthSigMessageSchema>>[1]) =>
      toBinary(AuthSigMessageSchema, create(AuthSigMessageSchema, init))
    assert.strictEqual(authSigReason(() => SC.decodeAuthSigMessage(encode({ sig }))), "missing_key")
    assert.strictEqual(authSigReason(() => SC.decodeAuthSigMessage(Uint8Array.from([0x0a, 0x00, 0x12, 0x40, ...sig]))), "key_type")
    const secp = encode({ pubKey: { sum: { case: "secp256k1", value: new Uint8Array(33).fill(2) } }, sig })
    const e = thrown(() => SC.decodeAuthSigMessage(secp))
    assert.instanceOf(e, SC.AuthSigError)
    assert.strictEqual((e as SC.AuthSigError).reason, "key_type")
    assert.include((e as SC.AuthSigError).message, "expected ed25519 pubkey")
    const shortKey = encode({ pubKey: { sum: { case: "ed25519", value: new Uint8Array(31) } }, sig })
    assert.strictEqual(authSigReason(() => SC.decodeAuthSigMessage(shortKey)), "key_length")
    const shortSig = encode({ pubKey: { sum: { case: "ed25519", value: nodePub } }, sig: sig.subarray(0, 63) })
    assert.strictEqual(authSigReason(() => SC.decodeAuthSigMessage(shortSig)), "sig_length")
    assert.strictEqual(authSigReason(() => SC.decodeAuthSigMessage(Uint8Array.from([0x0a, 0x50, 0x01]))), "encoding")
    const msg = SC.encodeAuthSigMessage(nodePub, SC.signEd25519(nodeKey, challenge))
    assert.strictEqual(authSigReason(() => SC.decodeAuthSigMessageDelimited(msg.subarray(0, 102))), "encoding")
  })

  it("random bytes never fail with anything but AuthSigError", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 120 }), (b) => {
        try {
          SC.decodeAuthSigMessage(b)
          return true
        } catch (e) {
          return e instanceof SC.AuthSigError
        }
      })
    )
  })
})

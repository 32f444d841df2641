import { assert, describe, it } from "@effect/vitest"
import { createHash } from "node:crypto"
import { Effect, Result } from "effect"
import * as fc from "fast-check"
import * as NodeId from "../../src/domain/NodeId.ts"
import * as NodeKey from "../../src/domain/NodeKey.ts"
import { hasFixture, hex, readJsonFixture } from "../fixtures.ts"

const reason = (r: Result.Result<unknown, NodeId.InvalidNodeId>) => Result.isFailure(r) ? r.failure.reason : "ok"

describe("NodeId", () => {
  it("decode accepts 40 hex characters and lowercases them", () => {
    const upper = "A".repeat(40)
    assert.strictEqual(Result.getOrThrow(NodeId.decodeResult(upper)), "a".repeat(40))
    assert.strictEqual(Result.getOrThrow(NodeId.decodeResult("0123456789abcdef0123456789abcdef01234567")), "0123456789abcdef0123456789abcdef01234567")
  })

  it("decode rejects empty, short, 39-character and non-hex strings with distinct reasons", () => {
    assert.strictEqual(reason(NodeId.decodeResult("")), "empty")
    assert.strictEqual(reason(NodeId.decodeResult("foo")), "length")
    assert.strictEqual(reason(NodeId.decodeResult("a".repeat(39))), "length")
    assert.strictEqual(reason(NodeId.decodeResult("g" + "a".repeat(39))), "characters")
  })

  it("validate rejects empty, 00, 41 characters, non-hex and uppercase", () => {
    assert.strictEqual(reason(NodeId.validate("")), "empty")
    assert.strictEqual(reason(NodeId.validate("00")), "length")
    assert.strictEqual(reason(NodeId.validate("a".repeat(41))), "length")
    assert.strictEqual(reason(NodeId.validate("x".repeat(40))), "characters")
    assert.strictEqual(reason(NodeId.validate("A".repeat(40))), "characters")
    assert.strictEqual(reason(NodeId.validate("a".repeat(40))), "ok")
  })

  it("error messages are the original's", () => {
    const msg = (s: string) => Result.isFailure(NodeId.validate(s)) ? (NodeId.validate(s) as Result.Failure<never, NodeId.InvalidNodeId>).failure.message : ""
    assert.strictEqual(msg(""), "empty node ID")
    assert.strictEqual(msg("00"), "invalid node ID length 2, expected 40")
    assert.strictEqual(msg("A".repeat(40)), "node ID can only contain lowercased hex digits")
  })

  it.effect("decode fails in the error channel with InvalidNodeId", () =>
    Effect.gen(function* () {
      const err = yield* Effect.flip(NodeId.decode("nope"))
      assert.strictEqual(err._tag, "InvalidNodeId")
      assert.strictEqual(err.input, "nope")
    }))

  it("fromPublicKey of the key with secret foo gives the original's vector", () => {
    const key = NodeKey.fromSeed(createHash("sha256").update("foo").digest())
    assert.strictEqual(NodeId.fromPublicKey(key.publicKey), "045f5600654182cfeaccfe6cb19f0642e8a59898")
    assert.isTrue(Result.isSuccess(NodeId.validate(key.nodeId)))
  })

  it.runIf(hasFixture("tendermint-rs-vectors.json"))("fromPublicKey matches the tendermint-rs vector", () => {
    const v = readJsonFixture<{ node_id_from_pubkey: { ed25519_pubkey_hex: string; node_id: string } }>("tendermint-rs-vectors.json")
    assert.strictEqual(NodeId.fromPublicKey(hex(v.node_id_from_pubkey.ed25519_pubkey_hex)), v.node_id_from_pubkey.node_id)
  })

  it("toBytes decodes even-length hex of either case and rejects the rest", () => {
    assert.deepStrictEqual(Result.getOrThrow(NodeId.toBytes("")), new Uint8Array())
    assert.deepStrictEqual(Result.getOrThrow(NodeId.toBytes("01f0")), Uint8Array.of(1, 0xf0))
    assert.deepStrictEqual(Result.getOrThrow(NodeId.toBytes("01F0")), Uint8Array.of(1, 0xf0))
    assert.isTrue(Result.isFailure(NodeId.toBytes("01F")))
    assert.isTrue(Result.isFailure(NodeId.toBytes("01g0")))
  })

  it("arbitrary strings never throw: they decode or give InvalidNodeId", () => {
    fc.assert(fc.property(fc.string(), (s) => {
      const r = NodeId.decodeResult(s)
      return Result.isSuccess(r) ? NodeId.is(r.success) : r.failure._tag === "InvalidNodeId"
    }))
  })
})

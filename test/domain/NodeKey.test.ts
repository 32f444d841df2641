import { assert, describe, it } from "@effect/vitest"
import { Effect, Result } from "effect"
import * as fc from "fast-check"
import * as NodeKey from "../../src/domain/NodeKey.ts"

const seed = new Uint8Array(32).fill(7)

describe("NodeKey", () => {
  it("fromSeed is deterministic and derives the node ID from the public key", () => {
    const a = NodeKey.fromSeed(seed)
    const b = NodeKey.fromSeed(seed)
    assert.deepStrictEqual(a.publicKey, b.publicKey)
    assert.strictEqual(a.publicKey.length, 32)
    assert.strictEqual(a.nodeId, b.nodeId)
  })

  it("fromSeed rejects a seed that is not 32 bytes", () => {
    assert.throws(() => NodeKey.fromSeed(new Uint8Array(31)), /32 bytes/)
  })

  it.effect("generate gives distinct keys", () =>
    Effect.gen(function* () {
      const a = yield* NodeKey.generate()
      const b = yield* NodeKey.generate()
      assert.notStrictEqual(a.nodeId, b.nodeId)
    }))

  it("signatures verify with the public key and fail when anything changes", () => {
    const key = NodeKey.fromSeed(seed)
    const msg = new TextEncoder().encode("challenge")
    const sig = NodeKey.sign(key, msg)
    assert.strictEqual(sig.length, 64)
    assert.isTrue(NodeKey.verify(key.publicKey, msg, sig))
    const other = NodeKey.fromSeed(new Uint8Array(32).fill(8))
    assert.isFalse(NodeKey.verify(other.publicKey, msg, sig))
    const bad = Uint8Array.from(sig)
    bad[0] = bad[0]! ^ 1
    assert.isFalse(NodeKey.verify(key.publicKey, msg, bad))
    assert.isFalse(NodeKey.verify(key.publicKey.subarray(1), msg, sig))
  })

  it("node_key.json round trips in CometBFT's format", () => {
    const key = NodeKey.fromSeed(seed)
    const text = NodeKey.toJson(key)
    const parsed = JSON.parse(text)
    assert.strictEqual(parsed.priv_key.type, "tendermint/PrivKeyEd25519")
    assert.strictEqual(Buffer.from(parsed.priv_key.value, "base64").length, 64)
    const back = Result.getOrThrow(NodeKey.fromJson(text))
    assert.strictEqual(back.nodeId, key.nodeId)
  })

  it("a malformed node_key.json names the file and what is wrong", () => {
    const message = (text: string) => {
      const r = NodeKey.fromJson(text, "/home/x/config/node_key.json")
      return Result.isFailure(r) ? r.failure.message : "ok"
    }
    assert.match(message("{"), /\/home\/x\/config\/node_key.json is not valid JSON/)
    assert.match(message("{}"), /has no "priv_key"/)
    assert.match(message(`{"priv_key":{"type":"tendermint/PrivKeySecp256k1","value":""}}`), /not supported/)
    assert.match(message(`{"priv_key":{"type":"tendermint/PrivKeyEd25519","value":"!!"}}`), /base64/)
    assert.match(message(`{"priv_key":{"type":"tendermint/PrivKeyEd25519","value":"AAAA"}}`), /64 bytes/)
    const key = NodeKey.fromSeed(seed)
    const wrong = Buffer.concat([key.seed, new Uint8Array(32)]).toString("base64")
    assert.match(message(`{"priv_key":{"type":"tendermint/PrivKeyEd25519","value":"${wrong}"}}`), /does not match/)
  })

  it("arbitrary text never throws from fromJson", () => {
    fc.assert(fc.property(fc.string(), (s) => Result.isResult(NodeKey.fromJson(s))))
  })
})

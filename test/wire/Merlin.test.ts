import { assert, describe, it } from "@effect/vitest"
import { Transcript } from "../../src/wire/Merlin.ts"
import { hasFixture, readJsonFixture, toHex } from "../fixtures.ts"

interface MerlinVectors {
  readonly vectors: ReadonlyArray<{
    readonly name: string
    readonly transcript_label: string
    readonly ops?: ReadonlyArray<
      | { readonly op: "append_message"; readonly label: string; readonly message_utf8: string }
      | { readonly op: "challenge_bytes"; readonly label: string; readonly len: number; readonly expect_hex: string }
    >
    readonly expect_last_challenge_hex?: string
  }>
}

const FIXTURE = "merlin-vectors.json"
const encoder = new TextEncoder()
const vector = (name: string) => {
  const v = readJsonFixture<MerlinVectors>(FIXTURE).vectors.find((x) => x.name === name)
  if (v === undefined) throw new Error(`no Merlin vector ${name}`)
  return v
}

describe.runIf(hasFixture(FIXTURE))("Merlin transcript (merlin-vectors.json)", () => {
  it("simple: one message, one 32-byte challenge", () => {
    const v = vector("simple")
    const t = new Transcript(v.transcript_label)
    let challenges = 0
    for (const op of v.ops ?? []) {
      if (op.op === "append_message") {
        t.appendMessage(op.label, encoder.encode(op.message_utf8))
      } else {
        assert.strictEqual(toHex(t.challengeBytes(op.label, op.len)), op.expect_hex)
        challenges++
      }
    }
    assert.strictEqual(challenges, 1)
  })

  it("complex: 32 rounds of challenge, 1 KiB message and challenge fed back", () => {
    const v = vector("complex")
    const t = new Transcript(v.transcript_label)
    t.appendMessage("step1", encoder.encode("some data"))
    const data = new Uint8Array(1024).fill(99)
    let chl: Uint8Array = new Uint8Array(0)
    for (let i = 0; i < 32; i++) {
      chl = t.challengeBytes("challenge", 32)
      t.appendMessage("bigdata", data)
      t.appendMessage("challengedata", chl)
    }
    assert.strictEqual(toHex(chl), v.expect_last_challenge_hex)
  })

  it("string labels and their UTF-8 bytes give the same transcript", () => {
    const a = new Transcript("test protocol")
    const b = new Transcript(encoder.encode("test protocol"))
    a.appendMessage("some label", encoder.encode("some data"))
    b.appendMessage(encoder.encode("some label"), encoder.encode("some data"))
    assert.strictEqual(toHex(a.challengeBytes("challenge", 32)), toHex(b.challengeBytes(encoder.encode("challenge"), 32)))
  })
})

describe("Merlin transcript", () => {
  it("each challenge depends on the ones before it", () => {
    const t = new Transcript("x")
    assert.notStrictEqual(toHex(t.challengeBytes("c", 32)), toHex(t.challengeBytes("c", 32)))
  })

  it("rejects a length that does not fit in u32", () => {
    assert.throws(() => new Transcript("x").challengeBytes("c", -1), RangeError)
  })
})

import { assert, describe, it } from "@effect/vitest"
import * as fc from "fast-check"
import * as R from "../../src/wire/Reassembler.ts"
import { toHex } from "../fixtures.ts"
import { thrown } from "../helpers.ts"


const reassemblyError = (f: () => unknown): R.ReassemblyError => {
  const e = thrown(f)
  assert.instanceOf(e, R.ReassemblyError)
  return e as R.ReassemblyError
}

const bytes = (...xs: Array<number>): Uint8Array => Uint8Array.from(xs)

describe("Reassembler", () => {
  it("returns a one-packet message as the very same array (zero copy)", () => {
    const r = new R.Reassembler([{ id: 0x20, recvMessageCapacity: 100 }])
    const data = bytes(1, 2, 3)
    assert.strictEqual(r.onMsg(0x20, true, data), data)
  })

  it("joins pieces until eof, then starts afresh", () => {
    const r = new R.Reassembler([{ id: 1, recvMessageCapacity: 100, recvBufferCapacity: 2 }])
    assert.isUndefined(r.onMsg(1, false, bytes(1, 2)))
    assert.isUndefined(r.onMsg(1, false, bytes(3)))
    assert.strictEqual(r.bufferedBytes(1), 3)
    assert.strictEqual(toHex(r.onMsg(1, true, bytes(4, 5))!), "0102030405")
    assert.strictEqual(r.bufferedBytes(1), 0)
    const next = bytes(9)
    assert.strictEqual(r.onMsg(1, true, next), next)
  })

  it("sizes a message's buffer from the channel's previous one: no regrowth for equal sizes, no spare room kept for a smaller one", () => {
    const r = new R.Reassembler([{ id: 1, recvMessageCapacity: 1 << 20, recvBufferCapacity: 16 }])
    const send = (size: number) => {
      const piece = new Uint8Array(1000).fill(size & 0xff)
      let message: Uint8Array | undefined
      for (let sent = 0; sent < size; sent += 1000) message = r.onMsg(1, sent + 1000 >= size, piece.subarray(0, Math.min(1000, size - sent)))
      return message!
    }
    // The first grows by doubling from 16 bytes; the buffer may be larger than the message.
    assert.strictEqual(send(10_000).length, 10_000)
    const second = send(10_000)
    assert.strictEqual(second.length, 10_000)
    assert.strictEqual(second.buffer.byteLength, 10_000)
    assert.isTrue(second.every((b) => b === (10_000 & 0xff)))
    const small = send(3_000)
    assert.strictEqual(small.length, 3_000)
    assert.strictEqual(small.buffer.byteLength, 3_000)
  })

  it("delivers empty messages: an eof with no data, alone or after pieces", () => {
    const r = new R.Reassembler([{ id: 0, recvMessageCapacity: 10 }])
    assert.strictEqual(r.onMsg(0, true, new Uint8Array(0))!.length, 0)
    assert.isUndefined(r.onMsg(0, false, new Uint8Array(0)))
    assert.strictEqual(r.onMsg(0, true, new Uint8Array(0))!.length, 0)
    assert.isUndefined(r.onMsg(0, false, bytes(7)))
    assert.strictEqual(toHex(r.onMsg(0, true, new Uint8Array(0))!), "07")
  })

  it("keeps channels apart when their pieces interleave", () => {
    const r = new R.Reassembler([
      { id: 1, recvMessageCapacity: 100 },
      { id: 2, recvMessageCapacity: 100 }
    ])
    r.onMsg(1, false, bytes(1))
    r.onMsg(2, false, bytes(2))
    assert.strictEqual(toHex(r.onMsg(1, true, bytes(1))!), "0101")
    assert.strictEqual(toHex(r.onMsg(2, true, bytes(2))!), "0202")
  })

  it("does not keep references to the pieces it was given", () => {
    const r = new R.Reassembler([{ id: 1, recvMessageCapacity: 100 }])
    const piece = bytes(1, 2)
    r.onMsg(1, false, piece)
    piece.fill(0)
    assert.strictEqual(toHex(r.onMsg(1, true, bytes(3))!), "010203")
  })

  it("reassembles random messages cut into random pieces, up to exactly the capacity", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.uint8Array({ maxLength: 5000 }), fc.array(fc.nat(), { maxLength: 8 })), { maxLength: 10 }), (messages) => {
        const r = new R.Reassembler([{ id: 7, recvMessageCapacity: 5000, recvBufferCapacity: 64 }])
        for (const [message, cuts] of messages) {
          const points = [...new Set(cuts.map((c) => c % (message.length + 1)))].sort((a, b) => a - b)
          let prev = 0
          let got: Uint8Array | undefined
          for (const [i, p] of [...points, message.length].entries()) {
            got = r.onMsg(7, i === points.length, message.slice(prev, p))
            if (i < points.length) assert.isUndefined(got)
            prev = p
          }
          assert.strictEqual(toHex(got!), toHex(message))
        }
      }),
      { numRuns: 200 }
    )
  })

  it("refuses an unregistered or out-of-range channel as unknown-channel", () => {
    const r = new R.Reassembler([{ id: 1, recvMessageCapacity: 10 }])
    for (const ch of [0, 2, 255, -1, 256, 2 ** 31 - 1, -(2 ** 31)]) {
      const e = reassemblyError(() => r.onMsg(ch, true, bytes(1)))
      assert.strictEqual(e.reason, "unknown_channel", String(ch))
      assert.strictEqual(e.channelId, ch)
    }
  })

  it("refuses a piece that takes the message past the capacity, before copying it", () => {
    const r = new R.Reassembler([{ id: 1, recvMessageCapacity: 10 }])
    assert.strictEqual(reassemblyError(() => r.onMsg(1, true, new Uint8Array(11))).reason, "message_too_large")
    assert.isUndefined(r.onMsg(1, false, new Uint8Array(6)))
    assert.strictEqual(reassemblyError(() => r.onMsg(1, false, new Uint8Array(5))).reason, "message_too_large")
    assert.strictEqual(r.bufferedBytes(1), 6)
    // Exactly the capacity is fine.
    assert.strictEqual(r.onMsg(1, true, new Uint8Array(4))!.length, 10)
    const zero = new R.Reassembler([{ id: 0, recvMessageCapacity: 0 }])
    assert.strictEqual(zero.onMsg(0, true, new Uint8Array(0))!.length, 0)
    assert.strictEqual(reassemblyError(() => zero.onMsg(0, true, new Uint8Array(1))).reason, "message_too_large")
  })

  it("refuses bad descriptors with RangeError", () => {
    assert.throws(() => new R.Reassembler([{ id: 256, recvMessageCapacity: 1 }]), RangeError)
    assert.throws(() => new R.Reassembler([{ id: -1, recvMessageCapacity: 1 }]), RangeError)
    assert.throws(() => new R.Reassembler([{ id: 1, recvMessageCapacity: -1 }]), RangeError)
    assert.throws(() => new R.Reassembler([{ id: 1, recvMessageCapacity: 1, recvBufferCapacity: 1.5 }]), RangeError)
    assert.throws(() => new R.Reassembler([{ id: 1, recvMessageCapacity: 1 }, { id: 1, recvMessageCapacity: 2 }]), RangeError)
  })

  it("exports CometBFT's default capacities", () => {
    assert.strictEqual(R.DEFAULT_RECV_BUFFER_CAPACITY, 4096)
    assert.strictEqual(R.DEFAULT_RECV_MESSAGE_CAPACITY, 22020096)
  })
})

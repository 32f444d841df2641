import { assert, describe, it } from "@effect/vitest"
import { create } from "@bufbuild/protobuf"
import { sizeDelimitedEncode } from "@bufbuild/protobuf/wire"
import * as fc from "fast-check"
import { PacketSchema } from "../../src/proto/tendermint/p2p/conn_pb.ts"
import * as C from "../../src/wire/PacketCodec.ts"
import { PacketReader } from "../../src/wire/PacketReader.ts"
import { hex, toHex } from "../fixtures.ts"
import { split, thrown } from "../helpers.ts"


const packetReason = (f: () => unknown): C.PacketErrorReason => {
  const e = thrown(f)
  assert.instanceOf(e, C.PacketError)
  return (e as C.PacketError).reason
}

const plain = (p: C.Packet): unknown => (p._tag === "Msg" ? { ...p, data: toHex(p.data) } : p)

/** A random packet within the default 1024-byte payload, and its wire bytes from the generated encoder. */
const arbWirePacket = fc.oneof(
  { weight: 1, arbitrary: fc.constant<C.Packet>(C.PING) },
  { weight: 1, arbitrary: fc.constant<C.Packet>(C.PONG) },
  {
    weight: 8,
    arbitrary: fc
      .record({
        channelId: fc.integer({ min: 0, max: 127 }),
        eof: fc.boolean(),
        data: fc.oneof(fc.uint8Array({ maxLength: 30 }), fc.uint8Array({ minLength: 100, maxLength: 1024 }))
      })
      .map((m): C.Packet => ({ _tag: "Msg", ...m }))
  }
)

const wire = (p: C.Packet): Uint8Array =>
  sizeDelimitedEncode(
    PacketSchema,
    p._tag === "Ping"
      ? create(PacketSchema, { sum: { case: "packetPing", value: {} } })
      : p._tag === "Pong"
        ? create(PacketSchema, { sum: { case: "packetPong", value: {} } })
        : create(PacketSchema, { sum: { case: "packetMsg", value: { channelId: p.channelId, eof: p.eof, data: p.data } } })
  )


const readAll = (reader: PacketReader, chunks: ReadonlyArray<Uint8Array>): Array<C.Packet> => {
  const out: Array<C.Packet> = []
  for (const chunk of chunks) for (const p of reader.push(chunk)) out.push(p)
  return out
}

describe("PacketReader", () => {
  it("reads a stream of random packets split at random points, any number per chunk", () => {
    fc.assert(
      fc.property(fc.array(arbWirePacket, { minLength: 1, maxLength: 40 }), fc.array(fc.nat(), { maxLength: 60 }), (packets, cuts) => {
        const stream = Buffer.concat(packets.map(wire))
        const reader = new PacketReader()
        const got = readAll(reader, split(stream, cuts))
        assert.deepStrictEqual(got.map(plain), packets.map(plain))
        assert.isTrue(reader.atBoundary)
        assert.strictEqual(reader.bufferedBytes, 0)
      }),
      { numRuns: 300 }
    )
  })

  it("reads a stream fed one byte at a time", () => {
    const packets: Array<C.Packet> = [C.PING, { _tag: "Msg", channelId: 0x20, eof: true, data: new Uint8Array(1024).fill(9) }, C.PONG, { _tag: "Msg", channelId: 0, eof: false, data: new Uint8Array(0) }]
    const stream = Buffer.concat(packets.map(wire))
    const reader = new PacketReader()
    const got: Array<C.Packet> = []
    for (let i = 0; i < stream.length; i++) {
      for (const p of reader.push(stream.subarray(i, i + 1))) got.push(p)
      assert.isAtMost(reader.bufferedBytes, C.maxPacketMsgSize())
    }
    assert.deepStrictEqual(got.map(plain), packets.map(plain))
  })

  it("decodes a packet wholly inside one chunk in place, and copies one that straddles chunks", () => {
    const a = C.encodePacketMsg(1, true, Uint8Array.of(1, 2, 3))
    const b = C.encodePacketMsg(2, true, Uint8Array.of(4, 5, 6))
    const chunk1 = new Uint8Array([...a, ...b.subarray(0, 4)])
    const chunk2 = b.slice(4)
    const reader = new PacketReader()
    const first = [...reader.push(chunk1)]
    assert.strictEqual(first.length, 1)
    const p1 = first[0]!
    assert.isTrue(p1._tag === "Msg" && p1.data.buffer === chunk1.buffer)
    assert.strictEqual(reader.bufferedBytes, 4 - 1)
    const second = [...reader.push(chunk2)]
    assert.strictEqual(second.length, 1)
    const p2 = second[0]!
    assert.isTrue(p2._tag === "Msg" && p2.data.buffer !== chunk1.buffer && p2.data.buffer !== chunk2.buffer)
    assert.deepStrictEqual(plain(p2), { _tag: "Msg", channelId: 2, eof: true, data: "040506" })
  })

  it("next() returns undefined once the pushed bytes are used up, keeping a split length prefix", () => {
    const bytes = C.encodePacketMsg(3, true, new Uint8Array(200))
    assert.strictEqual(bytes[0]! & 0x80, 0x80) // a two-byte prefix
    const reader = new PacketReader()
    reader.push(bytes.subarray(0, 1))
    assert.isUndefined(reader.next())
    assert.isFalse(reader.atBoundary)
    assert.strictEqual(reader.bufferedBytes, 0)
    reader.push(bytes.subarray(1))
    const p = reader.next()
    assert.isTrue(p !== undefined && p._tag === "Msg" && p.data.length === 200)
    assert.isUndefined(reader.next())
    assert.isTrue(reader.atBoundary)
  })

  it("accepts a packet of exactly maxPacketMsgSize and refuses one byte more before buffering its body", () => {
    const max = C.encodePacketMsg(1, true, new Uint8Array(1024))
    assert.strictEqual(max.length, 2 + 1034)
    assert.strictEqual([...new PacketReader().push(max)].length, 1)
    // 1035 announced: refused on the prefix alone.
    const reader = new PacketReader()
    assert.strictEqual(packetReason(() => reader.push(hex("8b08")).next()), "too_large")
    assert.strictEqual(reader.bufferedBytes, 0)
    // Refused even when the prefix arrives a byte at a time, as soon as it cannot be <= 1034.
    const r2 = new PacketReader()
    r2.push(hex("8b"))
    assert.isUndefined(r2.next())
    assert.strictEqual(packetReason(() => r2.push(hex("08")).next()), "too_large")
    // A huge prefix is refused at its first bytes.
    assert.strictEqual(packetReason(() => new PacketReader().push(hex("ffffffffffffffffff01")).next()), "too_large")
    // An over-long prefix (non-minimal zeros) overflows.
    assert.strictEqual(packetReason(() => new PacketReader().push(hex("8080808080808080808000")).next()), "too_large")
  })

  it("honours a custom maxPacketSize (e.g. a 1400-byte payload)", () => {
    const big = C.encodePacketMsg(1, true, new Uint8Array(1400))
    assert.strictEqual(packetReason(() => [...new PacketReader().push(big)]), "too_large")
    assert.strictEqual([...new PacketReader({ maxPacketSize: C.maxPacketMsgSize(1400) }).push(big)].length, 1)
    assert.throws(() => new PacketReader({ maxPacketSize: -1 }), RangeError)
  })

  it("passes decode errors through: an empty packet is an unknown packet type, garbage an encoding error", () => {
    assert.strictEqual(packetReason(() => [...new PacketReader().push(hex("00"))]), "unknown_packet_type")
    assert.strictEqual(packetReason(() => [...new PacketReader().push(hex("022000"))]), "unknown_packet_type")
    assert.strictEqual(packetReason(() => [...new PacketReader().push(hex("020000"))]), "encoding")
    // Also for a straddling packet.
    const r = new PacketReader()
    assert.deepStrictEqual([...r.push(hex("0300"))], [])
    assert.strictEqual(packetReason(() => [...r.push(hex("0000"))]), "encoding")
  })

  it("refuses a push before the previous chunk was drained", () => {
    const reader = new PacketReader()
    reader.push(Buffer.concat([C.encodePing(), C.encodePong()]))
    assert.strictEqual(reader.next(), C.PING)
    assert.throws(() => reader.push(C.encodePing()), RangeError)
    assert.strictEqual(reader.next(), C.PONG)
    assert.isUndefined(reader.next())
    assert.strictEqual(reader.push(C.encodePing()).next(), C.PING)
  })

  it("never throws anything but a PacketError on random streams", () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 50 }), { maxLength: 10 }), (chunks) => {
        try {
          readAll(new PacketReader(), chunks)
        } catch (e) {
          assert.instanceOf(e, C.PacketError)
        }
      }),
      { numRuns: 2000 }
    )
  })
})

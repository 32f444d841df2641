import { assert, describe, it } from "@effect/vitest"
import { create, fromBinary, toBinary } from "@bufbuild/protobuf"
import { sizeDelimitedEncode } from "@bufbuild/protobuf/wire"
import * as fc from "fast-check"
import { PacketMsgSchema, PacketSchema, type Packet as ProtoPacket } from "../../src/proto/tendermint/p2p/conn_pb.ts"
import * as C from "../../src/wire/PacketCodec.ts"
import { hasFixture, hex, readJsonFixture, toHex } from "../fixtures.ts"
import { thrown } from "../helpers.ts"

const VECTORS = "protobuf-vectors.json"

interface Vectors {
  readonly conn_packet_vectors: ReadonlyArray<{ readonly name: string; readonly hex: string }>
}


const packetReason = (f: () => unknown): C.PacketErrorReason => {
  const e = thrown(f)
  assert.instanceOf(e, C.PacketError)
  return (e as C.PacketError).reason
}

const protoMsg = (channelId: number, eof: boolean, data: Uint8Array): ProtoPacket =>
  create(PacketSchema, { sum: { case: "packetMsg", value: { channelId, eof, data } } })

const arbMsg = fc.record({
  channelId: fc.integer({ min: 0, max: 255 }),
  eof: fc.boolean(),
  data: fc.oneof(fc.uint8Array({ maxLength: 40 }), fc.uint8Array({ minLength: 100, maxLength: 2100 }))
})

/** Our decoded packet in a comparable shape. */
const plain = (p: C.Packet): unknown => (p._tag === "Msg" ? { ...p, data: toHex(p.data) } : p)

const dec = (h: string): C.Packet => C.decodePacket(hex(h))

const uvarint = (n: number): Uint8Array => {
  const out: Array<number> = []
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80)
    n = Math.floor(n / 0x80)
  }
  out.push(n)
  return Uint8Array.from(out)
}

/** The fields of a PacketMsg (no Packet wrapper), from the generated encoder. */
const encodeMsgFields = (channelId: number, eof: boolean, data: Uint8Array): Uint8Array =>
  toBinary(PacketMsgSchema, create(PacketMsgSchema, { channelId, eof, data }))

describe("PacketCodec encoding", () => {
  it.skipIf(!hasFixture(VECTORS))("matches CometBFT's TestConnVectors", () => {
    const vectors = readJsonFixture<Vectors>(VECTORS).conn_packet_vectors
    const byName = new Map(vectors.map((v) => [v.name, v.hex]))
    assert.strictEqual(toHex(C.encodePing()), "02" + byName.get("PacketPing"))
    assert.strictEqual(toHex(C.encodePong()), "02" + byName.get("PacketPong"))
    const msg = C.encodePacketMsg(1, false, new TextEncoder().encode("data transmitted over the wire"))
    assert.strictEqual(toHex(msg), "24" + byName.get("PacketMsg"))
    assert.deepStrictEqual(plain(C.decodePacket(hex(byName.get("PacketMsg")!))), {
      _tag: "Msg",
      channelId: 1,
      eof: false,
      data: toHex(new TextEncoder().encode("data transmitted over the wire"))
    })
    assert.strictEqual(C.decodePacket(hex(byName.get("PacketPing")!)), C.PING)
    assert.strictEqual(C.decodePacket(hex(byName.get("PacketPong")!)), C.PONG)
  })

  it("ping and pong are 02 0a 00 and 02 12 00, as the generated encoder", () => {
    assert.strictEqual(toHex(C.encodePing()), "020a00")
    assert.strictEqual(toHex(C.encodePong()), "021200")
    assert.strictEqual(toHex(C.encodePing()), toHex(sizeDelimitedEncode(PacketSchema, create(PacketSchema, { sum: { case: "packetPing", value: {} } }))))
    assert.strictEqual(toHex(C.encodePong()), toHex(sizeDelimitedEncode(PacketSchema, create(PacketSchema, { sum: { case: "packetPong", value: {} } }))))
    const target = new Uint8Array(8).fill(0xee)
    assert.strictEqual(C.encodePingInto(target, 1), 4)
    assert.strictEqual(C.encodePongInto(target, 4), 7)
    assert.strictEqual(toHex(target), "ee020a00021200ee")
    assert.throws(() => C.encodePingInto(new Uint8Array(2), 0), RangeError)
    assert.throws(() => C.encodePongInto(new Uint8Array(4), 2), RangeError)
  })

  it("omits zero values like proto3: channel 0, eof=false and empty data emit no field", () => {
    assert.strictEqual(toHex(C.encodePacketMsg(0, false, new Uint8Array(0))), "021a00")
    assert.strictEqual(toHex(C.encodePacketMsg(1, true, new Uint8Array(0))), "061a0408011001")
    assert.strictEqual(toHex(C.encodePacketMsg(0, true, Uint8Array.of(7))), "071a0510011a0107")
    assert.strictEqual(toHex(C.encodePacketMsg(255, true, Uint8Array.of(0, 0))), "0b1a0908ff0110011a020000")
    for (const [ch, eof] of [[0, false], [1, true], [0, true], [128, false]] as const) {
      assert.strictEqual(
        toHex(C.encodePacketMsg(ch, eof, new Uint8Array(0))),
        toHex(sizeDelimitedEncode(PacketSchema, protoMsg(ch, eof, new Uint8Array(0)))),
        `${ch} ${eof}`
      )
    }
  })

  it("is byte for byte the generated sizeDelimitedEncode(PacketSchema, …) for random PacketMsgs", () => {
    fc.assert(
      fc.property(arbMsg, ({ channelId, eof, data }) => {
        const ours = C.encodePacketMsg(channelId, eof, data)
        const theirs = sizeDelimitedEncode(PacketSchema, protoMsg(channelId, eof, data))
        assert.strictEqual(toHex(ours), toHex(theirs))
        assert.strictEqual(C.packetMsgWireLength(channelId, eof, data.length), theirs.length)
        assert.strictEqual(C.packetMsgBodyLength(channelId, eof, data.length), toBinary(PacketSchema, protoMsg(channelId, eof, data)).length)
      }),
      { numRuns: 500 }
    )
  })

  it("encodePacketMsgInto packs many packets into one buffer, from regions of a larger message", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(arbMsg, fc.nat(), fc.nat()), { maxLength: 20 }),
        (items) => {
          const parts = items.map(([m, a, b]) => {
            const start = m.data.length === 0 ? 0 : a % (m.data.length + 1)
            const end = start + (b % (m.data.length - start + 1))
            return { ...m, start, end }
          })
          const total = parts.reduce((n, p) => n + C.packetMsgWireLength(p.channelId, p.eof, p.end - p.start), 0)
          const target = new Uint8Array(total + 4).fill(0xee)
          let o = 2
          for (const p of parts) o = C.encodePacketMsgInto(target, o, p.channelId, p.eof, p.data, p.start, p.end)
          assert.strictEqual(o, total + 2)
          const expected = parts.map((p) => toHex(sizeDelimitedEncode(PacketSchema, protoMsg(p.channelId, p.eof, p.data.slice(p.start, p.end))))).join("")
          assert.strictEqual(toHex(target), "eeee" + expected + "eeee")
        }
      ),
      { numRuns: 200 }
    )
  })

  it("maxPacketMsgSize is 1034 for the default 1024-byte payload, the generated size of a full eof packet on channel 1", () => {
    assert.strictEqual(C.maxPacketMsgSize(), 1034)
    assert.strictEqual(C.maxPacketMsgSize(1024), 1034)
    assert.strictEqual(toBinary(PacketSchema, protoMsg(1, true, new Uint8Array(1024))).length, 1034)
    assert.strictEqual(C.maxPacketMsgSize(1400), toBinary(PacketSchema, protoMsg(1, true, new Uint8Array(1400))).length)
    assert.strictEqual(C.maxPacketMsgSize(100), toBinary(PacketSchema, protoMsg(1, true, new Uint8Array(100))).length)
  })

  it("refuses channels outside 0..255, bad ranges and targets without room", () => {
    for (const ch of [-1, 256, 1.5, Number.NaN]) {
      assert.throws(() => C.encodePacketMsg(ch, true, new Uint8Array(1)), RangeError)
      assert.throws(() => C.packetMsgWireLength(ch, true, 1), RangeError)
    }
    const data = new Uint8Array(10)
    assert.throws(() => C.encodePacketMsgInto(new Uint8Array(100), 0, 1, true, data, 5, 11), RangeError)
    assert.throws(() => C.encodePacketMsgInto(new Uint8Array(100), 0, 1, true, data, 6, 5), RangeError)
    assert.throws(() => C.encodePacketMsgInto(new Uint8Array(100), 0, 1, true, data, -1, 5), RangeError)
    const need = C.packetMsgWireLength(1, true, 10)
    assert.throws(() => C.encodePacketMsgInto(new Uint8Array(need - 1), 0, 1, true, data), RangeError)
    assert.throws(() => C.encodePacketMsgInto(new Uint8Array(need), 1, 1, true, data), RangeError)
    assert.strictEqual(C.encodePacketMsgInto(new Uint8Array(need), 0, 1, true, data), need)
    assert.throws(() => C.packetMsgBodyLength(1, true, -1), RangeError)
  })
})

describe("PacketCodec decoding", () => {
  it("decodes whatever the generated encoder produces", () => {
    const arbPacket = fc.oneof(
      fc.constant(create(PacketSchema, { sum: { case: "packetPing", value: {} } })),
      fc.constant(create(PacketSchema, { sum: { case: "packetPong", value: {} } })),
      arbMsg.map(({ channelId, eof, data }) => protoMsg(channelId, eof, data))
    )
    fc.assert(
      fc.property(arbPacket, (p) => {
        const decoded = C.decodePacket(toBinary(PacketSchema, p))
        switch (p.sum.case) {
          case "packetPing":
            assert.strictEqual(decoded, C.PING)
            break
          case "packetPong":
            assert.strictEqual(decoded, C.PONG)
            break
          case "packetMsg":
            assert.deepStrictEqual(plain(decoded), { _tag: "Msg", channelId: p.sum.value.channelId, eof: p.sum.value.eof, data: toHex(p.sum.value.data) })
            break
          default:
            assert.fail("unexpected case")
        }
      }),
      { numRuns: 500 }
    )
  })

  it("returns data as a view of the input, not a copy", () => {
    const body = toBinary(PacketSchema, protoMsg(3, true, Uint8Array.of(1, 2, 3)))
    const buf = new Uint8Array(body.length + 5)
    buf.set(body, 5)
    const p = C.decodePacket(buf, 5, buf.length)
    assert.strictEqual(p._tag, "Msg")
    if (p._tag !== "Msg") return
    assert.strictEqual(p.data.buffer, buf.buffer)
    assert.strictEqual(toHex(p.data), "010203")
  })

  it("decodes a PacketMsg with no fields as channel 0, eof false, empty data (and an empty one for absent data)", () => {
    assert.deepStrictEqual(plain(dec("1a00")), { _tag: "Msg", channelId: 0, eof: false, data: "" })
    assert.deepStrictEqual(plain(dec("1a0408011001")), { _tag: "Msg", channelId: 1, eof: true, data: "" })
  })

  it("keeps the low 32 bits of channel_id as a signed int32 and any non-zero eof as true, as Go", () => {
    const neg = toBinary(PacketSchema, protoMsg(-1, true, new Uint8Array(0)))
    assert.deepStrictEqual(plain(C.decodePacket(neg)), { _tag: "Msg", channelId: -1, eof: true, data: "" })
    // channel_id = 2^32 + 5 as a 64-bit varint: Go's int32 decode keeps 5.
    assert.deepStrictEqual(plain(dec("1a06" + "0885808080" + "10")), { _tag: "Msg", channelId: 5, eof: false, data: "" })
    assert.deepStrictEqual(plain(dec("1a08" + "0880808080" + "10" + "1002")), { _tag: "Msg", channelId: 0, eof: true, data: "" })
    assert.deepStrictEqual(plain(dec("1a06" + "0880808080" + "08")), { _tag: "Msg", channelId: -(2 ** 31), eof: false, data: "" })
    assert.deepStrictEqual(plain(dec("1a03" + "108001")), { _tag: "Msg", channelId: 0, eof: true, data: "" })
    assert.deepStrictEqual(plain(dec("1a03" + "108000")), { _tag: "Msg", channelId: 0, eof: false, data: "" })
    assert.deepStrictEqual(plain(dec("1a06" + "08ffffffff07")), { _tag: "Msg", channelId: 0x7fffffff, eof: false, data: "" })
  })

  it("skips unknown fields of every wire type at every level, as gogoproto does", () => {
    const unknown = [
      "2001", // field 4 varint
      "29" + "0102030405060708", // field 5 fixed64
      "32" + "03abcdef", // field 6 bytes
      "3d" + "01020304", // field 7 fixed32
      "43" + "0801" + "1a00" + "44", // field 8 group holding fields
      "4b" + "53" + "54" + "4c", // nested groups
      "f8ffffff0f01" // field 2^29-1 varint (5-byte tag)
    ].join("")
    // Around the Packet's oneof field
    assert.deepStrictEqual(plain(dec(unknown + "1a020802" + unknown)), { _tag: "Msg", channelId: 2, eof: false, data: "" })
    // Inside a PacketMsg
    const inner = unknown + "0803" + unknown + "1001" + "1a0161" + unknown
    const innerLen = (inner.length / 2).toString(16).padStart(2, "0")
    assert.deepStrictEqual(plain(dec("1a" + innerLen + inner)), { _tag: "Msg", channelId: 3, eof: true, data: "61" })
    // Inside a ping or pong
    const emptyLen = (unknown.length / 2).toString(16).padStart(2, "0")
    assert.strictEqual(dec("0a" + emptyLen + unknown), C.PING)
    assert.strictEqual(dec("12" + emptyLen + unknown), C.PONG)
    // protobuf-es agrees
    const theirs = fromBinary(PacketSchema, hex("1a" + innerLen + inner))
    assert.strictEqual(theirs.sum.case, "packetMsg")
  })

  it("lets the last field win: repeated oneof members and repeated PacketMsg fields", () => {
    assert.strictEqual(dec("0a00" + "1200"), C.PONG)
    assert.strictEqual(dec("1a020801" + "0a00"), C.PING)
    assert.deepStrictEqual(plain(dec("0a00" + "1a020801")), { _tag: "Msg", channelId: 1, eof: false, data: "" })
    assert.deepStrictEqual(plain(dec("1a020801" + "1a021001")), { _tag: "Msg", channelId: 0, eof: true, data: "" })
    assert.deepStrictEqual(plain(dec("1a0a" + "0801" + "0802" + "1a0161" + "1a0162")), { _tag: "Msg", channelId: 2, eof: false, data: "62" })
  })

  it("an empty packet, or one with only unknown fields, is an unknown packet type", () => {
    assert.strictEqual(packetReason(() => dec("")), "unknown_packet_type")
    assert.strictEqual(packetReason(() => dec("2000")), "unknown_packet_type")
    assert.strictEqual(packetReason(() => dec("2200" + "2a0100")), "unknown_packet_type")
  })

  it("refuses malformed packets as encoding errors", () => {
    const bad: Record<string, string> = {
      "truncated length": "1a05080110",
      "length past end": "1a7f",
      "truncated field in msg": "1a0108",
      "data past the msg's end": "1a031a0561",
      "field number 0": "0000",
      "field number 0 in msg": "1a020000",
      "end group at top level": "0c",
      "end group in msg": "1a010c",
      "unmatched end group while skipping": "43" + "4c" + "4c",
      "unterminated group": "43" + "0801",
      "illegal wire type 6": "26",
      "illegal wire type 7": "1a0107",
      "wire type 0 for packet_msg": "1801",
      "wire type 0 for packet_ping": "0800",
      "wire type 2 for channel_id": "1a020a00",
      "wire type 2 for eof": "1a021200",
      "wire type 0 for data": "1a021800",
      "11-byte varint": "1a0b08" + "80".repeat(10),
      "11-byte tag": "80".repeat(10) + "01",
      "truncated fixed64": "1a03" + "29" + "0102",
      "truncated fixed32": "1a03" + "2d" + "0102",
      "truncated tag": "1a0180",
      "malformed ping body": "0a02fa01",
      "huge length": "1affffffffffffffffff01"
    }
    for (const [name, h] of Object.entries(bad)) assert.strictEqual(packetReason(() => dec(h)), "encoding", name)
  })

  it("never throws anything but a PacketError on random bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        try {
          C.decodePacket(bytes)
        } catch (e) {
          assert.instanceOf(e, C.PacketError)
        }
      }),
      { numRuns: 5000 }
    )
  })

  it("decodes generated packets with random unknown fields interleaved, like protobuf-es", () => {
    /** An unknown field (numbers 4..2000) of a random wire type, as hex. */
    const arbUnknown = fc
      .tuple(fc.integer({ min: 4, max: 2000 }), fc.constantFrom(0, 1, 2, 5), fc.uint8Array({ maxLength: 20 }), fc.maxSafeNat())
      .map(([field, wt, bytes, n]) => {
        const tag = toHex(uvarint(field * 8 + wt))
        switch (wt) {
          case 0:
            return tag + toHex(uvarint(n))
          case 1:
            return tag + "0102030405060708"
          case 2:
            return tag + toHex(uvarint(bytes.length)) + toHex(bytes)
          default:
            return tag + "01020304"
        }
      })
    const arbUnknowns = fc.array(arbUnknown, { maxLength: 3 }).map((xs) => xs.join(""))
    fc.assert(
      fc.property(arbMsg, arbUnknowns, arbUnknowns, arbUnknowns, arbUnknowns, ({ channelId, eof, data }, u1, u2, u3, u4) => {
        const msg = u1 + toHex(encodeMsgFields(channelId, eof, data)) + u2
        const body = u3 + "1a" + toHex(uvarint(msg.length / 2)) + msg + u4
        const ours = C.decodePacket(hex(body))
        assert.deepStrictEqual(plain(ours), { _tag: "Msg", channelId, eof, data: toHex(data) })
        const theirs = fromBinary(PacketSchema, hex(body))
        assert.strictEqual(theirs.sum.case, "packetMsg")
      }),
      { numRuns: 300 }
    )
  })

  it("refuses a bad range with RangeError", () => {
    assert.throws(() => C.decodePacket(new Uint8Array(4), 3, 2), RangeError)
    assert.throws(() => C.decodePacket(new Uint8Array(4), 0, 5), RangeError)
  })
})

import { assert, describe, it } from "@effect/vitest"
import { create } from "@bufbuild/protobuf"
import { sizeDelimitedEncode } from "@bufbuild/protobuf/wire"
import { PacketSchema } from "../../src/proto/tendermint/p2p/conn_pb.ts"
import { ChannelScheduler, NUM_BATCH_PACKET_MSGS } from "../../src/wire/ChannelScheduler.ts"
import { packetMsgWireLength, type MsgPacket } from "../../src/wire/PacketCodec.ts"
import { PacketReader } from "../../src/wire/PacketReader.ts"
import { toHex } from "../fixtures.ts"

/** Runs one fill into a fresh buffer and decodes what it wrote. */
const fillOnce = (s: ChannelScheduler, maxPackets?: number, maxBytes = 64 * 1024): { bytes: Uint8Array; packets: Array<MsgPacket> } => {
  const target = new Uint8Array(maxBytes)
  const end = s.fill(target, 0, maxBytes, maxPackets)
  const bytes = target.subarray(0, end)
  const packets: Array<MsgPacket> = []
  for (const p of new PacketReader({ maxPacketSize: 1 << 20 }).push(bytes)) {
    if (p._tag !== "Msg") assert.fail("scheduler wrote a non-msg packet")
    packets.push(p)
  }
  return { bytes, packets }
}

const generated = (channelId: number, eof: boolean, data: Uint8Array): string =>
  toHex(sizeDelimitedEncode(PacketSchema, create(PacketSchema, { sum: { case: "packetMsg", value: { channelId, eof, data } } })))

describe("ChannelScheduler", () => {
  it("cuts a message into 1024-byte pieces, the last one eof, byte for byte as the generated encoder", () => {
    const s = new ChannelScheduler([{ id: 0x30, priority: 5 }])
    const message = Uint8Array.from({ length: 2500 }, (_, i) => i & 0xff)
    assert.isTrue(s.tryEnqueue(0x30, message))
    const { bytes, packets } = fillOnce(s)
    assert.deepStrictEqual(packets.map((p) => [p.channelId, p.eof, p.data.length]), [
      [0x30, false, 1024],
      [0x30, false, 1024],
      [0x30, true, 452]
    ])
    assert.strictEqual(
      toHex(bytes),
      generated(0x30, false, message.subarray(0, 1024)) + generated(0x30, false, message.subarray(1024, 2048)) + generated(0x30, true, message.subarray(2048))
    )
    assert.isFalse(s.hasPending)
  })

  it("sends a message of exactly the payload size as one eof packet, and an empty message as one eof packet with no data", () => {
    const s = new ChannelScheduler([{ id: 1, priority: 1, sendQueueCapacity: 2 }])
    s.tryEnqueue(1, new Uint8Array(1024))
    s.tryEnqueue(1, new Uint8Array(0))
    const { bytes, packets } = fillOnce(s)
    assert.deepStrictEqual(packets.map((p) => [p.eof, p.data.length]), [[true, 1024], [true, 0]])
    assert.isTrue(toHex(bytes).endsWith("061a0408011001"))
  })

  it("PEX (channel 0) packets carry no channel field", () => {
    const s = new ChannelScheduler([{ id: 0, priority: 1 }])
    s.tryEnqueue(0, Uint8Array.of(0x0a, 0x00))
    assert.strictEqual(toHex(fillOnce(s).bytes), "081a0610011a020a00")
  })

  it("honours maxPacketMsgPayloadSize", () => {
    const s = new ChannelScheduler([{ id: 1, priority: 1 }], { maxPacketMsgPayloadSize: 1400 })
    s.tryEnqueue(1, new Uint8Array(3000))
    assert.deepStrictEqual(fillOnce(s).packets.map((p) => p.data.length), [1400, 1400, 200])
    assert.throws(() => new ChannelScheduler([], { maxPacketMsgPayloadSize: 0 }), RangeError)
  })

  it("writes at most numBatchPacketMsgs (10) packets per fill by default, or maxPackets", () => {
    const s = new ChannelScheduler([{ id: 1, priority: 1 }])
    s.tryEnqueue(1, new Uint8Array(20 * 1024))
    assert.strictEqual(NUM_BATCH_PACKET_MSGS, 10)
    assert.strictEqual(fillOnce(s).packets.length, 10)
    assert.strictEqual(fillOnce(s, 3).packets.length, 3)
    assert.strictEqual(fillOnce(s, 0).packets.length, 0)
    assert.strictEqual(fillOnce(s).packets.length, 7)
    assert.strictEqual(fillOnce(s).packets.length, 0)
  })

  it("stops before a packet that does not fit in maxBytes and sends it on the next fill", () => {
    const s = new ChannelScheduler([{ id: 1, priority: 1 }])
    s.tryEnqueue(1, new Uint8Array(1500))
    const target = new Uint8Array(3000).fill(0xee)
    assert.strictEqual(s.maxPacketWireLength, 1036)
    const first = packetMsgWireLength(1, false, 1024)
    assert.strictEqual(first, 1034)
    const end = s.fill(target, 5, first - 1)
    assert.strictEqual(end, 5)
    assert.strictEqual(target[5], 0xee)
    const end2 = s.fill(target, 5, first)
    assert.strictEqual(end2, 5 + first)
    const end3 = s.fill(target, end2, 3000 - end2)
    assert.strictEqual(end3 - end2, packetMsgWireLength(1, true, 476))
    assert.isFalse(s.hasPending)
  })

  it("tryEnqueue returns false when the channel's queue is full; the message being cut does not count", () => {
    const s = new ChannelScheduler([{ id: 1, priority: 1 }, { id: 2, priority: 1, sendQueueCapacity: 2 }])
    assert.isTrue(s.tryEnqueue(1, new Uint8Array(3000)))
    assert.isFalse(s.tryEnqueue(1, new Uint8Array(1)))
    assert.isFalse(s.canEnqueue(1))
    assert.isTrue(s.tryEnqueue(2, new Uint8Array(1)))
    assert.isTrue(s.tryEnqueue(2, new Uint8Array(1)))
    assert.isFalse(s.tryEnqueue(2, new Uint8Array(1)))
    fillOnce(s, 1) // channel 1 starts its message
    assert.isTrue(s.canEnqueue(1))
    assert.isTrue(s.tryEnqueue(1, new Uint8Array(5)))
    assert.strictEqual(s.queuedMessages(1), 2)
    assert.strictEqual(s.queuedBytes(1), 3000 - 1024 + 5)
    assert.strictEqual(s.queuedMessages(2), 2)
    assert.strictEqual(s.queuedBytes(2), 2)
    assert.deepStrictEqual(
      s.stats().map((c) => [c.id, c.priority, c.queuedMessages, c.queuedBytes]),
      [
        [1, 1, 2, 3000 - 1024 + 5],
        [2, 1, 2, 2]
      ]
    )
    assert.isTrue(s.hasPending)
    while (s.hasPending) fillOnce(s)
    assert.deepStrictEqual(s.stats().map((c) => [c.queuedMessages, c.queuedBytes]), [[0, 0], [0, 0]])
  })

  it("counts each packet's bytes, length prefix included, in recentlySent, and decay() multiplies by 0.8 (truncating)", () => {
    const s = new ChannelScheduler([{ id: 1, priority: 1 }])
    s.tryEnqueue(1, new Uint8Array(1024))
    fillOnce(s)
    assert.strictEqual(s.recentlySent(1), 1036)
    s.decay()
    assert.strictEqual(s.recentlySent(1), 828) // floor(828.8)
    s.decay()
    assert.strictEqual(s.recentlySent(1), 662) // floor(662.4)
    s.tryEnqueue(1, new Uint8Array(0))
    fillOnce(s)
    assert.strictEqual(s.recentlySent(1), 662 + 7)
    for (let i = 0; i < 40; i++) s.decay()
    assert.strictEqual(s.recentlySent(1), 0)
  })

  it("breaks ties by registration order, not channel id", () => {
    const s = new ChannelScheduler([{ id: 9, priority: 2 }, { id: 3, priority: 2 }, { id: 5, priority: 2 }])
    for (const id of [3, 5, 9]) s.tryEnqueue(id, new Uint8Array(10))
    assert.deepStrictEqual(fillOnce(s).packets.map((p) => p.channelId), [9, 3, 5])
    // Equal, non-zero ratios tie too: 1:1 ratio after equal sends.
    const t = new ChannelScheduler([{ id: 2, priority: 1 }, { id: 1, priority: 1 }])
    t.tryEnqueue(2, new Uint8Array(10))
    t.tryEnqueue(1, new Uint8Array(10))
    fillOnce(t)
    t.tryEnqueue(1, new Uint8Array(10))
    t.tryEnqueue(2, new Uint8Array(10))
    assert.deepStrictEqual(fillOnce(t, 1).packets.map((p) => p.channelId), [2])
  })

  it("picks the channel with the least recentlySent / priority", () => {
    const s = new ChannelScheduler([{ id: 1, priority: 1 }, { id: 2, priority: 10 }], {})
    s.tryEnqueue(1, new Uint8Array(100))
    fillOnce(s)
    // Channel 1 sent 109 bytes at priority 1 (ratio 109); channel 2 wins until it sent over 1090 bytes.
    s.tryEnqueue(1, new Uint8Array(100))
    s.tryEnqueue(2, new Uint8Array(5000))
    assert.deepStrictEqual(fillOnce(s, 3).packets.map((p) => p.channelId), [2, 2, 1])
  })

  it("with priorities 1 and 5 and both channels saturated, the bytes sent converge to 1:5, with or without decay", () => {
    for (const decayEvery of [0, 7]) {
      const s = new ChannelScheduler([{ id: 1, priority: 1, sendQueueCapacity: 4 }, { id: 2, priority: 5, sendQueueCapacity: 4 }])
      const sent = new Map<number, number>([[1, 0], [2, 0]])
      const target = new Uint8Array(16 * 1024)
      const reader = new PacketReader()
      for (let round = 0; round < 3000; round++) {
        for (const id of [1, 2]) while (s.tryEnqueue(id, new Uint8Array(3000 + round))) {}
        if (decayEvery > 0 && round % decayEvery === 0) s.decay()
        const end = s.fill(target, 0)
        for (const p of reader.push(target.subarray(0, end))) {
          if (p._tag !== "Msg") continue
          sent.set(p.channelId, sent.get(p.channelId)! + packetMsgWireLength(p.channelId, p.eof, p.data.length))
        }
      }
      if (decayEvery === 0) assert.deepStrictEqual([s.recentlySent(1), s.recentlySent(2)], [sent.get(1), sent.get(2)])
      const ratio = sent.get(2)! / sent.get(1)!
      assert.approximately(ratio, 5, 0.05, `decayEvery=${decayEvery}: ratio ${ratio}`)
    }
  })

  it("refuses bad descriptors, unknown channels and bad regions with RangeError", () => {
    assert.throws(() => new ChannelScheduler([{ id: 256, priority: 1 }]), RangeError)
    assert.throws(() => new ChannelScheduler([{ id: 1, priority: 0 }]), RangeError)
    assert.throws(() => new ChannelScheduler([{ id: 1, priority: 1.5 }]), RangeError)
    assert.throws(() => new ChannelScheduler([{ id: 1, priority: 1, sendQueueCapacity: 0 }]), RangeError)
    assert.throws(() => new ChannelScheduler([{ id: 1, priority: 1 }, { id: 1, priority: 2 }]), RangeError)
    const s = new ChannelScheduler([{ id: 1, priority: 1 }])
    assert.throws(() => s.tryEnqueue(2, new Uint8Array(1)), RangeError)
    assert.throws(() => s.tryEnqueue(-1, new Uint8Array(1)), RangeError)
    assert.throws(() => s.queuedBytes(2), RangeError)
    assert.throws(() => s.fill(new Uint8Array(10), 5, 6), RangeError)
    assert.throws(() => s.fill(new Uint8Array(10), -1, 1), RangeError)
    assert.throws(() => s.fill(new Uint8Array(10), 0, 10, -1), RangeError)
  })
})

import { assert, describe, it } from "@effect/vitest"
import { create, toBinary, type DescMessage, type MessageShape } from "@bufbuild/protobuf"
import { BoolValueSchema, BytesValueSchema, DoubleValueSchema, Int64ValueSchema, StringValueSchema, TimestampSchema, UInt64ValueSchema } from "@bufbuild/protobuf/wkt"
import * as fc from "fast-check"
import { encode } from "../../src/wire/MessageCodec.ts"
import { PacketSchema } from "../../src/proto/tendermint/p2p/conn_pb.ts"
import { PeerInfoSchema } from "../../src/proto/tendermint/p2p/peerstore_pb.ts"
import { MessageSchema } from "../../src/proto/tendermint/p2p/pex_pb.ts"
import { DefaultNodeInfoSchema } from "../../src/proto/tendermint/p2p/types_pb.ts"

const same = <Desc extends DescMessage>(desc: Desc, message: MessageShape<Desc>) =>
  assert.deepStrictEqual(encode(desc, message), toBinary(desc, message))

const u64 = fc.bigInt({ min: 0n, max: 2n ** 64n - 1n })
const i64 = fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n })

describe("router codec", () => {
  it("small messages come out of Node's Buffer pool (no ArrayBuffer each), large ones as their own copy", () => {
    const small = encode(BytesValueSchema, create(BytesValueSchema, { value: new Uint8Array(1000).fill(7) }))
    const again = encode(BytesValueSchema, create(BytesValueSchema, { value: new Uint8Array(1000).fill(8) }))
    assert.deepStrictEqual(small, toBinary(BytesValueSchema, create(BytesValueSchema, { value: new Uint8Array(1000).fill(7) })))
    // Views of the pool's slab: the first is not overwritten by the second.
    assert.isAbove(small.buffer.byteLength, small.length)
    assert.strictEqual(small[small.length - 1], 7)
    assert.strictEqual(again[again.length - 1], 8)
    const large = encode(BytesValueSchema, create(BytesValueSchema, { value: new Uint8Array(10_000).fill(9) }))
    assert.strictEqual(large.buffer.byteLength, large.length)
  })

  it("wrapper messages encode exactly as toBinary", () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 3000 }), fc.string({ unit: "binary" }), i64, u64, fc.double(), fc.boolean(), (bytes, text, i, u, d, b) => {
      same(BytesValueSchema, create(BytesValueSchema, { value: bytes }))
      same(StringValueSchema, create(StringValueSchema, { value: text }))
      same(Int64ValueSchema, create(Int64ValueSchema, { value: i }))
      same(UInt64ValueSchema, create(UInt64ValueSchema, { value: u }))
      same(DoubleValueSchema, create(DoubleValueSchema, { value: d }))
      same(BoolValueSchema, create(BoolValueSchema, { value: b }))
    }))
    same(DoubleValueSchema, create(DoubleValueSchema, { value: -0 }))
    same(TimestampSchema, create(TimestampSchema, { seconds: 12n, nanos: 5 }))
  })

  it("oneofs, nested messages, repeated messages and uint64 fields encode exactly as toBinary", () => {
    const packet = fc.oneof(
      fc.constant(create(PacketSchema, { sum: { case: "packetPing", value: {} } })),
      fc.constant(create(PacketSchema, { sum: { case: "packetPong", value: {} } })),
      fc.record({ channelId: fc.integer({ min: -5, max: 300 }), eof: fc.boolean(), data: fc.uint8Array({ maxLength: 1100 }) })
        .map((value) => create(PacketSchema, { sum: { case: "packetMsg", value } })),
      fc.constant(create(PacketSchema))
    )
    const pex = fc.oneof(
      fc.constant(create(MessageSchema, { sum: { case: "pexRequest", value: {} } })),
      fc.array(fc.record({ id: fc.string(), ip: fc.string(), port: fc.nat({ max: 70000 }) }), { maxLength: 5 })
        .map((addrs) => create(MessageSchema, { sum: { case: "pexAddrs", value: { addrs } } }))
    )
    const info = fc.record({
      p2p: u64, block: u64, app: u64, id: fc.string(), listen: fc.string(), network: fc.string(), version: fc.string(),
      channels: fc.uint8Array({ maxLength: 20 }), moniker: fc.string(), tx: fc.string(), rpc: fc.string(), withOther: fc.boolean()
    }).map((r) => create(DefaultNodeInfoSchema, {
      protocolVersion: { p2p: r.p2p, block: r.block, app: r.app },
      defaultNodeId: r.id, listenAddr: r.listen, network: r.network, version: r.version, channels: r.channels, moniker: r.moniker,
      ...(r.withOther ? { other: { txIndex: r.tx, rpcAddress: r.rpc } } : {})
    }))
    fc.assert(fc.property(packet, pex, info, (p, m, i) => {
      same(PacketSchema, p)
      same(MessageSchema, m)
      same(DefaultNodeInfoSchema, i)
    }))
  })

  it("messages it does not cover (a Timestamp field) fall back to toBinary", () => {
    const peer = create(PeerInfoSchema, { id: "a", addressInfo: [{ address: "x", dialFailures: 3, lastDialFailure: { seconds: 5n, nanos: 1 } }], inactive: true, mutableScore: -4n })
    same(PeerInfoSchema, peer)
  })

  it("a bad value fails as toBinary does, and the shared writer is left clean", () => {
    const bad = create(PacketSchema, { sum: { case: "packetMsg", value: { channelId: 1.5, eof: true, data: Uint8Array.of(1, 2) } } })
    assert.throws(() => encode(PacketSchema, bad), /int32/)
    same(StringValueSchema, create(StringValueSchema, { value: "after" }))
  })

  it("a message of another type is refused, as toBinary refuses it", () => {
    const wrong = create(BoolValueSchema, { value: true }) as unknown as MessageShape<typeof StringValueSchema>
    assert.throws(() => toBinary(StringValueSchema, wrong))
    assert.throws(() => encode(StringValueSchema, wrong))
  })

  it("unknown fields are written back", () => {
    const withUnknown = create(BytesValueSchema, { value: Uint8Array.of(1) })
    ;(withUnknown as { $unknown?: Array<{ no: number; wireType: number; data: Uint8Array }> }).$unknown = [{ no: 9, wireType: 0, data: Uint8Array.of(7) }]
    same(BytesValueSchema, withUnknown)
  })
})

import { assert, describe, it } from "@effect/vitest"
import { create, fromBinary, toBinary } from "@bufbuild/protobuf"
import { PacketSchema } from "../../src/proto/tendermint/p2p/conn_pb.ts"
import { MessageSchema } from "../../src/proto/tendermint/p2p/pex_pb.ts"
import { hasFixture, hex, readJsonFixture, toHex } from "../fixtures.ts"

interface Vectors {
  readonly conn_packet_vectors: ReadonlyArray<{ readonly name: string; readonly hex: string }>
  readonly pex_message_vectors: ReadonlyArray<{ readonly name: string; readonly hex: string }>
}

describe.runIf(hasFixture("protobuf-vectors.json"))("protobuf encodings equal CometBFT's vectors", () => {
  const v = readJsonFixture<Vectors>("protobuf-vectors.json")
  const expected = (list: Vectors["conn_packet_vectors"], name: string) => list.find((x) => x.name === name)!.hex

  it("Packet ping, pong and msg", () => {
    const ping = create(PacketSchema, { sum: { case: "packetPing", value: {} } })
    const pong = create(PacketSchema, { sum: { case: "packetPong", value: {} } })
    const msg = create(PacketSchema, { sum: { case: "packetMsg", value: { channelId: 1, eof: false, data: new TextEncoder().encode("data transmitted over the wire") } } })
    assert.strictEqual(toHex(toBinary(PacketSchema, ping)), expected(v.conn_packet_vectors, "PacketPing"))
    assert.strictEqual(toHex(toBinary(PacketSchema, pong)), expected(v.conn_packet_vectors, "PacketPong"))
    assert.strictEqual(toHex(toBinary(PacketSchema, msg)), expected(v.conn_packet_vectors, "PacketMsg"))
  })

  it("PEX request and addrs", () => {
    const req = create(MessageSchema, { sum: { case: "pexRequest", value: {} } })
    const addrs = create(MessageSchema, { sum: { case: "pexAddrs", value: { addrs: [{ id: "1", ip: "127.0.0.1", port: 9090 }] } } })
    assert.strictEqual(toHex(toBinary(MessageSchema, req)), expected(v.pex_message_vectors, "PexRequest"))
    assert.strictEqual(toHex(toBinary(MessageSchema, addrs)), expected(v.pex_message_vectors, "PexAddrs"))
  })

  it("decoding the vectors gives the messages back", () => {
    const decoded = fromBinary(MessageSchema, hex(expected(v.pex_message_vectors, "PexAddrs")))
    assert.strictEqual(decoded.sum.case, "pexAddrs")
    if (decoded.sum.case === "pexAddrs") assert.deepStrictEqual(decoded.sum.value.addrs.map((a) => [a.id, a.ip, a.port]), [["1", "127.0.0.1", 9090]])
  })
})

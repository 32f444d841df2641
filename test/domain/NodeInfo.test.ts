import { assert, describe, it } from "@effect/vitest"
import { toBinary } from "@bufbuild/protobuf"
import { Result } from "effect"
import * as fc from "fast-check"
import * as NodeId from "../../src/domain/NodeId.ts"
import * as NodeInfo from "../../src/domain/NodeInfo.ts"
import { DefaultNodeInfoSchema } from "../../src/proto/tendermint/p2p/types_pb.ts"

const id = NodeId.unsafeDecode("a".repeat(40))
const base = NodeInfo.make({
  nodeId: id,
  listenAddr: "tcp://0.0.0.0:26656",
  network: "test-chain",
  moniker: "node-a",
  channels: [0x40, 0x20, 0x00],
  version: "0.38.0",
  other: { txIndex: "on", rpcAddress: "tcp://127.0.0.1:26657" }
})

const failReason = (r: Result.Result<unknown, { readonly reason: string }>) => Result.isFailure(r) ? r.failure.reason : "ok"

describe("NodeInfo", () => {
  it("round trips through protobuf bytes with every field", () => {
    const info = { ...base, protocolVersion: { p2p: 8n, block: 11n, app: 3n }, channels: Uint8Array.of(0xf0, 0x0f) }
    const back = Result.getOrThrow(NodeInfo.decode(NodeInfo.encode(info)))
    assert.deepStrictEqual(back, info)
  })

  it("always emits the embedded messages, as gogoproto does", () => {
    const bytes = NodeInfo.encode(NodeInfo.make({ nodeId: id, listenAddr: "", network: "", moniker: "" }))
    const hex = Buffer.from(bytes).toString("hex")
    assert.isTrue(hex.startsWith("0a04"), hex) // protocol_version present (p2p 8, block 11)
    assert.isTrue(hex.endsWith("4200"), hex) // empty `other` present
  })

  it("decodes a NodeInfo without the embedded messages as zero values", () => {
    const bytes = toBinary(DefaultNodeInfoSchema, { $typeName: "tendermint.p2p.DefaultNodeInfo", defaultNodeId: id, listenAddr: "", network: "n", version: "", channels: new Uint8Array(), moniker: "m" })
    const info = Result.getOrThrow(NodeInfo.decode(bytes))
    assert.strictEqual(info.protocolVersion.block, 0n)
    assert.strictEqual(info.other.txIndex, "")
  })

  it("refuses more than 10240 bytes before decoding, and garbage with a typed error", () => {
    assert.strictEqual(failReason(NodeInfo.decode(new Uint8Array(10241))), "size")
    assert.strictEqual(failReason(NodeInfo.decode(Uint8Array.of(0x0a, 0xff))), "encoding")
  })

  it("validate accepts a well-formed NodeInfo", () => {
    assert.strictEqual(failReason(NodeInfo.validate(base)), "ok")
    assert.strictEqual(failReason(NodeInfo.validate({ ...base, listenAddr: "127.0.0.1:1" })), "ok")
    assert.strictEqual(failReason(NodeInfo.validate({ ...base, listenAddr: "tcp://[::1]:26656" })), "ok")
    assert.strictEqual(failReason(NodeInfo.validate({ ...base, listenAddr: "example.com:26656" })), "ok")
    assert.strictEqual(failReason(NodeInfo.validate({ ...base, version: "" })), "ok")
  })

  it("validate provokes each rule with its own reason", () => {
    assert.strictEqual(failReason(NodeInfo.validate({ ...base, listenAddr: "" })), "listen_addr")
    assert.strictEqual(failReason(NodeInfo.validate({ ...base, listenAddr: "tcp://0.0.0.0" })), "listen_addr")
    assert.strictEqual(failReason(NodeInfo.validate({ ...base, listenAddr: "tcp://:26656" })), "listen_addr")
    assert.strictEqual(failReason(NodeInfo.validate({ ...base, listenAddr: "tcp://0.0.0.0:65536" })), "listen_addr")
    assert.strictEqual(failReason(NodeInfo.validate({ ...base, nodeId: "zz" as NodeId.NodeId })), "listen_addr")
    assert.strictEqual(failReason(NodeInfo.validate({ ...base, version: "  " })), "version")
    assert.strictEqual(failReason(NodeInfo.validate({ ...base, version: "v\u00e9" })), "version")
    assert.strictEqual(failReason(NodeInfo.validate({ ...base, channels: Uint8Array.from({ length: 17 }, (_, i) => i) })), "channels")
    assert.strictEqual(failReason(NodeInfo.validate({ ...base, channels: Uint8Array.of(1, 1) })), "channels")
    assert.strictEqual(failReason(NodeInfo.validate({ ...base, moniker: "" })), "moniker")
    assert.strictEqual(failReason(NodeInfo.validate({ ...base, moniker: " \t" })), "moniker")
    assert.strictEqual(failReason(NodeInfo.validate({ ...base, other: { ...base.other, txIndex: "maybe" } })), "tx_index")
    assert.strictEqual(failReason(NodeInfo.validate({ ...base, other: { ...base.other, rpcAddress: " " } })), "rpc_address")
  })

  it("an invalid NodeInfo's message names the peer and the problem", () => {
    const r = NodeInfo.validate({ ...base, moniker: "" })
    assert.isTrue(Result.isFailure(r))
    if (Result.isFailure(r)) assert.match(r.failure.message, new RegExp(`${id}.*moniker`))
  })

  it("compatibleWith compares block version, network and channels, not p2p or app", () => {
    const other = { ...base, nodeId: NodeId.unsafeDecode("b".repeat(40)) }
    assert.strictEqual(failReason(NodeInfo.compatibleWith(base, other)), "ok")
    assert.strictEqual(failReason(NodeInfo.compatibleWith(base, { ...other, protocolVersion: { p2p: 9n, block: 11n, app: 5n } })), "ok")
    assert.strictEqual(failReason(NodeInfo.compatibleWith(base, { ...other, protocolVersion: { ...other.protocolVersion, block: 10n } })), "block_version")
    assert.strictEqual(failReason(NodeInfo.compatibleWith(base, { ...other, network: "other" })), "network")
    assert.strictEqual(failReason(NodeInfo.compatibleWith(base, { ...other, channels: Uint8Array.of(0x99) })), "channels")
    assert.strictEqual(failReason(NodeInfo.compatibleWith({ ...base, channels: new Uint8Array() }, { ...other, channels: Uint8Array.of(0x99) })), "ok")
  })

  it("addChannel appends the low byte once", () => {
    const info = NodeInfo.addChannel(NodeInfo.addChannel(base, 0x130), 0x30)
    assert.deepStrictEqual([...info.channels], [0x40, 0x20, 0x00, 0x30])
  })

  it("arbitrary bytes never throw from decode", () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (b) => Result.isResult(NodeInfo.decode(b))))
  })
})

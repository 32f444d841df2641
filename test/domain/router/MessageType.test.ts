import { create } from "@bufbuild/protobuf"
import { StringValueSchema } from "@bufbuild/protobuf/wkt"
import { assert, describe, it } from "@effect/vitest"
import { label } from "../../../src/domain/router/MessageType.ts"
import { MessageSchema, PexRequestSchema } from "../../../src/proto/tendermint/p2p/pex_pb.ts"
import { DefaultNodeInfoSchema } from "../../../src/proto/tendermint/p2p/types_pb.ts"

describe("message_type labels (CometBFT's <package>_<Message>)", () => {
  it("names the set case of a wrapper message, as CometBFT's reactors unwrap it", () => {
    assert.strictEqual(label(MessageSchema, create(MessageSchema, { sum: { case: "pexRequest", value: create(PexRequestSchema) } })), "p2p_PexRequest")
    assert.strictEqual(label(MessageSchema, create(MessageSchema, { sum: { case: "pexAddrs", value: { addrs: [] } } })), "p2p_PexAddrs")
  })

  it("names the wrapper itself when no case is set, and plain messages by their own type", () => {
    assert.strictEqual(label(MessageSchema, create(MessageSchema)), "p2p_Message")
    assert.strictEqual(label(DefaultNodeInfoSchema, create(DefaultNodeInfoSchema)), "p2p_DefaultNodeInfo")
    assert.strictEqual(label(StringValueSchema, create(StringValueSchema, { value: "x" })), "protobuf_StringValue")
  })
})

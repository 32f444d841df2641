import { assert, describe, it } from "@effect/vitest"
import { Result } from "effect"
import * as ChannelDescriptor from "../../src/domain/ChannelDescriptor.ts"
import { MessageSchema } from "../../src/proto/tendermint/p2p/pex_pb.ts"

describe("ChannelDescriptor", () => {
  it("make applies MConnection's defaults", () => {
    const d = ChannelDescriptor.make({ id: 0, messageType: MessageSchema })
    assert.strictEqual(d.sendQueueCapacity, 1)
    assert.strictEqual(d.recvBufferCapacity, 4096)
    assert.strictEqual(d.recvMessageCapacity, 22020096)
    assert.strictEqual(d.priority, 1)
    assert.strictEqual(d.name, "channel-0x00")
  })

  it("validate rejects an ID outside 0-255 and non-positive numbers, naming the channel and field", () => {
    const ok = ChannelDescriptor.make({ id: 0x40, messageType: MessageSchema, name: "blocksync", priority: 5 })
    assert.isTrue(Result.isSuccess(ChannelDescriptor.validate(ok)))
    const message = (d: ChannelDescriptor.ChannelDescriptor) => {
      const r = ChannelDescriptor.validate(d)
      return Result.isFailure(r) ? r.failure.message : "ok"
    }
    assert.match(message({ ...ok, id: 256 }), /0 to 255/)
    assert.match(message({ ...ok, priority: 0 }), /blocksync.*priority/)
    assert.match(message({ ...ok, sendQueueCapacity: -1 }), /sendQueueCapacity/)
    assert.match(message({ ...ok, recvMessageCapacity: 1.5 }), /recvMessageCapacity/)
    assert.match(message({ ...ok, recvBufferCapacity: 0 }), /recvBufferCapacity/)
  })
})

import { assert, describe, it } from "@effect/vitest"
import { create } from "@bufbuild/protobuf"
import { StringValueSchema } from "@bufbuild/protobuf/wkt"
import { Effect } from "effect"
import * as ChannelDescriptor from "../../src/domain/ChannelDescriptor.ts"
import * as Envelope from "../../src/domain/Envelope.ts"
import * as Assertions from "../../src/testing/Assertions.ts"
import * as TestNetwork from "../../src/testing/TestNetwork.ts"

const desc = ChannelDescriptor.make({ id: 1, messageType: StringValueSchema, priority: 5, sendQueueCapacity: 10 })
const str = (value: string) => create(StringValueSchema, { value })

describe("Router basics", () => {
  it.effect("two meshed nodes exchange a unicast message", () =>
    Effect.gen(function* () {
      const net = yield* TestNetwork.make({ nodes: 2, channels: [desc] })
      const [a, b] = net.nodes
      const [cha, chb] = yield* net.openChannel(desc)
      const pb = yield* Assertions.probe(chb!.messages)
      yield* cha!.send(Envelope.to(b!.nodeId, str("foo")))
      yield* Assertions.receive(pb, { from: a!.nodeId, channelId: 1, message: str("foo") })
      assert.strictEqual((yield* a!.router.peers).length, 1)
    }).pipe(Effect.scoped))
})

describe("Router channel limit", () => {
  it.effect("opening a 17th channel fails with TooManyChannels, since peers reject a NodeInfo with more than 16", () =>
    Effect.gen(function* () {
      const net = yield* TestNetwork.make({ nodes: 1 })
      const router = net.nodes[0]!.router
      for (let id = 1; id <= 16; id++) yield* router.openChannel(ChannelDescriptor.make({ id, messageType: StringValueSchema }))
      const err = yield* Effect.flip(router.openChannel(ChannelDescriptor.make({ id: 17, messageType: StringValueSchema })))
      assert.strictEqual(err._tag, "TooManyChannels")
      assert.strictEqual((yield* router.nodeInfo).channels.length, 16)
    }).pipe(Effect.scoped))
})

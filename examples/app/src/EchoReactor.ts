import { create } from "@bufbuild/protobuf"
import { StringValueSchema } from "@bufbuild/protobuf/wkt"
import { Effect, Layer, Stream } from "effect"
import { ChannelDescriptor, Envelope, PeerManager, Router } from "effect-p2p"

export const echo = ChannelDescriptor.make({ id: 0x30, messageType: StringValueSchema, priority: 5, sendQueueCapacity: 16 })

// Answers every message with the same text, and greets each peer that comes up.
export const EchoReactor = Layer.effectDiscard(Effect.gen(function* () {
  const router = yield* Router.Router
  const peers = yield* PeerManager.PeerManager
  const channel = yield* router.openChannel(echo)
  yield* Effect.forkScoped(Stream.runForEach(channel.messages, (m) =>
    channel.send(Envelope.to(m.from, m.message))))
  const updates = yield* peers.subscribe
  yield* Effect.forkScoped(Stream.runForEach(updates, (u) =>
    u.status === "up" ? channel.send(Envelope.to(u.nodeId, create(StringValueSchema, { value: "hello" }))) : Effect.void))
}))

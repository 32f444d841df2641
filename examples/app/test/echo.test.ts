import { create } from "@bufbuild/protobuf"
import { StringValueSchema } from "@bufbuild/protobuf/wkt"
import { it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { Envelope } from "effect-p2p"
import { Assertions, TestNetwork } from "effect-p2p/testing"
import { EchoReactor, echo } from "../src/EchoReactor.ts"

const text = (value: string) => create(StringValueSchema, { value })

// it.effect runs on TestClock: every wait below is virtual time, bounded, and never sleeps for real.
it.effect("the echo reactor greets a new peer and answers what it sends", () =>
  Effect.gen(function* () {
    // Two in-memory nodes: node 1 runs the application's EchoReactor, node 0 is driven by the test.
    const net = yield* TestNetwork.make({
      nodes: 2,
      channels: [echo],
      mesh: false,
      reactors: (node) => (node.index === 1 ? EchoReactor : Layer.empty)
    })
    const [client, server] = net.nodes
    const channel = yield* client!.router.openChannel(echo)
    const inbox = yield* Assertions.probe(channel.messages)
    yield* net.connect(client!, server!)
    yield* Assertions.receive(inbox, { from: server!.nodeId, channelId: echo.id, message: text("hello") })
    yield* channel.send(Envelope.to(server!.nodeId, text("ping")))
    yield* Assertions.receive(inbox, { from: server!.nodeId, channelId: echo.id, message: text("ping") })
    yield* Assertions.empty(inbox)
  }).pipe(Effect.scoped))

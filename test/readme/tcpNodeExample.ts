// The README's "Running a TCP node from code" example, type-checked (not run: it would bind 0.0.0.0:26656).
import { NodeRuntime } from "@effect/platform-node"
import { Layer } from "effect"
import { NodeAddress, Node } from "effect-p2p"
import { EchoReactor, echo } from "./EchoReactor.ts"

export const main = () => {
  const node = Node.layer({
    home: "./.my-node",
    network: "my-chain",
    moniker: "alice",
    listen: { host: "0.0.0.0", port: 26656 },
    persistentPeers: [NodeAddress.unsafeParse(`${"0123456789abcdef0123456789abcdef01234567"}@10.0.0.2:26656`)],
    channels: [echo] // advertised from the first handshake
  })
  Layer.launch(EchoReactor.pipe(Layer.provide(node))).pipe(NodeRuntime.runMain)
}

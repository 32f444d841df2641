import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect } from "effect"
import { NodeAddress, NodeId, NodeKey } from "effect-p2p"

const program = Effect.gen(function* () {
  const key = yield* NodeKey.generate()                               // Ed25519; NodeKey.toJson(key) is CometBFT's node_key.json
  yield* Console.log(key.nodeId)                                      // 40 hex digits from the public key
  const id = yield* NodeId.decode("ABCD".repeat(10))                  // lowercased and checked: InvalidNodeId otherwise
  const address = yield* NodeAddress.parse(`${id}@127.0.0.1:26656`)   // no scheme means mconn (TCP)
  yield* Console.log(NodeAddress.format(address))                     // mconn://abcd…abcd@127.0.0.1:26656
  const error = yield* Effect.flip(NodeAddress.parse(`${id}@1.2.3.4:99999`))
  yield* Console.log(`${error._tag}: ${error.message}`)               // a typed error naming the problem, never a throw
})

NodeRuntime.runMain(program)

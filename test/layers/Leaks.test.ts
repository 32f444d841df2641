// Nothing leaks: closing a node's scope releases every socket, server and timer it opened.
import { assert, describe, it } from "@effect/vitest"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Context, Effect, Layer } from "effect"
import * as NodeAddress from "../../src/domain/NodeAddress.ts"
import * as Node from "../../src/layers/Node.ts"
import { Router } from "../../src/services/Router.ts"
import { Transport } from "../../src/services/Transport.ts"
import { key } from "../../src/testing/Keys.ts"

/** Open handles by kind (TCPSocketWrap, TCPServerWrap, Timeout, ...), excluding what vitest itself holds. */
const resources = () => {
  const counts = new Map<string, number>()
  for (const r of process.getActiveResourcesInfo()) counts.set(r, (counts.get(r) ?? 0) + 1)
  return counts
}

const waitFor = (what: string, check: Effect.Effect<boolean>) =>
  Effect.gen(function* () {
    const deadline = Date.now() + 10_000
    while (!(yield* check)) {
      if (Date.now() > deadline) return yield* Effect.die(new Error(`timed out waiting for ${what}`))
      yield* Effect.sleep(20)
    }
  })

describe("resource ownership", () => {
  it.live("two connected TCP nodes release every socket, server and timer when their scopes close", () =>
    Effect.gen(function* () {
      const before = resources()
      yield* Effect.scoped(Effect.gen(function* () {
        const build = (n: number, peers: ReadonlyArray<NodeAddress.NodeAddress>) =>
          Layer.build(Node.layer({
            home: mkdtempSync(join(tmpdir(), "p2p-leak-")),
            nodeKey: key(n),
            network: "leaks",
            moniker: `n${n}`,
            listen: { host: "127.0.0.1", port: 0 },
            persistentPeers: peers
          }))
        const a = yield* build(1, [])
        const [endpoint] = yield* Context.get(a, Transport).endpoints
        const b = yield* build(2, [NodeAddress.make({ protocol: "mconn", nodeId: key(1).nodeId, hostname: "127.0.0.1", port: endpoint!.port })])
        yield* waitFor("the nodes to connect", Effect.map(Context.get(b, Router).peers, (p) => p.length === 1))
        yield* waitFor("a to route b", Effect.map(Context.get(a, Router).peers, (p) => p.length === 1))
        const during = resources()
        assert.isAbove(during.get("TCPSocketWrap") ?? 0, before.get("TCPSocketWrap") ?? 0)
      }))
      // Close callbacks run on later turns of the event loop: poll with plain timers (an Effect sleep
      // would itself count as an open timer while we look).
      const kinds = ["TCPSocketWrap", "TCPServerWrap", "Timeout", "Immediate"]
      const leftovers = () => kinds.filter((k) => (resources().get(k) ?? 0) > (before.get(k) ?? 0))
      const remaining = yield* Effect.promise(async () => {
        for (let i = 0; i < 100 && leftovers().length > 0; i++) await new Promise((r) => setTimeout(r, 20))
        return leftovers().map((k) => `${k}: before ${before.get(k) ?? 0}, after ${resources().get(k) ?? 0}`)
      })
      assert.deepStrictEqual(remaining, [])
    }), 30_000)
})

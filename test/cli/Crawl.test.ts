import { assert, describe, it } from "@effect/vitest"
import { mkdtempSync, rmSync } from "node:fs"
import * as Net from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Cause, Console, Context, Effect, Exit, Layer, Result, type Scope } from "effect"
import { Command } from "effect/cli"
import * as Crawl from "../../src/cli/Crawl.ts"
import * as NodeAddress from "../../src/domain/NodeAddress.ts"
import * as Keys from "../../src/testing/Keys.ts"
import * as Node from "../../src/layers/Node.ts"
import { PeerManager } from "../../src/services/PeerManager.ts"
import { Router } from "../../src/services/Router.ts"
import { IncompatiblePeer, Transport } from "../../src/services/Transport.ts"
import { cliLayer } from "./helpers.ts"

const NETWORK = "crawl-test"

interface Started {
  readonly nodeId: string
  readonly moniker: string
  readonly address: NodeAddress.NodeAddress
  readonly peerManager: PeerManager["Service"]
}

/** A TCP node on 127.0.0.1 (a free port) with a temporary home, stopped and removed with the scope. */
const startNode = (moniker: string, bootstrap: ReadonlyArray<NodeAddress.NodeAddress>): Effect.Effect<Started, unknown, Scope.Scope> =>
  Effect.gen(function* () {
    const home = yield* Effect.acquireRelease(
      Effect.sync(() => mkdtempSync(join(tmpdir(), "effect-p2p-crawl-test-"))),
      (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
    )
    const ctx = yield* Layer.build(Node.layer({ home, network: NETWORK, moniker, listen: { host: "127.0.0.1", port: 0 }, bootstrapPeers: bootstrap }))
    const nodeId = (yield* Context.get(ctx, Router).nodeInfo).nodeId
    const endpoint = (yield* Context.get(ctx, Transport).endpoints)[0]!
    return {
      nodeId,
      moniker,
      address: NodeAddress.make({ protocol: "mconn", nodeId, hostname: endpoint.ip, port: endpoint.port }),
      peerManager: Context.get(ctx, PeerManager)
    }
  })

/** A (live) wait of at most `ms` for `check`. */
const eventually = (ms: number, what: string, check: Effect.Effect<boolean>) =>
  Effect.gen(function* () {
    const deadline = Date.now() + ms
    while (!(yield* check)) {
      if (Date.now() > deadline) return yield* Effect.die(new Error(`timed out waiting for ${what}`))
      yield* Effect.sleep(50)
    }
  })

/** A chain a <- b <- c: b bootstrapped from a, c from b; waits until c has heard of a through PEX. */
const startChain = Effect.gen(function* () {
  const a = yield* startNode("crawl-a", [])
  const b = yield* startNode("crawl-b", [a.address])
  const c = yield* startNode("crawl-c", [b.address])
  yield* eventually(8_000, "c to learn of a", Effect.map(c.peerManager.peers, (peers) => peers.some((p) => p.nodeId === a.nodeId)))
  return [a, b, c] as const
})

const text = (a: NodeAddress.NodeAddress) => `${a.nodeId}@${a.hostname}:${a.port}`

/** Nobody listens on port 1 of loopback. */
const unreachable = `${Keys.key(77).nodeId}@127.0.0.1:1`


/** Runs `effect-p2p crawl ARGS`, returning what it printed with `Console.log` and its exit. */
const runCommand = (args: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const lines: Array<string> = []
    const console: Console.Console = { ...globalThis.console, log: (...parts: ReadonlyArray<unknown>) => void lines.push(parts.map(String).join(" ")) }
    const exit = yield* Command.runWith(Crawl.crawlCommand, { version: "test" })(args).pipe(
      Effect.provide(cliLayer),
      Effect.provideService(Console.Console, console),
      Effect.exit
    )
    return { lines, exit }
  })

const configErrorOf = <A, E>(exit: Exit.Exit<A, E>) => {
  assert.isTrue(Exit.isFailure(exit))
  return Exit.isFailure(exit) ? (Cause.squash(exit.cause) as { readonly _tag: string; readonly key: string; readonly message: string }) : undefined
}

describe("crawl", () => {
  it.live("finds every node of a network through PEX from one seed, learns the network and reports an unreachable seed", () =>
    Effect.gen(function* () {
      const [a, b, c] = yield* startChain
      const result = yield* Crawl.runCrawl({ seeds: `${text(c.address)},${unreachable}`, timeout: 10, peerTimeout: 3 })
      assert.strictEqual(result.network, NETWORK)
      assert.deepStrictEqual(
        result.peers.map((p) => [p.nodeId, p.moniker, p.network]).sort(),
        [a, b, c].map((n) => [n.nodeId, n.moniker, NETWORK]).sort()
      )
      for (const p of result.peers) {
        assert.match(p.address, /^127\.0\.0\.1:\d+$/)
        assert.include(p.channels, "00")
      }
      assert.strictEqual(result.peers.find((p) => p.nodeId === c.nodeId)?.address, `127.0.0.1:${c.address.port}`)
      assert.strictEqual(result.unreachable.length, 1)
      assert.strictEqual(result.unreachable[0]!.address, "127.0.0.1:1")
      assert.match(result.unreachable[0]!.error, /refused|ECONNREFUSED/)
      assert.isFalse(result.timedOut)
      assert.strictEqual(result.notVisited, 0)
      const table = Crawl.formatTable(result)
      assert.match(table, /NODE ID\s+MONIKER\s+NETWORK\s+VERSION\s+ADDRESS/)
      for (const n of [a, b, c]) assert.include(table, n.nodeId)
      assert.match(table, /3 found on network crawl-test, 1 unreachable/)
    }).pipe(Effect.scoped))

  it.live("--json prints one JSON object per line, unreachable addresses with an error; a wrong --network makes nodes unreachable", () =>
    Effect.gen(function* () {
      const [a, b, c] = yield* startChain
      const { lines, exit } = yield* runCommand(["--seeds", `${text(a.address)},${unreachable}`, "--network", NETWORK, "--json", "--timeout", "10"])
      assert.isTrue(Exit.isSuccess(exit))
      const objects = lines.map((l) => JSON.parse(l) as Record<string, unknown>)
      const found = objects.filter((o) => o["error"] === undefined)
      assert.sameMembers(found.map((o) => o["node_id"]), [a.nodeId, b.nodeId, c.nodeId])
      for (const o of found) {
        assert.strictEqual(o["network"], NETWORK)
        assert.isString(o["moniker"])
        assert.isString(o["version"])
        assert.match(String(o["address"]), /^127\.0\.0\.1:\d+$/)
      }
      const errors = objects.filter((o) => o["error"] !== undefined)
      assert.strictEqual(errors.length, 1)
      assert.strictEqual(errors[0]!["address"], "127.0.0.1:1")

      const bounded = yield* Crawl.runCrawl({ seeds: text(a.address), network: NETWORK, maxPeers: 1, timeout: 5 })
      assert.deepStrictEqual(bounded.peers.map((p) => p.nodeId), [a.nodeId])
      assert.isAtLeast(bounded.notVisited, 2)

      const wrong = yield* Crawl.runCrawl({ seeds: text(a.address), network: "another-chain", timeout: 5, peerTimeout: 2 })
      assert.strictEqual(wrong.peers.length, 0)
      assert.strictEqual(wrong.unreachable.length, 1)
      assert.match(wrong.unreachable[0]!.error, /network/)
    }).pipe(Effect.scoped))

  it.live("prints a table by default", () =>
    Effect.gen(function* () {
      const { lines, exit } = yield* runCommand(["--seeds", unreachable, "--timeout", "5"])
      assert.isTrue(Exit.isSuccess(exit))
      const out = lines.join("\n")
      assert.match(out, /no nodes found/)
      assert.match(out, /0 found, 1 unreachable, 0 not visited/)
      assert.include(out, `unreachable ${unreachable}`)
    }))

  it.live("bounds each peer and the whole crawl in time", () =>
    Effect.gen(function* () {
      // Accepts connections and never says a word.
      const server = yield* Effect.acquireRelease(
        Effect.callback<Net.Server>((resume) => {
          const s = Net.createServer(() => {})
          s.listen(0, "127.0.0.1", () => resume(Effect.succeed(s)))
        }),
        (s) => Effect.sync(() => s.close())
      )
      const port = (server.address() as Net.AddressInfo).port
      const silent = `${Keys.key(78).nodeId}@127.0.0.1:${port}`
      const perPeer = yield* Crawl.runCrawl({ seeds: silent, network: NETWORK, timeout: 5, peerTimeout: 0.3 })
      assert.strictEqual(perPeer.unreachable.length, 1)
      assert.match(perPeer.unreachable[0]!.error, /within/)
      assert.isFalse(perPeer.timedOut)
      // One connection at a time: the first seed fails at 0.4 s, the second is still waiting at 0.6 s.
      const other = `${Keys.key(79).nodeId}@127.0.0.1:${port}`
      const total = yield* Crawl.runCrawl({ seeds: `${silent},${other}`, network: NETWORK, timeout: 0.6, peerTimeout: 0.4, concurrency: 1 })
      assert.isTrue(total.timedOut)
      assert.strictEqual(total.unreachable.length, 1)
      assert.strictEqual(total.notVisited, 1)
      assert.isBelow(total.elapsedMillis, 2_000)
    }).pipe(Effect.scoped))

  it("reads the peer's network from a refused handshake", () => {
    const error = (reason: string, message: string) => new IncompatiblePeer({ remote: "127.0.0.1:1", nodeId: "ab", reason, message })
    assert.strictEqual(Crawl.peerNetworkOf(error("network", `handshake with 127.0.0.1:1: peer ab is on a different network (ours "", theirs "cosmoshub-4")`)), "cosmoshub-4")
    assert.strictEqual(Crawl.peerNetworkOf(error("network", `... (ours "x", theirs "with \\"quotes\\"")`)), `with "quotes"`)
    assert.strictEqual(Crawl.peerNetworkOf(error("network", `... (ours x, theirs plain-id)`)), "plain-id")
    assert.isUndefined(Crawl.peerNetworkOf(error("channels", "peer ab has no common channels")))
  })

  it("a bad option fails with a ConfigError naming the flag", () => {
    const keyOf = (options: Crawl.CrawlOptions) => {
      const r = Crawl.validateOptions(options)
      return Result.isFailure(r) ? [r.failure.key, r.failure.message] : undefined
    }
    const seed = unreachable
    assert.strictEqual(keyOf({ seeds: "" })?.[0], "--seeds")
    assert.match(keyOf({ seeds: "nope@1.2.3.4:5" })?.[1] ?? "", /^--seeds: /)
    assert.match(keyOf({ seeds: "memory:" + seed.slice(0, 40) })?.[1] ?? "", /^--seeds: /)
    assert.match(keyOf({ seeds: seed, maxPeers: 0 })?.[1] ?? "", /^--max-peers: must be an integer from 1/)
    assert.match(keyOf({ seeds: seed, concurrency: 0 })?.[1] ?? "", /^--concurrency: /)
    assert.match(keyOf({ seeds: seed, timeout: 0 })?.[1] ?? "", /^--timeout: /)
    assert.match(keyOf({ seeds: seed, network: "two words" })?.[1] ?? "", /^--network: /)
    assert.isUndefined(keyOf({ seeds: seed }))
  })

  it.effect("the command fails with the ConfigError for a bad flag value", () =>
    Effect.gen(function* () {
      const { exit } = yield* runCommand(["--seeds", unreachable, "--concurrency", "0"])
      const error = configErrorOf(exit)
      assert.strictEqual(error?._tag, "ConfigError")
      assert.strictEqual(error?.key, "--concurrency")
    }))
})

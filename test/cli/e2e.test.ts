// End to end with real processes: `effect-p2p start` twice on loopback.
import { assert, describe, it } from "@effect/vitest"
import { spawn, spawnSync, type ChildProcess } from "node:child_process"
import { mkdtempSync, writeFileSync, existsSync, mkdirSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { Effect } from "effect"

const main = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "src", "cli", "main.ts")

interface Running {
  readonly child: ChildProcess
  readonly nodeId: string
  readonly p2pPort: number
  readonly httpPort: number
  readonly output: () => string
}

/** Starts a node and waits (at most 15 s) until it has logged its ports. */
const startNode = (home: string, ...args: Array<string>) =>
  Effect.acquireRelease(
    Effect.callback<Running, Error>((resume) => {
      const child = spawn(process.execPath, [main, "start", "--home", home, "--laddr", "tcp://127.0.0.1:0", "--http-addr", "127.0.0.1:0", ...args], { stdio: ["ignore", "pipe", "pipe"] })
      let out = ""
      const timer = setTimeout(() => resume(Effect.fail(new Error(`node did not start:\n${out}`))), 15_000)
      const onData = (d: Buffer) => {
        out += d.toString()
        const node = /node ([0-9a-f]{40}) .* listening on mconn:\/\/127\.0\.0\.1:(\d+)/.exec(out)
        const http = /on http:\/\/127\.0\.0\.1:(\d+)/.exec(out)
        if (node !== null && http !== null) {
          clearTimeout(timer)
          resume(Effect.succeed({ child, nodeId: node[1]!, p2pPort: Number(node[2]), httpPort: Number(http[1]), output: () => out }))
        }
      }
      child.stdout!.on("data", onData)
      child.stderr!.on("data", onData)
    }),
    ({ child }) => Effect.sync(() => child.kill("SIGKILL"))
  )

const netInfo = (port: number) =>
  Effect.promise(() => fetch(`http://127.0.0.1:${port}/net_info`).then((r) => r.json() as Promise<{ node_id: string; n_peers: string; peers: Array<{ node_id: string; is_outbound: boolean }> }>))

/** Polls until `check` holds, at most `ms` of real time. */
const eventually = <A>(ms: number, what: string, probe: Effect.Effect<A>, check: (a: A) => boolean) =>
  Effect.gen(function* () {
    const deadline = Date.now() + ms
    while (true) {
      const a = yield* probe
      if (check(a)) return a
      if (Date.now() > deadline) return yield* Effect.die(new Error(`timed out waiting for ${what}: ${JSON.stringify(a)}`))
      yield* Effect.sleep(100)
    }
  })

const stopGracefully = (child: ChildProcess) =>
  Effect.callback<{ code: number | null; ms: number }>((resume) => {
    const start = Date.now()
    child.once("exit", (code) => resume(Effect.succeed({ code, ms: Date.now() - start })))
    child.kill("SIGTERM")
  })

describe("effect-p2p start (real processes)", () => {
  it.live("two nodes connect as persistent peers, serve /net_info and /metrics, stop on SIGTERM with 0, and remember peers", () =>
    Effect.gen(function* () {
      const [homeA, homeB] = [mkdtempSync(join(tmpdir(), "p2p-a-")), mkdtempSync(join(tmpdir(), "p2p-b-"))]
      const a = yield* startNode(homeA, "--moniker", "alpha", "--network", "e2e")
      const b = yield* startNode(homeB, "--moniker", "beta", "--network", "e2e", "--persistent-peers", `${a.nodeId}@127.0.0.1:${a.p2pPort}`)
      const infoA = yield* eventually(10_000, "a to see b", netInfo(a.httpPort), (i) => i.peers.some((p) => p.node_id === b.nodeId))
      const infoB = yield* eventually(10_000, "b to see a", netInfo(b.httpPort), (i) => i.peers.some((p) => p.node_id === a.nodeId))
      assert.strictEqual(infoA.node_id, a.nodeId)
      assert.isTrue(infoB.peers.find((p) => p.node_id === a.nodeId)!.is_outbound)
      const metrics = yield* Effect.promise(() => fetch(`http://127.0.0.1:${b.httpPort}/metrics`).then((r) => r.text()))
      assert.match(metrics, /cometbft_p2p_peers 1/)

      const stopped = yield* stopGracefully(b.child)
      assert.strictEqual(stopped.code, 0, b.output())
      assert.isBelow(stopped.ms, 5000)
      assert.match(b.output(), /shutting down/)

      // Restart B without flags: it still knows A from its peer store and reconnects.
      const b2 = yield* startNode(homeB, "--network", "e2e")
      yield* eventually(10_000, "restarted b to reconnect to a", netInfo(b2.httpPort), (i) => i.peers.some((p) => p.node_id === a.nodeId))
      assert.strictEqual((yield* stopGracefully(b2.child)).code, 0)
      assert.strictEqual((yield* stopGracefully(a.child)).code, 0)
    }).pipe(Effect.scoped), 60_000)

  it("a bad flag or config value prints one line naming the key, exits 2 and writes nothing", () => {
    const home = join(mkdtempSync(join(tmpdir(), "p2p-bad-")), "home")
    const run = (...args: Array<string>) => spawnSync(process.execPath, [main, ...args], { encoding: "utf8", timeout: 15_000 })
    const bad = run("start", "--home", home, "--laddr", "nowhere")
    assert.strictEqual(bad.status, 2)
    assert.deepStrictEqual(bad.stderr.trim().split("\n").filter((l) => l.trim() !== "" && !l.includes("nodedir")), [`effect-p2p: --laddr: "nowhere" is not an address like "tcp://127.0.0.1:26656"`])
    assert.isFalse(existsSync(home))

    mkdirSync(join(home, "config"), { recursive: true })
    writeFileSync(join(home, "config", "config.toml"), `[p2p]\nmax_num_inbound_peers = "many"\n`)
    const badFile = run("start", "--home", home)
    assert.strictEqual(badFile.status, 2)
    assert.match(badFile.stderr, /^effect-p2p: p2p\.max_num_inbound_peers: must be an integer/m)
    assert.isFalse(existsSync(join(home, "config", "node_key.json")))

    assert.strictEqual(run("start", "--home", home, "--no-such-flag").status, 2)
  }, 60_000)
})

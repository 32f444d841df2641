// What an operator's limits mean, with real processes: CometBFT's max_num_inbound_peers (0 lets
// nobody in but persistent and unconditional peers), log_level from config.toml, and a node that
// runs out of file descriptors but keeps answering /metrics.
import { assert, describe, it } from "@effect/vitest"
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs"
import * as Net from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { eventually, get, netInfo, runCommand, spawnNode, startNode, stopGracefully } from "./processes.ts"

/** A home whose config.toml holds `toml` (written as an operator would, before the first start). */
const homeWith = (toml: string) => {
  const home = join(mkdtempSync(join(tmpdir(), "p2p-limits-")), "home")
  mkdirSync(join(home, "config"), { recursive: true })
  writeFileSync(join(home, "config", "config.toml"), toml)
  return home
}

/** A home initialised with its key, so its node ID is known before it starts. */
const homeWithId = (toml = "") => {
  const home = homeWith(toml)
  assert.strictEqual(runCommand(["init", "--home", home]).status, 0)
  const id = runCommand(["show-node-id", "--home", home]).stdout.trim()
  return { home, id }
}

/** A metric's value in a Prometheus text, 0 when absent. */
const metric = (text: string, name: string, labels = "") =>
  Number(new RegExp(`^cometbft_${name}${labels === "" ? "" : `\\{${labels}\\}`} (\\d+)$`, "m").exec(text)?.[1] ?? 0)

const metrics = (port: number) => Effect.map(get(port, "/metrics"), (r) => r.text)

describe("max_num_inbound_peers, with real processes", () => {
  it.live("0: nobody connects in, except an unconditional peer", () =>
    Effect.gen(function* () {
      const dialer = homeWithId()
      const closed = yield* startNode(homeWith(`[p2p]\nmax_num_inbound_peers = 0\n`))
      const opened = yield* startNode(homeWith(`[p2p]\nmax_num_inbound_peers = 0\nunconditional_peer_ids = "${dialer.id}"\n`))
      const b = yield* startNode(dialer.home, "--persistent-peers", [closed, opened].map((n) => `${n.nodeId}@127.0.0.1:${n.p2pPort}`).join(","))
      yield* eventually(10_000, "the unconditional peer to be let in", netInfo(opened.httpPort), (i) => i.result.n_peers === "1")
      yield* eventually(10_000, "refusals to be counted", metrics(closed.httpPort), (t) => metric(t, "p2p_inbound_refused", `reason="inbound_full"`) >= 1)
      // Refused every time, never admitted, not even for a moment: its connection list stays empty.
      for (let i = 0; i < 5; i++) {
        assert.strictEqual((yield* netInfo(closed.httpPort)).result.n_peers, "0")
        yield* Effect.sleep(200)
      }
      assert.deepStrictEqual((yield* netInfo(b.httpPort)).result.peers.map((p) => p.node_info.id), [opened.nodeId])
    }).pipe(Effect.scoped), 60_000)

  it.live("2: at most two ordinary inbound peers; the others are let go after a grace period and back off", () =>
    Effect.gen(function* () {
      const hub = yield* startNode(homeWith(`[p2p]\nmax_num_inbound_peers = 2\npex = false\n`))
      const address = `${hub.nodeId}@127.0.0.1:${hub.p2pPort}`
      const dialers = yield* Effect.all(Array.from({ length: 4 }, () => startNode(homeWith(`[p2p]\npex = false\n`), "--persistent-peers", address)), { concurrency: 4 })
      yield* eventually(10_000, "two inbound peers", metrics(hub.httpPort), (t) => metric(t, "p2p_peers_connected_incoming") === 2)
      let most = 0
      for (let i = 0; i < 20; i++) {
        most = Math.max(most, metric(yield* metrics(hub.httpPort), "p2p_peers_connected_incoming"))
        yield* Effect.sleep(250)
      }
      assert.strictEqual(most, 2)
      const peersOfDialers = yield* Effect.forEach(dialers, (d) => Effect.map(netInfo(d.httpPort), (i) => Number(i.result.n_peers)))
      assert.strictEqual(peersOfDialers.reduce((a, n) => a + n, 0) >= 2, true)
    }).pipe(Effect.scoped), 60_000)
})

describe("log_level from config.toml, with real processes", () => {
  /** Sends garbage to a node: its handshake fails, which the stack logs at debug level. */
  const garbage = (port: number) =>
    Effect.callback<void>((resume) => {
      const s = Net.connect(port, "127.0.0.1", () => s.end(Buffer.alloc(64, 0xff)))
      s.resume() // read the node's bytes, so its close reaches us
      s.on("error", () => {})
      s.on("close", () => resume(Effect.void))
    })

  it.live("p2p:debug shows the stack's debug lines; --log-level info overrides it", () =>
    Effect.gen(function* () {
      const verbose = yield* startNode(homeWith(`log_level = "main:info,p2p:debug,*:error"\n`))
      yield* garbage(verbose.p2pPort)
      yield* eventually(5_000, "a debug line about the failed handshake", Effect.sync(verbose.output), (o) => /level=DEBUG .*handshake failed/.test(o))
      const quiet = yield* startNode(homeWith(`log_level = "p2p:debug"\n`), "--log-level", "info")
      yield* garbage(quiet.p2pPort)
      yield* Effect.sleep(500)
      assert.notMatch(quiet.output(), /level=DEBUG/)
      assert.strictEqual((yield* stopGracefully(quiet.child)).code, 0)
    }).pipe(Effect.scoped), 30_000)

  it.live("log_format = json writes one JSON object per line", () =>
    Effect.gen(function* () {
      const node = yield* startNode(homeWith(`log_format = "json"\n`))
      const logLines = node.output().split("\n").filter((l) => l.startsWith("{"))
      assert.isAtLeast(logLines.length, 1)
      assert.match((JSON.parse(logLines[0]!) as { message: unknown }).message as string, /./)
    }).pipe(Effect.scoped), 30_000)
})

describe("out of file descriptors, with a real process under ulimit -n 128", () => {
  it.live("refuses the excess with one warning naming the limit, counts it, keeps /metrics and /net_info answering, then takes a peer again", () =>
    Effect.gen(function* () {
      const home = homeWith("")
      chmodSync(join(home, ".."), 0o755)
      const node = yield* spawnNode(home, ["--laddr", "tcp://127.0.0.1:0", "--http-addr", "127.0.0.1:0"], { openFiles: 128 })
      // From 300 networks (127.30.0.1 ... 127.31.49.1), so per-IP and per-network caps do not stop them first.
      const flood = yield* Effect.acquireRelease(
        Effect.sync(() => Array.from({ length: 300 }, (_, i) => Net.connect({ port: node.p2pPort, host: "127.0.0.1", localAddress: `127.${30 + Math.floor(i / 250)}.${i % 250}.1` }).on("error", () => {}))),
        (sockets) => Effect.sync(() => sockets.forEach((s) => s.destroy()))
      )
      const refusedMetrics = yield* eventually(10_000, "fd_limit refusals in /metrics", metrics(node.httpPort), (t) => metric(t, "p2p_inbound_refused", `reason="fd_limit"`) > 0)
      assert.isAbove(metric(refusedMetrics, "p2p_inbound_refused", `reason="fd_limit"`), 100)
      assert.strictEqual((yield* netInfo(node.httpPort)).result.listening, true)
      const warnings = node.output().split("\n").filter((l) => l.includes("inbound connection(s)"))
      assert.isAtLeast(warnings.length, 1)
      assert.isAtMost(warnings.length, 2, "one warning per interval, not one per connection")
      assert.include(warnings[0], "ulimit -n 128")
      for (const s of flood) s.destroy()
      const peer = yield* startNode(homeWith(""), "--persistent-peers", `${node.nodeId}@127.0.0.1:${node.p2pPort}`)
      yield* eventually(15_000, "a peer to connect after the flood", netInfo(peer.httpPort), (i) => i.result.n_peers === "1")
    }).pipe(Effect.scoped), 60_000)
})

describe("bans, with real processes", () => {
  it.live("a ban made over HTTP keeps a peer out and survives a restart of the node", () =>
    Effect.gen(function* () {
      const intruder = homeWithId()
      const home = homeWith("")
      const guard = yield* startNode(home)
      const made = JSON.parse((yield* get(guard.httpPort, `/unsafe_ban?subject=${intruder.id}&duration=1h&reason=tests`)).text) as { result: { ban: { subject: string; until: string } } }
      assert.strictEqual(made.result.ban.subject, intruder.id)
      assert.strictEqual((yield* stopGracefully(guard.child)).code, 0)
      const restarted = yield* startNode(home)
      const listed = JSON.parse((yield* get(restarted.httpPort, "/bans")).text) as { result: { bans: Array<{ subject: string; reason: string }> } }
      assert.deepStrictEqual(listed.result.bans.map((b) => [b.subject, b.reason]), [[intruder.id, "tests"]])
      yield* startNode(intruder.home, "--persistent-peers", `${restarted.nodeId}@127.0.0.1:${restarted.p2pPort}`)
      yield* eventually(10_000, "the banned peer to be refused", metrics(restarted.httpPort), (t) => metric(t, "p2p_inbound_refused", `reason="banned"`) >= 1)
      assert.strictEqual((yield* netInfo(restarted.httpPort)).result.n_peers, "0")
      assert.strictEqual(metric(yield* metrics(restarted.httpPort), "p2p_bans", `kind="node"`), 1)
    }).pipe(Effect.scoped), 60_000)
})

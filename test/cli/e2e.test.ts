// End to end with real processes: `effect-p2p start` twice on loopback.
import { assert, describe, it } from "@effect/vitest"
import { spawnSync } from "node:child_process"
import { copyFileSync, mkdtempSync, rmSync, writeFileSync, existsSync, mkdirSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { Effect } from "effect"
import { eventually, get, getUnix, main, metricValue, netInfo, rpc, spawnNode, spawnUnixNode, startNode, stopGracefully, type NetInfo } from "./processes.ts"

describe("effect-p2p start (real processes)", () => {
  it.live("two nodes connect as persistent peers, serve /net_info and /metrics, stop on SIGTERM with 0, and remember peers", () =>
    Effect.gen(function* () {
      const [homeA, homeB] = [mkdtempSync(join(tmpdir(), "p2p-a-")), mkdtempSync(join(tmpdir(), "p2p-b-"))]
      const a = yield* startNode(homeA, "--moniker", "alpha", "--network", "e2e")
      const b = yield* startNode(homeB, "--moniker", "beta", "--network", "e2e", "--persistent-peers", `${a.nodeId}@127.0.0.1:${a.p2pPort}`)
      const infoA = yield* eventually(10_000, "a to see b", netInfo(a.httpPort), (i) => i.result.peers.some((p) => p.node_info.id === b.nodeId))
      const infoB = yield* eventually(10_000, "b to see a", netInfo(b.httpPort), (i) => i.result.peers.some((p) => p.node_info.id === a.nodeId))
      // CometBFT's net_info: JSON-RPC envelope, 64-bit numbers as strings, channels as upper-case hex.
      assert.strictEqual(infoA.jsonrpc, "2.0")
      assert.strictEqual(infoA.id, -1)
      assert.isTrue(infoA.result.listening)
      assert.deepStrictEqual(infoA.result.listeners, [`Listener(@127.0.0.1:${a.p2pPort})`])
      assert.strictEqual(infoA.result.n_peers, "1")
      const peerA = infoB.result.peers.find((p) => p.node_info.id === a.nodeId)!
      assert.isTrue(peerA.is_outbound)
      assert.strictEqual(peerA.remote_ip, "127.0.0.1")
      assert.strictEqual(peerA.node_info.moniker, "alpha")
      assert.strictEqual(peerA.node_info.network, "e2e")
      assert.strictEqual(peerA.node_info.channels, "00")
      assert.strictEqual(peerA.node_info.protocol_version.p2p, "8")
      assert.match(peerA.connection_status.Duration, /^\d+$/)
      assert.match(peerA.connection_status.SendMonitor.Start, /^\d{4}-\d\d-\d\dT[\d:.]+Z$/)
      assert.deepStrictEqual(peerA.connection_status.Channels.map((c) => [c.ID, c.SendQueueCapacity, c.Priority]), [[0, "10", "1"]])

      // The same over JSON-RPC POST, single and batched; /status carries node_info.
      const single = (yield* rpc(b.httpPort, { jsonrpc: "2.0", id: 7, method: "net_info", params: {} })) as NetInfo
      assert.strictEqual(single.id, 7)
      assert.strictEqual(single.result.n_peers, "1")
      const batch = (yield* rpc(b.httpPort, [{ jsonrpc: "2.0", id: "s", method: "status" }, { jsonrpc: "2.0", id: 2, method: "nope" }])) as ReadonlyArray<{ id: unknown; result?: { node_info: { id: string } }; error?: { code: number } }>
      assert.strictEqual(batch[0]!.result!.node_info.id, b.nodeId)
      assert.strictEqual(batch[1]!.error!.code, -32601)
      const status = JSON.parse((yield* get(a.httpPort, "/status")).text) as { result: { node_info: { id: string; moniker: string } } }
      assert.deepStrictEqual([status.result.node_info.id, status.result.node_info.moniker], [a.nodeId, "alpha"])
      assert.strictEqual((yield* get(a.httpPort, "/health")).status, 200)

      // Metrics: CometBFT's names and labels (peer_id, chID as Go's %#x, message_type).
      const metrics = yield* eventually(5_000, "PEX traffic in b's metrics", Effect.map(get(b.httpPort, "/metrics"), (r) => r.text), (t) => t.includes("p2p_PexRequest"))
      assert.match(metrics, /^cometbft_p2p_peers 1$/m)
      assert.match(metrics, new RegExp(`^cometbft_p2p_peer_send_bytes_total\\{(?=[^}]*chID="0x0")(?=[^}]*peer_id="${a.nodeId}")[^}]*\\} \\d+`, "m"))
      assert.match(metrics, /^cometbft_p2p_message_send_bytes_total\{message_type="p2p_PexRequest"\} \d+/m)
      assert.match(metrics, new RegExp(`^cometbft_p2p_peer_pending_send_bytes\\{peer_id="${a.nodeId}"\\} \\d+`, "m"))
      // B has sent A a PEX request by now: its send monitor for A counted the bytes.
      const afterPex = (yield* netInfo(b.httpPort)).result.peers.find((p) => p.node_info.id === a.nodeId)!
      assert.isAbove(Number(afterPex.connection_status.SendMonitor.Bytes), 0)

      const stopped = yield* stopGracefully(b.child)
      assert.strictEqual(stopped.code, 0, b.output())
      assert.isBelow(stopped.ms, 5000)
      assert.match(b.output(), /shutting down/)

      // Restart B without flags: it still knows A from its peer store and reconnects.
      const b2 = yield* startNode(homeB, "--network", "e2e")
      yield* eventually(10_000, "restarted b to reconnect to a", netInfo(b2.httpPort), (i) => i.result.peers.some((p) => p.node_info.id === a.nodeId))
      assert.strictEqual((yield* stopGracefully(b2.child)).code, 0)
      assert.strictEqual((yield* stopGracefully(a.child)).code, 0)
    }).pipe(Effect.scoped), 60_000)

  it.live("a fresh node's gauges exist from the start, at zero", () =>
    Effect.gen(function* () {
      const node = yield* startNode(mkdtempSync(join(tmpdir(), "p2p-fresh-")))
      const metrics = (yield* get(node.httpPort, "/metrics")).text
      for (const gauge of ["p2p_peers", "p2p_peers_stored", "p2p_peers_connected_incoming", "p2p_peers_connected_outgoing", "p2p_router_peer_queue_send"]) {
        assert.match(metrics, new RegExp(`^cometbft_${gauge} 0$`, "m"), gauge)
      }
      assert.strictEqual((yield* stopGracefully(node.child)).code, 0)
    }).pipe(Effect.scoped), 30_000)

  it.live("a CometBFT v0.38 config.toml starts the node unchanged: RPC on rpc.laddr, no /metrics (prometheus = false), ignored keys named once", () =>
    Effect.gen(function* () {
      const home = mkdtempSync(join(tmpdir(), "p2p-comet-"))
      mkdirSync(join(home, "config"))
      copyFileSync(join(dirname(fileURLToPath(import.meta.url)), "fixtures", "cometbft-v0.38-config.toml"), join(home, "config", "config.toml"))
      // Only the ports move (flags), so tests never bind CometBFT's fixed ports; the file is as written.
      const node = yield* spawnNode(home, ["--laddr", "tcp://127.0.0.1:0", "--rpc-laddr", "127.0.0.1:0"])
      const warnings = node.output().split("\n").filter((l) => l.includes("ignoring CometBFT settings"))
      assert.strictEqual(warnings.length, 1)
      assert.include(warnings[0], "p2p.addr_book_file, p2p.addr_book_strict, p2p.flush_throttle_timeout, p2p.allow_duplicate_ip")
      assert.notMatch(node.output(), /serving \/metrics/)
      const status = JSON.parse((yield* get(node.httpPort, "/status")).text) as { result: { node_info: { moniker: string; other: { rpc_address: string } } } }
      assert.strictEqual(status.result.node_info.moniker, "cometbft-node")
      assert.strictEqual(status.result.node_info.other.rpc_address, "tcp://127.0.0.1:0")
      assert.strictEqual((yield* get(node.httpPort, "/metrics")).status, 404)
      assert.strictEqual((yield* stopGracefully(node.child)).code, 0)
    }).pipe(Effect.scoped), 30_000)

  it.live("--probe over unix sockets: two nodes exchange numbered probe messages, counted on /metrics through rpc.laddr = unix://; the socket goes with the node, and a killed node's is replaced", () =>
    Effect.gen(function* () {
      const dir = yield* Effect.acquireRelease(Effect.sync(() => mkdtempSync(join(tmpdir(), "p2p-unix-"))), (d) => Effect.sync(() => rmSync(d, { recursive: true, force: true })))
      const [sockA, sockB] = [join(dir, "a.sock"), join(dir, "b.sock")]
      const a = yield* spawnUnixNode(join(dir, "a"), sockA, ["--probe", "--network", "e2e"])
      assert.match(a.output(), /probe on channel 0x7f: a message to each peer every 100ms, epoch \d+/)
      const b = yield* spawnUnixNode(join(dir, "b"), sockB, ["--probe-interval", "50ms", "--network", "e2e", "--persistent-peers", `${a.nodeId}@127.0.0.1:${a.p2pPort}`])
      const probes = (socket: string) =>
        Effect.map(getUnix(socket, "/metrics"), (r) => ({
          peers: metricValue(r.text, "cometbft_p2p_peers"),
          sent: metricValue(r.text, "cometbft_p2p_probe_sent_total") ?? 0,
          received: metricValue(r.text, "cometbft_p2p_probe_received_total") ?? 0,
          missing: metricValue(r.text, "cometbft_p2p_probe_missing_total"),
          duplicateOrReordered: metricValue(r.text, "cometbft_p2p_probe_duplicate_or_reordered_total")
        }))
      const atA = yield* eventually(10_000, "a to receive 20 probe messages", probes(sockA), (m) => m.received >= 20)
      const atB = yield* eventually(10_000, "b to receive 20 probe messages", probes(sockB), (m) => m.received >= 20)
      for (const m of [atA, atB]) assert.deepStrictEqual([m.peers, m.missing, m.duplicateOrReordered], [1, 0, 0])
      const info = JSON.parse((yield* getUnix(sockB, "/net_info")).text) as NetInfo
      assert.strictEqual(info.result.peers[0]!.node_info.channels, "007F")
      assert.strictEqual(JSON.parse((yield* getUnix(sockB, "/status")).text).result.node_info.other.rpc_address, `unix://${sockB}`)

      // SIGTERM: the node exits 0 and its socket file is gone.
      assert.strictEqual((yield* stopGracefully(b.child)).code, 0)
      assert.isFalse(existsSync(sockB))
      // SIGKILL leaves the file behind; the next start replaces it.
      a.child.kill("SIGKILL")
      yield* Effect.promise(() => new Promise((resolve) => a.child.once("exit", resolve)))
      assert.isTrue(existsSync(sockA))
      const a2 = yield* spawnUnixNode(join(dir, "a"), sockA, ["--network", "e2e"])
      assert.strictEqual((yield* getUnix(sockA, "/health")).status, 200)
      assert.strictEqual((yield* stopGracefully(a2.child)).code, 0)
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
    assert.match(badFile.stderr, /^effect-p2p: p2p\.max_num_inbound_peers: Expected number, got "many"$/m)
    assert.isFalse(existsSync(join(home, "config", "node_key.json")))

    assert.strictEqual(run("start", "--home", home, "--no-such-flag").status, 2)
  }, 60_000)
})

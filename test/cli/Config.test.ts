import { assert, describe, it } from "@effect/vitest"
import { Result } from "effect"
import * as Config from "../../src/cli/Config.ts"
import { formatGoDuration, parseGoDuration } from "../../src/domain/GoDuration.ts"
import * as Start from "../../src/cli/Start.ts"

const id = "a".repeat(40)
const errorOf = <A>(r: Result.Result<A, Config.ConfigError>) => (Result.isFailure(r) ? r.failure : undefined)

describe("config.toml and flags", () => {
  it("Go durations parse and print", () => {
    assert.strictEqual(parseGoDuration("100ms"), 100)
    assert.strictEqual(parseGoDuration("20s"), 20_000)
    assert.strictEqual(parseGoDuration("1m30s"), 90_000)
    assert.strictEqual(parseGoDuration("0s"), 0)
    assert.strictEqual(parseGoDuration("0"), 0)
    assert.isUndefined(parseGoDuration("20"))
    assert.isUndefined(parseGoDuration("s"))
    assert.isUndefined(parseGoDuration("5 s"))
    assert.strictEqual(formatGoDuration(10), "10ms")
    assert.strictEqual(formatGoDuration(20_000), "20s")
    assert.strictEqual(formatGoDuration(90_000), "1m30s")
  })

  it("the defaults follow CometBFT's [p2p] settings, listening on loopback", () => {
    const c = Config.resolve()
    assert.deepStrictEqual(c.p2p.laddr, { host: "127.0.0.1", port: 26656 })
    assert.strictEqual(c.p2p.handshakeTimeout, 20_000)
    assert.strictEqual(c.p2p.dialTimeout, 3_000)
    assert.strictEqual(c.p2p.maxPacketMsgPayloadSize, 1024)
    assert.strictEqual(c.p2p.sendRate, 5_120_000)
    assert.strictEqual(c.p2p.maxNumInboundPeers, 40)
    assert.strictEqual(c.p2p.maxNumOutboundPeers, 10)
    assert.isTrue(c.p2p.pex)
    assert.strictEqual(c.instrumentation.httpAddr, "127.0.0.1:26660")
    assert.isTrue(c.instrumentation.prometheus)
    assert.strictEqual(c.rpc.laddr, "")
  })

  it("written config reads back to the same configuration", () => {
    const c = Config.resolve({ "p2p.persistent_peers": Result.getOrThrow(Config.parsePeerList("x", `${id}@10.0.0.1:26656`)), moniker: "m1" })
    const back = Result.getOrThrow(Config.fromToml("config.toml", Config.toToml(c)))
    assert.deepStrictEqual(Config.resolve(back.values), c)
    assert.deepStrictEqual(back.ignored, [])
  })

  it("flags override the file, which overrides the defaults", () => {
    const file = Result.getOrThrow(Config.fromToml("config.toml", `moniker = "from-file"\n[p2p]\nladdr = "tcp://0.0.0.0:1234"\npex = false\n`))
    const flags = Result.getOrThrow(Config.fromFlags({ laddr: "tcp://127.0.0.1:5678", pex: undefined }))
    const c = Config.resolve(file.values, flags)
    assert.strictEqual(c.moniker, "from-file")
    assert.deepStrictEqual(c.p2p.laddr, { host: "127.0.0.1", port: 5678 })
    assert.isFalse(c.p2p.pex)
  })

  it("a CometBFT config.toml with its other sections and keys loads", () => {
    const toml = `proxy_app = "tcp://127.0.0.1:26658"\nmoniker = "val"\n[rpc]\nladdr = "tcp://127.0.0.1:26657"\n[p2p]\nladdr = "tcp://0.0.0.0:26656"\naddr_book_strict = true\nseeds = "${id}@seed.example.com:26656"\n[consensus]\ntimeout_commit = "1s"\n`
    const file = Result.getOrThrow(Config.fromToml("config.toml", toml))
    const c = Config.resolve(file.values)
    assert.strictEqual(c.p2p.seeds[0]?.hostname, "seed.example.com")
    assert.strictEqual(c.rpc.laddr, "127.0.0.1:26657")
    assert.deepStrictEqual(file.ignored, ["p2p.addr_book_strict"])
  })

  it("legacy [p2p] keys of CometBFT v0.34-v1.0 are accepted and listed as ignored, once each", () => {
    const toml = `[p2p]\nupnp = false\naddr_book_file = "config/addrbook.json"\nflush_throttle_timeout = "100ms"\nallow_duplicate_ip = false\nunconditional_peer_ids = ""\n[p2p.test_fuzz_config]\nMode = 0\nMaxDelay = "3s"\n`
    const file = Result.getOrThrow(Config.fromToml("config.toml", toml))
    assert.deepStrictEqual(file.ignored, ["p2p.upnp", "p2p.addr_book_file", "p2p.flush_throttle_timeout", "p2p.allow_duplicate_ip", "p2p.test_fuzz_config"])
    assert.deepStrictEqual(file.values, { "p2p.unconditional_peer_ids": [] })
  })

  it("instrumentation.prometheus, rpc.laddr, log_format and persistent_peers_max_dial_period are read", () => {
    const toml = `log_format = "json"\n[rpc]\nladdr = "tcp://0.0.0.0:26657"\ncors_allowed_origins = []\n[p2p]\npersistent_peers_max_dial_period = "30s"\n[instrumentation]\nprometheus = false\nprometheus_listen_addr = ":26660"\nmax_open_connections = 3\n`
    const c = Config.resolve(Result.getOrThrow(Config.fromToml("config.toml", toml)).values)
    assert.strictEqual(c.logFormat, "json")
    assert.strictEqual(c.rpc.laddr, "0.0.0.0:26657")
    assert.strictEqual(c.p2p.persistentPeersMaxDialPeriod, 30_000)
    assert.isFalse(c.instrumentation.prometheus)
    assert.strictEqual(c.instrumentation.httpAddr, ":26660")
    // --http-addr asks for the metrics server, whatever the file says.
    const flags = Result.getOrThrow(Config.fromFlags({ "http-addr": "127.0.0.1:0" }))
    assert.isTrue(Config.resolve({ "instrumentation.prometheus": false }, flags).instrumentation.prometheus)
  })

  it("values that cannot work are refused with the key and the bound", () => {
    const bad = (toml: string) => errorOf(Result.flatMap(Config.fromToml("config.toml", toml), (f) => Config.validate(Config.resolve(f.values))))
    assert.match(bad(`[p2p]\nhandshake_timeout = "0s"`)!.message, /^p2p\.handshake_timeout: must be from 100ms to 10m, got "0s"/)
    assert.match(bad(`[p2p]\ndial_timeout = "50ms"`)!.message, /^p2p\.dial_timeout: must be from 100ms to 10m/)
    assert.match(bad(`[p2p]\ndial_timeout = "1h"`)!.message, /^p2p\.dial_timeout: must be from 100ms to 10m/)
    assert.match(bad(`[p2p]\nmax_num_inbound_peers = 0\nmax_num_outbound_peers = 0`)!.message, /^p2p\.max_num_inbound_peers: 0 with p2p\.max_num_outbound_peers = 0 .*no way to connect/)
    assert.match(bad(`[p2p]\nsend_rate = 100`)!.message, /^p2p\.send_rate: 100 bytes\/s cannot send one packet .* use at least 1040/)
    assert.match(bad(`[p2p]\nrecv_rate = 1000`)!.message, /^p2p\.recv_rate: /)
    // No slots of their own, but persistent or unconditional peers: a sentry-protected validator.
    assert.isUndefined(bad(`[p2p]\nmax_num_inbound_peers = 0\nmax_num_outbound_peers = 0\npersistent_peers = "${id}@10.0.0.1:26656"`))
    assert.isUndefined(bad(`[p2p]\nmax_num_inbound_peers = 0\nmax_num_outbound_peers = 0\nunconditional_peer_ids = "${id}"`))
  })

  it("rpc.laddr takes a unix socket, unix:///abs/path.sock, from the file or --rpc-laddr", () => {
    const file = (laddr: string) => Config.fromToml("config.toml", `[rpc]\nladdr = ${JSON.stringify(laddr)}\n`)
    assert.strictEqual(Config.resolve(Result.getOrThrow(file("unix:///run/node0/rpc.sock")).values).rpc.laddr, "unix:///run/node0/rpc.sock")
    assert.strictEqual(Config.resolve(Result.getOrThrow(Config.fromFlags({ "rpc-laddr": "unix:///tmp/n1.sock" }))).rpc.laddr, "unix:///tmp/n1.sock")
    // TCP as before: with or without tcp://.
    assert.strictEqual(Config.resolve(Result.getOrThrow(file("tcp://127.0.0.1:26657")).values).rpc.laddr, "127.0.0.1:26657")
    // What init writes reads back the same.
    const c = Config.resolve(Result.getOrThrow(file("unix:///run/node0/rpc.sock")).values)
    assert.include(Config.toToml(c), `laddr = "unix:///run/node0/rpc.sock"`)
    assert.deepStrictEqual(Config.resolve(Result.getOrThrow(Config.fromToml("config.toml", Config.toToml(c))).values), c)
  })

  it("a bad unix rpc.laddr is one error naming rpc.laddr (or --rpc-laddr) and the problem", () => {
    const bad = (laddr: string) => errorOf(Config.fromToml("config.toml", `[rpc]\nladdr = ${JSON.stringify(laddr)}\n`))!
    assert.strictEqual(bad("unix://rpc.sock").key, "rpc.laddr")
    assert.match(bad("unix://rpc.sock").message, /^rpc\.laddr: "unix:\/\/rpc\.sock" must name an absolute path, like "unix:\/\/\/var\/run\/effect-p2p\/rpc\.sock"$/)
    assert.match(bad("unix://").message, /^rpc\.laddr: "unix:\/\/" must name an absolute path/)
    assert.match(bad("unix:///tmp/").message, /^rpc\.laddr: .* names a directory, not a socket file$/)
    assert.match(bad(`unix:///${"d".repeat(110)}.sock`).message, /^rpc\.laddr: .*the socket path is 116 bytes; unix socket paths hold at most 107$/)
    assert.match(bad("unix:///tmp/caf\u00e9.sock").message, /^rpc\.laddr: .*must be printable ASCII$/)
    assert.match(bad("nowhere").message, /^rpc\.laddr: "nowhere" is not "host:port", "tcp:\/\/host:port" or "unix:\/\/\/abs\/path\.sock"$/)
    const flag = errorOf(Config.fromFlags({ "rpc-laddr": "unix://relative.sock" }))!
    assert.deepStrictEqual([flag.key, flag.message.startsWith("--rpc-laddr: ")], ["--rpc-laddr", true])
  })

  it("log_level takes one level or CometBFT's module:level list", () => {
    const level = (v: string) => Config.fromToml("config.toml", `log_level = ${JSON.stringify(v)}`)
    assert.strictEqual(Config.resolve(Result.getOrThrow(level("debug")).values).logLevel, "debug")
    assert.strictEqual(Config.resolve(Result.getOrThrow(level("main:info,p2p:debug,*:error")).values).logLevel, "main:info,p2p:debug,*:error")
    assert.match(errorOf(level("loud"))!.message, /^log_level: "loud" is not a level/)
    assert.match(errorOf(level("p2p:loud"))!.message, /^log_level: "loud" in "p2p:loud" is not a level/)
  })

  it("each bad value is one error naming the key and the problem", () => {
    const bad = (toml: string) => errorOf(Config.fromToml("config.toml", toml))
    assert.match(bad(`[instrumentation]\nprometheus = "yes"`)!.message, /^instrumentation\.prometheus: must be true or false/)
    assert.match(bad(`[rpc]\nladdr = "nowhere"`)!.message, /^rpc\.laddr: /)
    assert.match(bad(`[p2p]\npersistent_peers_max_dial_period = "10ms"`)!.message, /^p2p\.persistent_peers_max_dial_period: must be 0s/)
    assert.match(bad(`log_format = "xml"`)!.message, /^log_format: must be "plain" or "json"/)
    assert.match(bad(`[p2p]\nladdr = "nowhere"`)!.message, /^p2p\.laddr: .*not an address/)
    assert.match(bad(`[p2p]\nmax_num_inbound_peers = -1`)!.message, /^p2p\.max_num_inbound_peers: Expected a value between 0 and 65535, got -1$/)
    assert.match(bad(`[p2p]\nhandshake_timeout = "20"`)!.message, /^p2p\.handshake_timeout: must be a duration/)
    assert.match(bad(`[p2p]\npex = "yes"`)!.message, /^p2p\.pex: must be true or false/)
    assert.match(bad(`[p2p]\npersistent_peers = "nope@1.2.3.4:1"`)!.message, /^p2p\.persistent_peers: /)
    assert.match(bad(`[p2p]\nseeds = "${id}@10.0.0.1"`)!.message, /^p2p\.seeds: peer .* has no port: use id@host:port/)
    assert.match(bad(`[p2p]\nseeds = "${id}@10.0.0/1:26656"`)!.message, /^p2p\.seeds: peer .* has "\/1:26656" after its host/)
    assert.match(bad(`[p2p]\nprivate_peer_ids = "xyz"`)!.message, /^p2p\.private_peer_ids: /)
    assert.match(bad(`[p2p]\nmystery = 1`)!.message, /^p2p\.mystery: unknown key/)
    assert.match(bad(`moniker = ""`)!.message, /^moniker: must not be empty/)
    assert.match(bad(`this is not toml`)!.message, /^config\.toml: not valid TOML/)
    assert.match(errorOf(Config.fromFlags({ laddr: "x" }))!.message, /^--laddr: /)
    assert.match(errorOf(Config.fromFlags({ "http-addr": "nohost" }))!.message, /^--http-addr: /)
    assert.match(errorOf(Config.fromFlags({ "persistent-peers": `${id}` }))!.message, /^--persistent-peers: /)
  })
})

describe("start: configuration to node and HTTP servers", () => {
  const config = (toml: string) => Config.resolve(Result.getOrThrow(Config.fromToml("config.toml", toml)).values)

  it("prometheus serves /metrics with the RPC endpoints beside it; rpc.laddr serves RPC alone; one address, one server", () => {
    const servers = (toml: string) => Start.httpServers(config(toml)).map((s) => [s.address, s.metrics, s.rpc, s.maxOpenConnections])
    assert.deepStrictEqual(servers(""), [["127.0.0.1:26660", true, true, 3]])
    assert.deepStrictEqual(servers(`[instrumentation]\nprometheus = false\n[rpc]\nladdr = "tcp://127.0.0.1:26657"`), [["127.0.0.1:26657", false, true, 900]])
    assert.deepStrictEqual(servers(`[rpc]\nladdr = "tcp://127.0.0.1:26657"`), [["127.0.0.1:26660", true, true, 3], ["127.0.0.1:26657", false, true, 900]])
    assert.deepStrictEqual(servers(`[rpc]\nladdr = "127.0.0.1:26660"`), [["127.0.0.1:26660", true, true, 3]])
    assert.deepStrictEqual(servers(`[instrumentation]\nprometheus_listen_addr = ""`), [])
  })

  it("rpc.laddr on a unix socket also serves /metrics (while prometheus is on) and the unsafe methods", () => {
    const servers = (toml: string) => Start.httpServers(config(toml)).map((s) => [s.address, s.metrics, s.rpc, s.unsafe])
    assert.deepStrictEqual(servers(`[rpc]\nladdr = "unix:///run/n0/rpc.sock"\n[instrumentation]\nprometheus_listen_addr = ""`), [["unix:///run/n0/rpc.sock", true, true, true]])
    assert.deepStrictEqual(servers(`[rpc]\nladdr = "unix:///run/n0/rpc.sock"`), [["127.0.0.1:26660", true, true, true], ["unix:///run/n0/rpc.sock", true, true, true]])
    assert.deepStrictEqual(servers(`[rpc]\nladdr = "unix:///run/n0/rpc.sock"\n[instrumentation]\nprometheus = false`), [["unix:///run/n0/rpc.sock", false, true, true]])
    // On TCP nothing changes: RPC alone, unsafe only on loopback.
    assert.deepStrictEqual(servers(`[rpc]\nladdr = "0.0.0.0:26657"\n[instrumentation]\nprometheus_listen_addr = ""`), [["0.0.0.0:26657", false, true, false]])
    assert.strictEqual(Start.toNodeConfig("/home", config(`[rpc]\nladdr = "unix:///run/n0/rpc.sock"`)).router?.nodeInfo?.other?.rpcAddress, "unix:///run/n0/rpc.sock")
  })

  it("--probe adds the probe channel; --probe-interval sets its rate (default 100ms) and implies --probe", () => {
    const interval = (options: Start.StartOptions) => Result.map(Start.probeInterval(options), (ms) => ms ?? "off")
    assert.deepStrictEqual(interval({}), Result.succeed("off"))
    assert.deepStrictEqual(interval({ probe: false }), Result.succeed("off"))
    assert.deepStrictEqual(interval({ probe: true }), Result.succeed(100))
    assert.deepStrictEqual(interval({ probeInterval: "250ms" }), Result.succeed(250))
    assert.deepStrictEqual(interval({ probe: true, probeInterval: "1s" }), Result.succeed(1000))
    for (const bad of ["0s", "2h", "fast", "100"]) {
      const e = errorOf(Start.probeInterval({ probe: true, probeInterval: bad }))!
      assert.strictEqual(e.key, "--probe-interval")
      assert.match(e.message, /^--probe-interval: must be/)
    }
    const channels = (options: Start.StartOptions) => (Start.toNodeConfig("/home", config(""), options).channels ?? []).map((c) => c.id)
    assert.deepStrictEqual(channels({}), [])
    assert.deepStrictEqual(channels({ probe: true }), [0x7f])
    assert.deepStrictEqual(channels({ probeInterval: "50ms" }), [0x7f])
  })

  it("ping_interval and pong_timeout set the keepalive of every connection, pong below ping", () => {
    const node = Start.toNodeConfig("/home", config(`[p2p]\nping_interval = "10s"\npong_timeout = "5s"`))
    assert.strictEqual(node.mconnection?.pingInterval, 10_000)
    assert.strictEqual(node.mconnection?.pongTimeout, 5_000)
    const plain = Start.toNodeConfig("/home", config(""))
    assert.strictEqual(plain.mconnection?.pingInterval, 60_000)
    assert.strictEqual(plain.mconnection?.pongTimeout, 45_000)
    const bad = (toml: string) => errorOf(Config.fromToml("config.toml", toml))
    assert.match(bad(`[p2p]\nping_interval = "10ms"`)!.message, /^p2p\.ping_interval: must be from 1s to 10m/)
    assert.match(bad(`[p2p]\npong_timeout = "soon"`)!.message, /^p2p\.pong_timeout: must be a duration/)
    const crossed = Config.validate(Config.resolve(Result.getOrThrow(Config.fromToml("config.toml", `[p2p]\nping_interval = "10s"\npong_timeout = "10s"`)).values))
    assert.match(errorOf(crossed)!.message, /^p2p\.pong_timeout: 10s must be below p2p\.ping_interval \(10s\)/)
    assert.match(Config.toToml(Config.resolve()), /ping_interval = "1m0?s?"[\s\S]*pong_timeout = "45s"/)
  })

  it("persistent_peers_max_dial_period caps persistent retries; rpc.laddr is advertised as rpc_address", () => {
    const node = Start.toNodeConfig("/home", config(`[p2p]\npersistent_peers_max_dial_period = "30s"\n[rpc]\nladdr = "tcp://127.0.0.1:26657"`))
    assert.strictEqual(node.peerManager?.maxRetryTimePersistent, 30_000)
    assert.strictEqual(node.router?.nodeInfo?.other?.rpcAddress, "tcp://127.0.0.1:26657")
    const plain = Start.toNodeConfig("/home", config(""))
    assert.isUndefined(plain.peerManager)
    assert.isUndefined(plain.router)
  })
})

describe("version", () => {
  it("the command reports the package's version", async () => {
    const { readFile } = await import("node:fs/promises")
    const pkg = JSON.parse(await readFile(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }
    assert.strictEqual(Start.VERSION, pkg.version)
  })
})

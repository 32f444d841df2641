import { assert, describe, it } from "@effect/vitest"
import { Result } from "effect"
import * as Config from "../../src/cli/Config.ts"
import { formatGoDuration, parseGoDuration } from "../../src/cli/Duration.ts"

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
    assert.strictEqual(c.p2p.flushThrottleTimeout, 10)
    assert.strictEqual(c.p2p.sendRate, 5_120_000)
    assert.strictEqual(c.p2p.maxNumInboundPeers, 40)
    assert.strictEqual(c.p2p.maxNumOutboundPeers, 10)
    assert.isTrue(c.p2p.pex)
    assert.isFalse(c.p2p.allowDuplicateIp)
    assert.strictEqual(c.instrumentation.httpAddr, "127.0.0.1:26660")
  })

  it("written config reads back to the same configuration", () => {
    const c = Config.resolve({ "p2p.persistent_peers": Result.getOrThrow(Config.parsePeerList("x", `${id}@10.0.0.1:26656`)), moniker: "m1" })
    const back = Result.getOrThrow(Config.fromToml("config.toml", Config.toToml(c)))
    assert.deepStrictEqual(Config.resolve(back), c)
  })

  it("flags override the file, which overrides the defaults", () => {
    const file = Result.getOrThrow(Config.fromToml("config.toml", `moniker = "from-file"\n[p2p]\nladdr = "tcp://0.0.0.0:1234"\npex = false\n`))
    const flags = Result.getOrThrow(Config.fromFlags({ laddr: "tcp://127.0.0.1:5678", pex: undefined }))
    const c = Config.resolve(file, flags)
    assert.strictEqual(c.moniker, "from-file")
    assert.deepStrictEqual(c.p2p.laddr, { host: "127.0.0.1", port: 5678 })
    assert.isFalse(c.p2p.pex)
  })

  it("a CometBFT config.toml with its other sections and keys loads", () => {
    const toml = `proxy_app = "tcp://127.0.0.1:26658"\nmoniker = "val"\n[rpc]\nladdr = "tcp://127.0.0.1:26657"\n[p2p]\nladdr = "tcp://0.0.0.0:26656"\naddr_book_strict = true\nseeds = "${id}@seed.example.com:26656"\n[consensus]\ntimeout_commit = "1s"\n`
    const c = Config.resolve(Result.getOrThrow(Config.fromToml("config.toml", toml)))
    assert.strictEqual(c.p2p.seeds[0]?.hostname, "seed.example.com")
  })

  it("each bad value is one error naming the key and the problem", () => {
    const bad = (toml: string) => errorOf(Config.fromToml("config.toml", toml))
    assert.match(bad(`[p2p]\nladdr = "nowhere"`)!.message, /^p2p\.laddr: .*not an address/)
    assert.match(bad(`[p2p]\nmax_num_inbound_peers = -1`)!.message, /^p2p\.max_num_inbound_peers: must be an integer/)
    assert.match(bad(`[p2p]\nhandshake_timeout = "20"`)!.message, /^p2p\.handshake_timeout: must be a duration/)
    assert.match(bad(`[p2p]\npex = "yes"`)!.message, /^p2p\.pex: must be true or false/)
    assert.match(bad(`[p2p]\npersistent_peers = "nope@1.2.3.4:1"`)!.message, /^p2p\.persistent_peers: /)
    assert.match(bad(`[p2p]\nprivate_peer_ids = "xyz"`)!.message, /^p2p\.private_peer_ids: /)
    assert.match(bad(`[p2p]\nmystery = 1`)!.message, /^p2p\.mystery: unknown key/)
    assert.match(bad(`moniker = ""`)!.message, /^moniker: must not be empty/)
    assert.match(bad(`this is not toml`)!.message, /^config\.toml: not valid TOML/)
    assert.match(errorOf(Config.fromFlags({ laddr: "x" }))!.message, /^--laddr: /)
    assert.match(errorOf(Config.fromFlags({ "http-addr": "nohost" }))!.message, /^--http-addr: /)
    assert.match(errorOf(Config.fromFlags({ "persistent-peers": `${id}` }))!.message, /^--persistent-peers: /)
  })
})

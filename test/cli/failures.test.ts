// Every way `effect-p2p` fails that an operator meets: the real command, its exit code, its one or
// two lines, and what it wrote or left alone.
import { assert, describe, it } from "@effect/vitest"
import { randomBytes, randomFillSync } from "node:crypto"
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import * as Net from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { DatabaseSync } from "node:sqlite"
import { Context, Effect, Layer } from "effect"
import * as NodeId from "../../src/domain/NodeId.ts"
import * as PeerRecord from "../../src/domain/PeerRecord.ts"
import * as PeerStoreSqlite from "../../src/layers/PeerStoreSqlite.ts"
import { PeerStore } from "../../src/services/PeerStore.ts"
import { lines, runCommand, spawnNode, stopGracefully } from "./processes.ts"

const isRoot = process.getuid?.() === 0
/** Permission tests: as root, run the command as `nobody`, whom file modes do stop. */
const unprivileged = isRoot ? { uid: 65534, gid: 65534 } : {}

/** A home that does not exist yet, in a directory every user may enter (the permission tests run as `nobody`). */
const newHome = () => {
  const parent = mkdtempSync(join(tmpdir(), "p2p-fail-"))
  chmodSync(parent, 0o755)
  return join(parent, "home")
}
const free = ["--laddr", "tcp://127.0.0.1:0", "--http-addr", "127.0.0.1:0"]

/** A home with config and key written by `init`, and a peer store holding 200 peers. */
const homeWithStore = () =>
  Effect.gen(function* () {
    const home = newHome()
    assert.strictEqual(runCommand(["init", "--home", home]).status, 0)
    const path = join(home, "data", "peerstore.db")
    yield* Effect.scoped(Effect.gen(function* () {
      const store = Context.get(yield* Layer.build(PeerStoreSqlite.layerSqlite(path)), PeerStore)
      for (let i = 0; i < 200; i++) yield* store.put(PeerRecord.empty(NodeId.unsafeDecode(i.toString(16).padStart(40, "0"))))
    }))
    const db = new DatabaseSync(path)
    db.exec("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return { home, path }
  })

/** A TCP port held by this test process (another program on the port), for the scope. */
const occupiedPort = Effect.acquireRelease(
  Effect.callback<Net.Server>((resume) => {
    const server = Net.createServer()
    server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
  }),
  (server) => Effect.callback<void>((resume) => void server.close(() => resume(Effect.void)))
).pipe(Effect.map((server) => (server.address() as Net.AddressInfo).port))

const expectFailure = (r: ReturnType<typeof runCommand>, code: number, message: RegExp) => {
  assert.strictEqual(r.status, code, `exit code; stderr:\n${r.stderr}`)
  const errors = lines(r.stderr).filter((l) => l.startsWith("effect-p2p: "))
  assert.isAtLeast(errors.length, 1, `no effect-p2p: line on stderr:\n${r.stderr}`)
  assert.isAtMost(errors.length, 2, r.stderr)
  assert.match(errors.join("\n"), message)
}

describe("effect-p2p start: runtime failures say what and what to do, exit 1", () => {
  it.live("the P2P port in use: names the address and p2p.laddr, creates no peer store", () =>
    Effect.gen(function* () {
      const port = yield* occupiedPort
      const home = newHome()
      const r = runCommand(["start", "--home", home, "--laddr", `tcp://127.0.0.1:${port}`, "--http-addr", "127.0.0.1:0"])
      expectFailure(r, 1, new RegExp(`^effect-p2p: tcp://127\\.0\\.0\\.1:${port} is in use by another process; stop it or set p2p\\.laddr \\(--laddr\\)$`))
      assert.isFalse(existsSync(join(home, "data", "peerstore.db")))
    }).pipe(Effect.scoped))

  it.live("the HTTP port in use: names the address and the key, creates no peer store", () =>
    Effect.gen(function* () {
      const port = yield* occupiedPort
      const home = newHome()
      const r = runCommand(["start", "--home", home, "--laddr", "tcp://127.0.0.1:0", "--http-addr", `127.0.0.1:${port}`])
      expectFailure(r, 1, new RegExp(`http://127\\.0\\.0\\.1:${port} is in use by another process; stop it or set instrumentation\\.prometheus_listen_addr \\(--http-addr\\)`))
      assert.isFalse(existsSync(join(home, "data", "peerstore.db")))
    }).pipe(Effect.scoped))

  it("rpc.laddr on a unix socket: a path that is not a socket, or in a missing directory, names it and rpc.laddr; creates no peer store", () => {
    const home = newHome()
    const dir = mkdtempSync(join(tmpdir(), "p2p-fail-unix-"))
    const file = join(dir, "notes.txt")
    writeFileSync(file, "keep me")
    const notSocket = runCommand(["start", "--home", home, ...free, "--rpc-laddr", `unix://${file}`])
    expectFailure(notSocket, 1, new RegExp(`^effect-p2p: cannot listen on unix://${file.replace(/[.]/g, "\\.")}: ${file.replace(/[.]/g, "\\.")} exists and is not a socket; check rpc\\.laddr \\(--rpc-laddr\\)$`))
    assert.strictEqual(readFileSync(file, "utf8"), "keep me")
    const noDir = runCommand(["start", "--home", home, ...free, "--rpc-laddr", `unix://${dir}/missing/rpc.sock`])
    expectFailure(noDir, 1, new RegExp(`^effect-p2p: cannot listen on unix://${dir}/missing/rpc\\.sock: the directory ${dir}/missing does not exist; check rpc\\.laddr \\(--rpc-laddr\\)$`))
    assert.isFalse(existsSync(join(home, "data", "peerstore.db")))
    expectFailure(runCommand(["start", "--home", home, ...free, "--rpc-laddr", "unix://rel.sock"]), 2, /^effect-p2p: --rpc-laddr: "unix:\/\/rel\.sock" must name an absolute path/)
    expectFailure(runCommand(["start", "--home", home, ...free, "--probe-interval", "0s"]), 2, /^effect-p2p: --probe-interval: must be from 1ms to 1h, got "0s"$/)
  }, 60_000)

  const damage: ReadonlyArray<readonly [string, (bytes: Buffer) => Buffer]> = [
    ["truncated", (bytes) => bytes.subarray(0, bytes.length >> 1)],
    ["with a page of random bytes", (bytes) => {
      const out = Buffer.from(bytes)
      randomFillSync(out, 8192, 4096)
      return out
    }],
    ["entirely random", (bytes) => randomBytes(bytes.length)]
  ]
  for (const [name, damaged] of damage) {
    it.live(`a peer store ${name}: names the file and --recover-peer-store, leaves the file as it was`, () =>
      Effect.gen(function* () {
        const { home, path } = yield* homeWithStore()
        const bad = damaged(readFileSync(path))
        writeFileSync(path, bad)
        const r = runCommand(["start", "--home", home, ...free])
        expectFailure(r, 1, new RegExp(`^effect-p2p: the peer store ${path.replace(/[.]/g, "\\.")} is not a SQLite database or is damaged .*--recover-peer-store`))
        assert.isTrue(readFileSync(path).equals(bad), "the damaged file is kept as it was")
      }))
  }

  it.live("--recover-peer-store moves a damaged store aside, keeps it, and starts with no known peers", () =>
    Effect.gen(function* () {
      const { home, path } = yield* homeWithStore()
      const bad = randomBytes(readFileSync(path).length)
      writeFileSync(path, bad)
      const node = yield* spawnNode(home, [...free, "--recover-peer-store"])
      assert.match(node.output(), /was damaged .* moved it to .*peerstore\.db\.corrupt-\d{8}T\d{6}Z and started with no known peers/)
      const aside = readdirSync(join(home, "data")).filter((f) => f.startsWith("peerstore.db.corrupt-"))
      assert.strictEqual(aside.length, 1)
      assert.isTrue(readFileSync(join(home, "data", aside[0]!)).equals(bad))
      assert.strictEqual((yield* stopGracefully(node.child)).code, 0)
    }).pipe(Effect.scoped))

  it.live("a directory where the peer store should be", () =>
    Effect.gen(function* () {
      const home = newHome()
      mkdirSync(join(home, "data", "peerstore.db"), { recursive: true })
      expectFailure(runCommand(["start", "--home", home, ...free]), 1, /peerstore\.db: it is a directory or a special file, not a database; remove it or use another path/)
    }))

  it.live("a peer store from a newer version: both versions named, the file kept", () =>
    Effect.gen(function* () {
      const { home, path } = yield* homeWithStore()
      const db = new DatabaseSync(path)
      db.exec("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
      db.exec("PRAGMA wal_checkpoint(TRUNCATE)")
      db.close()
      const before = readFileSync(path)
      expectFailure(runCommand(["start", "--home", home, ...free]), 1, /written by a newer effect-p2p \(peer store schema version 3; this version reads version 2\); upgrade effect-p2p/)
      assert.isTrue(readFileSync(path).equals(before))
    }))

  it.live("a data directory the node cannot write: names the path and says to make it writable", () =>
    Effect.gen(function* () {
      const home = newHome()
      assert.strictEqual(runCommand(["init", "--home", home]).status, 0)
      if (isRoot) chownSync(home, 65534, 65534)
      if (isRoot) for (const f of ["config", "config/config.toml", "config/node_key.json"]) chownSync(join(home, f), 65534, 65534)
      chmodSync(join(home, "data"), 0o555)
      const r = runCommand(["start", "--home", home, ...free], unprivileged)
      expectFailure(r, 1, /peerstore\.db.*(writable|permission)/i)
      assert.deepStrictEqual(readdirSync(join(home, "data")), [])
    }))
})

describe("effect-p2p start: bad input says which key, exits 2, writes nothing", () => {
  it("node_key.json is a directory", () => {
    const home = newHome()
    mkdirSync(join(home, "config", "node_key.json"), { recursive: true })
    expectFailure(runCommand(["start", "--home", home, ...free]), 2, /node_key\.json: cannot read the node key: it is a directory, not a file/)
    assert.isFalse(existsSync(join(home, "config", "config.toml")))
    assert.isFalse(existsSync(join(home, "data")))
  })

  it("node_key.json cannot be read by the node's user", () => {
    const home = newHome()
    assert.strictEqual(runCommand(["init", "--home", home]).status, 0)
    const key = readFileSync(join(home, "config", "node_key.json"))
    chmodSync(join(home, "config", "node_key.json"), 0o000)
    if (isRoot) chmodSync(join(home, "config"), 0o755)
    expectFailure(runCommand(["start", "--home", home, ...free], unprivileged), 2, /node_key\.json: cannot read the node key: permission denied/)
    chmodSync(join(home, "config", "node_key.json"), 0o600)
    assert.isTrue(readFileSync(join(home, "config", "node_key.json")).equals(key), "the key is never replaced")
  })

  const refused: ReadonlyArray<readonly [string, string, RegExp]> = [
    ["handshake_timeout = 0s", `[p2p]\nhandshake_timeout = "0s"\n`, /^effect-p2p: p2p\.handshake_timeout: must be from 100ms to 10m, got "0s"$/],
    ["dial_timeout = 0s", `[p2p]\ndial_timeout = "0s"\n`, /^effect-p2p: p2p\.dial_timeout: must be from 100ms to 10m, got "0s"$/],
    ["no inbound and no outbound slots", `[p2p]\nmax_num_inbound_peers = 0\nmax_num_outbound_peers = 0\n`, /^effect-p2p: p2p\.max_num_inbound_peers: 0 with p2p\.max_num_outbound_peers = 0 and no persistent or unconditional peers leaves the node no way to connect/],
    ["a send rate below one packet a second", `[p2p]\nsend_rate = 10\n`, /^effect-p2p: p2p\.send_rate: 10 bytes\/s cannot send one packet/]
  ]
  for (const [name, toml, message] of refused) {
    it(name, () => {
      const home = newHome()
      mkdirSync(join(home, "config"), { recursive: true })
      writeFileSync(join(home, "config", "config.toml"), toml)
      expectFailure(runCommand(["start", "--home", home, ...free]), 2, message)
      assert.deepStrictEqual(readdirSync(join(home, "config")), ["config.toml"], "no key written")
      assert.isFalse(existsSync(join(home, "data")))
    })
  }
})

describe("the other commands", () => {
  it("init in a home that cannot be written: exit 1, naming it", () => {
    const parent = mkdtempSync(join(tmpdir(), "p2p-ro-"))
    chmodSync(parent, 0o555)
    expectFailure(runCommand(["init", "--home", join(parent, "home")], unprivileged), 1, /cannot write the home directory .*home: .*; check that it is writable/)
  })

  it("show-node-id without a key: exit 2, saying to run init", () => {
    expectFailure(runCommand(["show-node-id", "--home", newHome()]), 2, /no node key; run `effect-p2p init --home /)
  })

  it("testnet and crawl with bad flags: exit 2, naming the flag", () => {
    expectFailure(runCommand(["testnet", "--nodes", "0"]), 2, /--nodes: must be an integer from 1 to/)
    expectFailure(runCommand(["crawl", "--seeds", "nope"]), 2, /--seeds: /)
  })
})

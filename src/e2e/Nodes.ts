/**
 * The node processes: each a real `effect-p2p start --home DIR` (`node <cli>/main.ts`, or `main.js` from the package)
 * inside its namespace, its config.toml written by the runner, its output kept in `DIR/node.log`
 * and scanned for ERROR lines. HTTP (`/metrics`, `/net_info`) is reached through a unix socket:
 * the node's own `[rpc] laddr = "unix://..."` when the node supports it, else a `socat` bridge in
 * the namespace from the socket to the node's 127.0.0.1:26660 (the root namespace cannot route to
 * the nodes). On loopback the runner talks TCP to 127.0.1.x:26660 directly, and, with the link
 * proxy (Proxy.ts), each node advertises and is dialed at its proxy port {@link PROXY_PORT} and
 * binds its dials to its own address (`p2p.dial_from`), so the proxy knows each link.
 */
import { spawn, type ChildProcess } from "node:child_process"
import { createHash } from "node:crypto"
import { appendFileSync, createWriteStream, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync, type WriteStream } from "node:fs"
import * as http from "node:http"
import { dirname, extname, join } from "node:path"
import { DatabaseSync } from "node:sqlite"
import { stringify } from "smol-toml"
import type { Manifest, NodeSpec } from "./Manifest.ts"
import { type Host, inHost } from "./Netns.ts"
import { E2eError } from "./Sh.ts"

export const P2P_PORT = 26656
export const HTTP_PORT = 26660
/** Loopback mode: the link proxy's port for the node, on the node's address (advertised, dialed). */
export const PROXY_PORT = 26666
/** Loopback mode: the proxy's port on the node's address that the fault verification connects to (an echo, not the node). */
export const PROBE_PORT = 26667

/** How the runner reaches a node's HTTP endpoints. */
export type HttpTarget = { readonly socketPath: string } | { readonly host: string; readonly port: number }

export interface NodeProc {
  readonly spec: NodeSpec
  readonly host: Host
  readonly home: string
  readonly nodeId: string
  readonly http: HttpTarget
  child: ChildProcess | undefined
  pid: number | undefined
  /** Starts of the process so far (1 after the first start). */
  incarnation: number
  startedAt: number
  state: "not_started" | "running" | "paused" | "down"
  /** Set before the runner stops it, so its exit is not a failure. */
  expectingExit: boolean
  restarts: number
  /** Exits the runner did not cause. */
  readonly unexpectedExits: Array<{ readonly t: number; readonly code: number | null; readonly signal: string | null }>
  /** ERROR lines not on the allow-list. */
  readonly errorLines: Array<string>
  log: WriteStream | undefined
  bridge: ChildProcess | undefined
}

/** Node ID from `node_key.json`: hex of the first 20 bytes of SHA-256 of the Ed25519 public key. */
export const nodeIdFromKeyFile = (path: string): string => {
  const json = JSON.parse(readFileSync(path, "utf8")) as { priv_key: { value: string } }
  const raw = Buffer.from(json.priv_key.value, "base64")
  return createHash("sha256").update(raw.subarray(32)).digest("hex").slice(0, 40)
}

const spawnWait = (cmd: string, args: ReadonlyArray<string>): Promise<{ code: number; out: string }> =>
  new Promise((resolve) => {
    const p = spawn(cmd, [...args], { stdio: ["ignore", "pipe", "pipe"] })
    let out = ""
    p.stdout.on("data", (d) => (out += String(d)))
    p.stderr.on("data", (d) => (out += String(d)))
    p.on("error", (e) => resolve({ code: 127, out: out + e.message }))
    p.on("close", (code) => resolve({ code: code ?? 1, out }))
  })

/** Whether the node takes `unix://` for `rpc.laddr` (serving /metrics there too): older builds do not. */
export const nodeSupportsUnixRpc = (cliMain: string): boolean => {
  try {
    return /unix:\/\//.test(readFileSync(join(dirname(cliMain), `Config${extname(cliMain)}`), "utf8"))
  } catch {
    return false
  }
}

/** Whether the node takes `p2p.dial_from` (binds its dials to an address), which the link proxy needs. */
export const nodeSupportsDialFrom = (cliMain: string): boolean => {
  try {
    return readFileSync(join(dirname(cliMain), `Config${extname(cliMain)}`), "utf8").includes("p2p.dial_from")
  } catch {
    return false
  }
}

/** Whether `effect-p2p start` has `--probe` (asked once from `start --help`). */
export const nodeSupportsProbe = async (cliMain: string): Promise<boolean> => {
  const r = await spawnWait(process.execPath, [cliMain, "start", "--help"])
  return /--probe\b/.test(r.out)
}

export interface Prepared {
  readonly nodes: ReadonlyArray<NodeProc>
  readonly byName: ReadonlyMap<string, NodeProc>
}

/**
 * Creates each node's home (`effect-p2p init`), reads its ID, writes its config.toml. `proxied`:
 * peers are reached through the loopback link proxy ({@link PROXY_PORT}) and dial from their own address.
 */
export const prepare = async (manifest: Manifest, hosts: ReadonlyArray<Host>, main: string, dir: string, unixRpc: boolean, proxied = false): Promise<Prepared> => {
  const homes = manifest.nodes.map((n) => join(dir, n.name))
  // init costs a Node start each: two at a time (two cores).
  for (let i = 0; i < homes.length; i += 2) {
    const batch = homes.slice(i, i + 2)
    const results = await Promise.all(batch.map((h) => spawnWait(process.execPath, [main, "init", "--home", h])))
    results.forEach((r, j) => {
      if (r.code !== 0) throw new E2eError(`effect-p2p init --home ${batch[j]} failed (exit ${r.code}): ${r.out.trim()}`)
    })
  }
  const nodes: Array<NodeProc> = manifest.nodes.map((spec, i) => {
    const host = hosts[i]!
    const home = homes[i]!
    const nodeId = nodeIdFromKeyFile(join(home, "config", "node_key.json"))
    const http: HttpTarget = host.ns === undefined ? { host: host.ip, port: HTTP_PORT } : { socketPath: join(dir, `${spec.name}.sock`) }
    return {
      spec, host, home, nodeId, http,
      child: undefined, pid: undefined, incarnation: 0, startedAt: 0, state: "not_started", expectingExit: false, restarts: 0,
      unexpectedExits: [], errorLines: [], log: undefined, bridge: undefined
    }
  })
  const byName = new Map(nodes.map((n) => [n.spec.name, n]))
  const addr = (name: string) => {
    const n = byName.get(name)!
    return `${n.nodeId}@${n.host.ip}:${proxied ? PROXY_PORT : P2P_PORT}`
  }
  for (const n of nodes) {
    const withoutSelf = (names: ReadonlyArray<string>) => names.filter((x) => x !== n.spec.name).map(addr).join(",")
    const doc: Record<string, unknown> = {
      moniker: n.spec.name,
      network: manifest.network,
      log_level: "info",
      log_format: "plain",
      p2p: {
        laddr: `tcp://${n.host.ip}:${P2P_PORT}`,
        external_address: `${n.host.ip}:${proxied ? PROXY_PORT : P2P_PORT}`,
        ...(proxied ? { dial_from: n.host.ip } : {}),
        bootstrap_peers: withoutSelf(n.spec.bootstrap),
        persistent_peers: withoutSelf(n.spec.persistentPeers),
        max_num_inbound_peers: n.spec.maxInbound,
        max_num_outbound_peers: n.spec.maxOutbound,
        pex: true,
        seed_mode: n.spec.seedMode
      },
      rpc: unixRpc && "socketPath" in n.http ? { laddr: `unix://${n.http.socketPath}` } : { laddr: "" },
      instrumentation: {
        prometheus: true,
        // In a namespace, loopback is the node's own; the socat bridge connects to it there.
        prometheus_listen_addr: unixRpc && "socketPath" in n.http ? "" : `${n.host.ns === undefined ? n.host.ip : "127.0.0.1"}:${HTTP_PORT}`,
        max_open_connections: 0,
        namespace: "cometbft"
      }
    }
    for (const [key, value] of Object.entries(manifest.nodeConfig)) {
      const parts = key.split(".")
      let t = doc
      for (const p of parts.slice(0, -1)) t = (t[p] ??= {}) as Record<string, unknown>
      t[parts[parts.length - 1]!] = value
    }
    writeFileSync(join(n.home, "config", "config.toml"), `# written by the effect-p2p e2e runner\n${stringify(doc)}\n`)
  }
  return { nodes, byName }
}

/** Starts (or restarts) a node process. `onExit` hears every exit with whether the runner expected it. */
export const start = (n: NodeProc, cliMain: string, probe: boolean, allow: ReadonlyArray<RegExp>, onExit: (n: NodeProc, code: number | null, signal: string | null, expected: boolean) => void, isError: (line: string, allow: ReadonlyArray<RegExp>) => boolean, env: Readonly<Record<string, string>> = {}): void => {
  const args = [cliMain, "start", "--home", n.home, ...(probe ? ["--probe"] : [])]
  const c = inHost(n.host, process.execPath, args)
  if (n.log === undefined) n.log = createWriteStream(join(n.home, "node.log"), { flags: "a" })
  const log = n.log
  log.write(`--- e2e: start #${n.incarnation + 1} at ${new Date().toISOString()}\n`)
  // Its own process group: a Ctrl-C at the terminal reaches the runner only, which stops nodes itself.
  const child = spawn(c.cmd, [...c.args], { stdio: ["ignore", "pipe", "pipe"], detached: true, env: { ...process.env, ...env } })
  n.child = child
  n.pid = child.pid
  n.incarnation++
  n.startedAt = Date.now()
  n.state = "running"
  n.expectingExit = false
  let partial = ""
  const onData = (d: Buffer) => {
    log.write(d)
    const lines = (partial + String(d)).split("\n")
    partial = lines.pop() ?? ""
    for (const line of lines) if (isError(line, allow)) n.errorLines.push(line)
  }
  child.stdout!.on("data", onData)
  child.stderr!.on("data", onData)
  child.on("exit", (code, signal) => {
    const expected = n.expectingExit || n.child !== child
    if (n.child === child) {
      n.child = undefined
      n.state = "down"
    }
    onExit(n, code, signal, expected)
  })
}

/** Sends a signal to the node process (SIGKILL, SIGSTOP, SIGCONT, SIGTERM). */
export const signal = (n: NodeProc, sig: NodeJS.Signals): void => {
  if (n.pid === undefined) return
  try {
    process.kill(n.pid, sig)
  } catch {
    // gone already
  }
}

/** Kills the node (`expected`), and resolves once the process has exited. */
export const stop = (n: NodeProc, sig: NodeJS.Signals, timeoutMs = 15_000): Promise<void> => {
  const child = n.child
  n.expectingExit = true
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) {
    n.state = "down"
    return Promise.resolve()
  }
  return new Promise((resolve) => {
    const timer = setTimeout(() => signal(n, "SIGKILL"), timeoutMs)
    child.once("exit", () => {
      clearTimeout(timer)
      resolve()
    })
    if (n.state === "paused") signal(n, "SIGCONT")
    signal(n, sig)
  })
}

/** Deletes `data/peerstore.db*` (a restart then knows only its configured peers). */
export const wipePeerStore = (n: NodeProc): ReadonlyArray<string> => {
  const data = join(n.home, "data")
  if (!existsSync(data)) return []
  const files = readdirSync(data).filter((f) => f.startsWith("peerstore.db"))
  for (const f of files) rmSync(join(data, f), { force: true })
  appendFileSync(join(n.home, "node.log"), `--- e2e: wiped ${files.join(", ")}\n`)
  return files
}

/** What a killed node's peer store looks like: SQLite's integrity check and its peer rows. */
export interface StoreCheck {
  readonly ok: boolean
  readonly integrity: string
  readonly peers: number
  readonly error: string | undefined
}

/** Opens `data/peerstore.db` read-only (node:sqlite) and runs `PRAGMA integrity_check`. */
export const checkPeerStore = (n: NodeProc): StoreCheck => {
  const path = join(n.home, "data", "peerstore.db")
  if (!existsSync(path)) return { ok: false, integrity: "missing", peers: 0, error: `${path} does not exist` }
  let db: DatabaseSync | undefined
  try {
    db = new DatabaseSync(path, { readOnly: true })
    const integrity = (db.prepare("PRAGMA integrity_check").all() as Array<Record<string, unknown>>).map((r) => String(Object.values(r)[0])).join("; ")
    const peers = Number((db.prepare("SELECT count(*) AS n FROM peers").get() as { n: number }).n)
    return { ok: integrity === "ok" && peers > 0, integrity, peers, error: undefined }
  } catch (e) {
    return { ok: false, integrity: "error", peers: 0, error: (e as Error).message }
  } finally {
    db?.close()
  }
}

/** Starts the socat bridge from the node's unix socket to its 127.0.0.1:26660 (once per node). */
export const startBridge = (n: NodeProc): void => {
  if (!("socketPath" in n.http) || n.bridge !== undefined) return
  const c = inHost(n.host, "socat", [`UNIX-LISTEN:${n.http.socketPath},fork,unlink-early,mode=600`, `TCP:127.0.0.1:${HTTP_PORT}`])
  n.bridge = spawn(c.cmd, [...c.args], { stdio: "ignore", detached: true })
}

/** GET `path` from a node's HTTP endpoint; rejects on any failure within `timeoutMs`. */
export const get = (target: HttpTarget, path: string, timeoutMs = 2_000): Promise<string> =>
  new Promise((resolve, reject) => {
    const options: http.RequestOptions = "socketPath" in target
      ? { socketPath: target.socketPath, path, agent: false, timeout: timeoutMs }
      : { host: target.host, port: target.port, path, agent: false, timeout: timeoutMs }
    const req = http.request(options, (res) => {
      let body = ""
      res.setEncoding("utf8")
      res.on("data", (d) => (body += d))
      res.on("end", () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`HTTP ${res.statusCode} for ${path}`))))
      res.on("error", reject)
    })
    req.on("timeout", () => req.destroy(new Error(`timeout after ${timeoutMs} ms for ${path}`)))
    req.on("error", reject)
    req.end()
  })

/** The node's clock as its HTTP server states it (the `Date` header of `/status`), in epoch ms. */
export const clockOf = (target: HttpTarget, timeoutMs = 2_000): Promise<number> =>
  new Promise((resolve, reject) => {
    const options: http.RequestOptions = "socketPath" in target
      ? { socketPath: target.socketPath, path: "/status", agent: false, timeout: timeoutMs }
      : { host: target.host, port: target.port, path: "/status", agent: false, timeout: timeoutMs }
    const req = http.request(options, (res) => {
      res.resume()
      const date = Date.parse(res.headers.date ?? "")
      if (Number.isNaN(date)) reject(new Error("no Date header"))
      else resolve(date)
    })
    req.on("timeout", () => req.destroy(new Error(`timeout after ${timeoutMs} ms`)))
    req.on("error", reject)
    req.end()
  })

/** libfaketime's preload library, if installed (Debian's `faketime` package). */
export const findFaketime = (): string | undefined => {
  for (const dir of ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib", "/usr/local/lib"]) {
    const lib = join(dir, "faketime", "libfaketime.so.1")
    if (existsSync(lib)) return lib
  }
  return undefined
}

/** The environment that runs a node with its wall clock moved by `skewMs` (monotonic time untouched, so timers keep their pace). */
export const skewedEnv = (lib: string, skewMs: number): Record<string, string> => ({
  LD_PRELOAD: lib,
  FAKETIME: `${skewMs < 0 ? "-" : "+"}${Math.round(Math.abs(skewMs) / 1000)}`,
  FAKETIME_DONT_FAKE_MONOTONIC: "1",
  FAKETIME_NO_CACHE: "1"
})

/** Prometheus text into `name{labels}` → value. */
export const parseMetrics = (text: string): ReadonlyMap<string, number> => {
  const out = new Map<string, number>()
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue
    const i = line.lastIndexOf(" ")
    if (i < 0) continue
    const v = Number(line.slice(i + 1))
    if (Number.isFinite(v)) out.set(line.slice(0, i), v)
  }
  return out
}

/** Sum of every series of a metric (any labels). */
export const metricSum = (m: ReadonlyMap<string, number>, name: string): number | undefined => {
  let found = false
  let sum = 0
  for (const [k, v] of m) {
    if (k === name || k.startsWith(`${name}{`)) {
      found = true
      sum += v
    }
  }
  return found ? sum : undefined
}

/** Peer node IDs in a /net_info answer. */
export const netInfoPeers = (text: string): ReadonlyArray<string> => {
  const j = JSON.parse(text) as { result?: { peers?: Array<{ node_info?: { id?: string } }> } }
  return (j.result?.peers ?? []).map((p) => p.node_info?.id ?? "").filter((id) => id !== "")
}

/** Open file descriptors and resident memory (KiB) of a process, from /proc; undefined when unreadable. */
export const procStats = (pid: number): { fds: number; rssKb: number } | undefined => {
  try {
    const fds = readdirSync(`/proc/${pid}/fd`).length
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))
    return { fds, rssKb: m === null ? 0 : Number(m[1]) }
  } catch {
    return undefined
  }
}

/** Makes a directory for the run. */
export const ensureDir = (dir: string) => mkdirSync(dir, { recursive: true })

/** Lists a process in the run's pid file (for cleanup after a crash of the runner). */
export const recordPid = (dir: string, pid: number | undefined) => {
  if (pid === undefined) return
  try {
    appendFileSync(join(dir, "pids"), `${pid}\n`)
  } catch {
    // the directory is gone (teardown under way); the namespaces hold the processes anyway
  }
}

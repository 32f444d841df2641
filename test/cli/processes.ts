/**
 * Real `effect-p2p` processes for the CLI tests: start one and wait until it listens, read its HTTP
 * endpoints, wait for a condition in real time (bounded), stop it with a signal.
 */
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from "node:child_process"
import { request } from "node:http"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { Effect } from "effect"

/** The command's entry point (run from the sources). */
export const main = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "src", "cli", "main.ts")

export interface Running {
  readonly child: ChildProcess
  readonly nodeId: string
  readonly p2pPort: number
  readonly httpPort: number
  readonly output: () => string
}

/** Runs `effect-p2p ...args` to its end (at most 20 s); its exit code and output. */
export const runCommand = (args: ReadonlyArray<string>, options: Pick<SpawnOptions, "uid" | "gid" | "env"> = {}) => {
  const r = spawnSync(process.execPath, [main, ...args], { encoding: "utf8", timeout: 20_000, ...options })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, error: r.error }
}

/** The lines of `text` that are not blank. */
export const lines = (text: string): Array<string> => text.split("\n").filter((l) => l.trim() !== "")

/** How to start a node process: as another user, or under a shell `ulimit -n`. */
export interface SpawnNodeOptions extends Pick<SpawnOptions, "uid" | "gid" | "env"> {
  /** The open-file limit of the process (`ulimit -n`). */
  readonly openFiles?: number
}

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`

/** Starts `effect-p2p start --home HOME ...args` and waits (at most 15 s) until it has logged its ports. */
export const spawnNode = (home: string, args: ReadonlyArray<string>, options: SpawnNodeOptions = {}) =>
  Effect.acquireRelease(
    Effect.callback<Running, Error>((resume) => {
      const { openFiles, ...spawnOptions } = options
      const argv = [process.execPath, main, "start", "--home", home, ...args]
      const child = openFiles === undefined
        ? spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "pipe", "pipe"], ...spawnOptions })
        : spawn("bash", ["-c", `ulimit -n ${openFiles} && exec ${argv.map(quote).join(" ")}`], { stdio: ["ignore", "pipe", "pipe"], ...spawnOptions })
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

export interface RunningUnix {
  readonly child: ChildProcess
  readonly nodeId: string
  readonly p2pPort: number
  /** The unix socket serving /metrics and the RPC endpoints. */
  readonly socket: string
  readonly output: () => string
}

/**
 * Starts `effect-p2p start --home HOME` with P2P on a free loopback port, HTTP only on the unix
 * socket `socket` (`--rpc-laddr unix://SOCKET --http-addr ""`) and `...args`; waits (at most 15 s)
 * until it serves the socket.
 */
export const spawnUnixNode = (home: string, socket: string, args: ReadonlyArray<string> = []) =>
  Effect.acquireRelease(
    Effect.callback<RunningUnix, Error>((resume) => {
      const child = spawn(process.execPath, [main, "start", "--home", home, "--laddr", "tcp://127.0.0.1:0", "--http-addr", "", "--rpc-laddr", `unix://${socket}`, ...args], { stdio: ["ignore", "pipe", "pipe"] })
      let out = ""
      const timer = setTimeout(() => resume(Effect.fail(new Error(`node did not start:\n${out}`))), 15_000)
      const onData = (d: Buffer) => {
        out += d.toString()
        const node = /node ([0-9a-f]{40}) .* listening on mconn:\/\/127\.0\.0\.1:(\d+)/.exec(out)
        if (node !== null && out.includes(`on unix://${socket}`)) {
          clearTimeout(timer)
          resume(Effect.succeed({ child, nodeId: node[1]!, p2pPort: Number(node[2]), socket, output: () => out }))
        }
      }
      child.stdout!.on("data", onData)
      child.stderr!.on("data", onData)
    }),
    ({ child }) => Effect.sync(() => child.kill("SIGKILL"))
  )

/** A GET through a unix socket. */
export const getUnix = (socketPath: string, path: string) =>
  Effect.promise(() =>
    new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = request({ socketPath, path, method: "GET" }, (res) => {
        let text = ""
        res.setEncoding("utf8")
        res.on("data", (chunk: string) => (text += chunk))
        res.on("end", () => resolve({ status: res.statusCode ?? 0, text }))
      })
      req.on("error", reject)
      req.end()
    })
  )

/** A counter or gauge from Prometheus text (no labels), or `undefined`. */
export const metricValue = (text: string, name: string): number | undefined => {
  const m = new RegExp(`^${name} (\\S+)$`, "m").exec(text)
  return m === null ? undefined : Number(m[1])
}

/** A node on free loopback ports, serving HTTP on one of them. */
export const startNode = (home: string, ...args: Array<string>) => spawnNode(home, ["--laddr", "tcp://127.0.0.1:0", "--http-addr", "127.0.0.1:0", ...args])

export interface NetInfo {
  readonly jsonrpc: "2.0"
  readonly id: number
  readonly result: {
    readonly listening: boolean
    readonly listeners: ReadonlyArray<string>
    readonly n_peers: string
    readonly peers: ReadonlyArray<{
      readonly node_info: { readonly id: string; readonly moniker: string; readonly network: string; readonly channels: string; readonly protocol_version: { readonly p2p: string } }
      readonly is_outbound: boolean
      readonly remote_ip: string
      readonly connection_status: {
        readonly Duration: string
        readonly SendMonitor: { readonly Bytes: string; readonly Start: string; readonly Active: boolean }
        readonly RecvMonitor: { readonly Bytes: string }
        readonly Channels: ReadonlyArray<{ readonly ID: number; readonly SendQueueCapacity: string; readonly Priority: string }>
      }
    }>
  }
}

export const get = (port: number, path: string) => Effect.promise(() => fetch(`http://127.0.0.1:${port}${path}`).then(async (r) => ({ status: r.status, text: await r.text() })))
export const netInfo = (port: number) => Effect.map(get(port, "/net_info"), (r) => JSON.parse(r.text) as NetInfo)
export const rpc = (port: number, body: unknown) =>
  Effect.promise(() => fetch(`http://127.0.0.1:${port}/`, { method: "POST", body: JSON.stringify(body), headers: { "content-type": "application/json" } }).then((r) => r.json() as Promise<unknown>))

/** Polls until `check` holds, at most `ms` of real time. */
export const eventually = <A>(ms: number, what: string, probe: Effect.Effect<A>, check: (a: A) => boolean) =>
  Effect.gen(function* () {
    const deadline = Date.now() + ms
    while (true) {
      const a = yield* probe
      if (check(a)) return a
      if (Date.now() > deadline) return yield* Effect.die(new Error(`timed out waiting for ${what}: ${JSON.stringify(a)}`))
      yield* Effect.sleep(100)
    }
  })

export const stopGracefully = (child: ChildProcess) =>
  Effect.callback<{ code: number | null; ms: number }>((resume) => {
    const start = Date.now()
    child.once("exit", (code) => resume(Effect.succeed({ code, ms: Date.now() - start })))
    child.kill("SIGTERM")
  })


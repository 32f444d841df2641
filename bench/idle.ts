/**
 * `npm run bench -- idle`: the resident memory of an idle node (issue 15), the way users start it.
 *
 * Builds the package unless dist/ is newer than every file in src/ and than scripts/build.ts (which
 * bundles the command), then, three times each:
 * `node dist/cli/main.js init` and `start` on a fresh home (default config; P2P and HTTP on
 * 127.0.0.1 port 0, so nothing collides), waits until the node logs that it serves HTTP and then
 * SETTLE_MS more, and reads VmRSS from /proc/<pid>/status. The same for the node started from the
 * sources (`node src/cli/main.ts`, type stripping) and, as the baseline, for a bare
 * `node -e "setInterval(() => {}, 1000)"`. Prints one line per variant with min, median and max
 * in MB; `ratio` is the median over the bare node's median. Linux only (/proc).
 *
 * Every process it starts is killed and every temporary home removed, also on failure.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process"
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const RUNS = 3
const SETTLE_MS = 5000
const READY_TIMEOUT_MS = 30_000

const children = new Set<ChildProcess>()
const homes = new Set<string>()
const cleanup = () => {
  for (const c of children) c.kill("SIGKILL")
  for (const h of homes) rmSync(h, { recursive: true, force: true })
}
process.on("exit", cleanup)
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    cleanup()
    process.exit(130)
  })
}

/** The newest modification time under a directory, in ms. */
const newest = (dir: string): number =>
  readdirSync(dir, { withFileTypes: true }).reduce((m, e) => {
    const p = join(dir, e.name)
    return Math.max(m, e.isDirectory() ? newest(p) : statSync(p).mtimeMs)
  }, 0)

const ensureBuilt = () => {
  const main = join(root, "dist", "cli", "main.js")
  let fresh = false
  try {
    fresh = statSync(main).mtimeMs >= Math.max(newest(join(root, "src")), statSync(join(root, "scripts", "build.ts")).mtimeMs)
  } catch {
    fresh = false
  }
  if (fresh) return
  const r = spawnSync("npm", ["run", "build"], { cwd: root, stdio: ["ignore", "ignore", "inherit"] })
  if (r.status !== 0) throw new Error("npm run build failed")
}

const rssKb = (pid: number): number => {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))
  if (m === null) throw new Error(`no VmRSS for ${pid}`)
  return Number(m[1])
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Starts a process, waits until `ready` matches its output (or it has run), then SETTLE_MS; RSS in MB. */
const measure = async (args: ReadonlyArray<string>, ready: RegExp | undefined): Promise<number> => {
  const child = spawn(process.execPath, args, { cwd: root, stdio: ["ignore", "pipe", "pipe"] })
  children.add(child)
  try {
    let output = ""
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`not ready after ${READY_TIMEOUT_MS} ms: ${args.join(" ")}\n${output}`)), READY_TIMEOUT_MS)
      const done = () => {
        clearTimeout(timer)
        resolve()
      }
      const onData = (chunk: Buffer) => {
        output += chunk.toString()
        if (ready !== undefined && ready.test(output)) done()
      }
      child.stdout!.on("data", onData)
      child.stderr!.on("data", onData)
      child.once("exit", (code) => reject(new Error(`exited with ${code}: ${args.join(" ")}\n${output}`)))
      if (ready === undefined) done()
    })
    await sleep(SETTLE_MS)
    return rssKb(child.pid!) / 1024
  } finally {
    child.kill("SIGKILL")
    children.delete(child)
  }
}

const measureNode = async (main: string): Promise<number> => {
  const home = mkdtempSync(join(tmpdir(), "effect-p2p-idle-"))
  homes.add(home)
  try {
    const init = spawnSync(process.execPath, [main, "init", "--home", home], { cwd: root, encoding: "utf8" })
    if (init.status !== 0) throw new Error(`init failed: ${init.stderr}`)
    return await measure([main, "start", "--home", home, "--laddr", "tcp://127.0.0.1:0", "--http-addr", "127.0.0.1:0"], /serving \//)
  } finally {
    rmSync(home, { recursive: true, force: true })
    homes.delete(home)
  }
}

const stats = async (run: () => Promise<number>) => {
  const samples: Array<number> = []
  for (let i = 0; i < RUNS; i++) samples.push(await run())
  samples.sort((a, b) => a - b)
  const round = (x: number) => Math.round(x * 10) / 10
  return { min: round(samples[0]!), median: round(samples[Math.floor(samples.length / 2)]!), max: round(samples[samples.length - 1]!) }
}

ensureBuilt()
const bare = await stats(() => measure(["-e", "setInterval(() => {}, 1000)"], undefined))
for (const [name, main] of [["idle", "dist/cli/main.js"], ["idle-sources", "src/cli/main.ts"]] as const) {
  const s = await stats(() => measureNode(main))
  console.log(JSON.stringify({
    name,
    main,
    idle_rss_mb: s.median,
    idle_rss_mb_min: s.min,
    idle_rss_mb_max: s.max,
    runs: RUNS,
    settle_ms: SETTLE_MS,
    baseline: bare.median,
    baseline_min: bare.min,
    baseline_max: bare.max,
    ratio: Math.round((s.median / bare.median) * 100) / 100
  }))
}

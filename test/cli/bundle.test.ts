// The published `effect-p2p` command is one minified bundle (scripts/build.ts; issue 15, idle
// memory). The other CLI tests run the sources, so this one builds the package into a temporary
// directory and runs the bundle the way an operator does: a minifier that broke a name or a module
// the bundle left out would show here and nowhere else.
import { assert, describe, it } from "@effect/vitest"
import { spawn, spawnSync } from "node:child_process"
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, beforeAll } from "vitest"

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..")
// Under the repository (tmp/ is ignored by git), so the bundle finds sodium-native as the package does.
let out = ""
let main = ""
const homes: Array<string> = []

beforeAll(() => {
  mkdirSync(join(root, "tmp"), { recursive: true })
  out = mkdtempSync(join(root, "tmp", "bundle-test-"))
  main = join(out, "cli", "main.js")
  const r = spawnSync(process.execPath, [join(root, "scripts", "build.ts"), "--out", out], { encoding: "utf8", timeout: 120_000 })
  assert.strictEqual(r.status, 0, r.stderr + r.stdout)
  assert.match(r.stdout, /the CLI is bundled/)
}, 150_000)

afterAll(() => {
  rmSync(out, { recursive: true, force: true })
  for (const h of homes) rmSync(h, { recursive: true, force: true })
})

const run = (...args: Array<string>) => spawnSync(process.execPath, [main, ...args], { encoding: "utf8", timeout: 20_000 })
const newHome = () => {
  const h = mkdtempSync(join(tmpdir(), "p2p-bundle-"))
  homes.push(h)
  return join(h, "home")
}

describe("the bundled effect-p2p command (dist/cli/main.js)", () => {
  it("imports nothing but Node built-ins, its chunks and the e2e runner; effect and the rest are inside", () => {
    const code = readFileSync(main, "utf8")
    assert.isTrue(code.startsWith("#!/usr/bin/env node\n"))
    // The minified file opens with its import statements; dynamic imports are `import("…")`.
    const head = /^#!.*\n((?:import\s*(?:[\w$*{}\s,]+from\s*)?"[^"]+";?)*)/.exec(code)![1]!
    const statics = [...head.matchAll(/"([^"]+)"/g)].map((m) => m[1]!)
    const dynamics = [...code.matchAll(/\bimport\(\s*["'`]([^"'`]+)["'`]\s*\)/g)].map((m) => m[1]!)
    const specifiers = [...statics, ...dynamics]
    assert.isAbove(statics.length, 5)
    const foreign = specifiers.filter((s) => !s.startsWith("node:") && !s.startsWith("../e2e/") && !s.startsWith("./chunks/"))
    assert.deepStrictEqual(foreign, [])
    assert.isTrue(specifiers.includes("../e2e/main.js"))
  })

  it("--version, init and show-node-id work", () => {
    assert.match(run("--version").stdout, /0\.1\.0/)
    const home = newHome()
    const init = run("init", "--home", home)
    assert.strictEqual(init.status, 0, init.stderr)
    assert.match(init.stdout, /wrote .*config\.toml/)
    const id = run("show-node-id", "--home", home)
    assert.strictEqual(id.status, 0, id.stderr)
    assert.match(id.stdout.trim(), /^[0-9a-f]{40}$/)
  })

  it("a bad flag is one line naming it, exit code 2", () => {
    const r = run("start", "--home", newHome(), "--laddr", "nowhere")
    assert.strictEqual(r.status, 2, r.stderr)
    const lines = r.stderr.split("\n").filter((l) => l.trim() !== "")
    assert.strictEqual(lines.length, 1, r.stderr)
    assert.include(lines[0], "laddr")
  })

  it("e2e loads the runner shipped beside the bundle and refuses a bad manifest with exit code 2", () => {
    const manifest = join(dirname(newHome()), "bad.toml")
    writeFileSync(manifest, "name = \"bad\"\nduration = \"soon\"\n")
    const r = run("e2e", manifest)
    assert.strictEqual(r.status, 2, r.stderr + r.stdout)
    assert.include(r.stderr + r.stdout, "duration")
  })

  it("start runs a node that serves HTTP, and SIGTERM shuts it down with exit code 0", async () => {
    const home = newHome()
    const child = spawn(process.execPath, [main, "start", "--home", home, "--laddr", "tcp://127.0.0.1:0", "--http-addr", "127.0.0.1:0"], { stdio: ["ignore", "pipe", "pipe"] })
    let output = ""
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)))
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`not serving after 15 s:\n${output}`)), 15_000)
        const onData = (d: Buffer) => {
          output += d.toString()
          if (/serving \/metrics.* on http:\/\/127\.0\.0\.1:(\d+)/.test(output)) {
            clearTimeout(timer)
            resolve()
          }
        }
        child.stdout.on("data", onData)
        child.stderr.on("data", onData)
        void exited.then((code) => reject(new Error(`exited with ${code}:\n${output}`)))
      })
      const port = Number(/on http:\/\/127\.0\.0\.1:(\d+)/.exec(output)![1])
      const metrics = await fetch(`http://127.0.0.1:${port}/metrics`)
      assert.strictEqual(metrics.status, 200)
      assert.include(await metrics.text(), "p2p_peers")
      child.kill("SIGTERM")
      assert.strictEqual(await exited, 0, output)
      assert.include(output, "shutting down")
    } finally {
      child.kill("SIGKILL")
    }
  }, 30_000)
})

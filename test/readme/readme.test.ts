// The README's code runs as written: every TypeScript block in README.md is a file of the example
// application in examples/app (checked here byte for byte), the programs among them run here
// against the sources, the test among them runs in `npm test` (vitest includes examples/app/test),
// and CI's consumer step (.ci/consumer) runs them all again from the packed tarball.
import { assert, describe, it } from "@effect/vitest"
import { spawnSync } from "node:child_process"
import { existsSync, readFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { Metric } from "effect"
import * as Metrics from "../../src/layers/Metrics.ts"

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..")
const readme = readFileSync(join(root, "README.md"), "utf8")

interface Block {
  readonly lang: string
  readonly code: string
  readonly file: string | undefined
  readonly line: number
}

/** The fenced code blocks, each with the `<!-- example: PATH -->` marker of the line before it, if any. */
const blocks = (markdown: string): ReadonlyArray<Block> => {
  const lines = markdown.split("\n")
  const out: Array<Block> = []
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\w*)\s*$/.exec(lines[i]!)
    if (open === null) continue
    const end = lines.indexOf("```", i + 1)
    const marker = /^<!-- example: (\S+) -->$/.exec(lines[i - 1] ?? "")
    out.push({ lang: open[1]!, code: lines.slice(i + 1, end).join("\n") + "\n", file: marker?.[1], line: i + 1 })
    i = end
  }
  return out
}

const run = (file: string) =>
  spawnSync(process.execPath, ["--import", join(root, "test", "support", "sourceHooks.ts"), join(root, file)], { encoding: "utf8", timeout: 30_000, cwd: root })

describe("README", () => {
  const ts = blocks(readme).filter((b) => b.lang === "ts")

  it("every TypeScript block is a file of examples/app, word for word", () => {
    assert.isAtLeast(ts.length, 4)
    for (const block of ts) {
      assert.isDefined(block.file, `README.md:${block.line}: a ts block needs an <!-- example: examples/app/... --> line before it`)
      assert.isTrue(existsSync(join(root, block.file!)), `README.md:${block.line}: ${block.file} does not exist`)
      assert.strictEqual(block.code, readFileSync(join(root, block.file!), "utf8"), `README.md:${block.line} differs from ${block.file}`)
    }
  })

  it("tells a library user what to install", () => {
    assert.include(readme, "npm install effect-p2p effect @effect/platform-node @bufbuild/protobuf")
  })

  it("lists every metric the node exports", () => {
    const names = Object.values(Metrics).filter(Metric.isMetric).map((m) => m.id)
    assert.isAtLeast(names.length, 18)
    for (const name of names) assert.include(readme, `| \`${name}\` |`, `README.md does not list the metric ${name}`)
  })

  it("the two-node TCP program exchanges a message and exits 0", () => {
    const r = run("examples/app/src/main.ts")
    assert.strictEqual(r.status, 0, r.stderr)
    assert.strictEqual(r.stdout.trim(), `bob received "hello" and "ping" from alice over TCP`)
  })

  it("the domain-types program prints an ID, an address and a typed error", () => {
    const r = run("examples/app/src/domain.ts")
    assert.strictEqual(r.status, 0, r.stderr)
    const [id, address, error] = r.stdout.trim().split("\n")
    assert.match(id!, /^[0-9a-f]{40}$/)
    assert.strictEqual(address, `mconn://${"abcd".repeat(10)}@127.0.0.1:26656`)
    assert.match(error!, /^InvalidNodeAddress: .*invalid port "99999"/)
  })

  it("the hand-driven handshake program reaches its peer", () => {
    const r = run("examples/app/src/handshake.ts")
    assert.strictEqual(r.status, 0, r.stderr)
    assert.strictEqual(r.stdout.trim(), "a reached b; b received 3 bytes on channel 48")
  })
})

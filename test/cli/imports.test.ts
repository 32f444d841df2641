// What an idle node loads: effect's and @effect/platform-node's index modules import every module
// of their package (effect's alone is ~4 MB of RSS for `effect-p2p start`; platform-node's pulls in
// ~650 modules, node-redis among them), so the sources import modules by path.
import { assert, describe, it } from "@effect/vitest"
import { readdirSync, readFileSync } from "node:fs"
import { dirname, join, relative } from "node:path"
import { fileURLToPath } from "node:url"

const src = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "src")

const files = (dir: string): Array<string> =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : []))

describe("imports of src/", () => {
  it("no module imports the index of effect or @effect/platform-node (import effect/Effect, effect/Layer, ...)", () => {
    const offenders = files(src).filter((f) => /from "(effect|@effect\/platform-node)"/.test(readFileSync(f, "utf8"))).map((f) => relative(src, f))
    assert.deepStrictEqual(offenders, [])
  })
})

/**
 * Runs the benchmarks: every `bench/*.ts` but this file, each in its own Node process, one after
 * another. Each prints one JSON line per result: {"name", ...figures, "baseline", "ratio"}.
 * `npm run bench -- NAME` runs the files whose name starts with NAME.
 */
import { spawnSync } from "node:child_process"
import { readdirSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const here = dirname(fileURLToPath(import.meta.url))
const filter = process.argv[2]
const files = readdirSync(here)
  .filter((f) => f.endsWith(".ts") && f !== "run.ts" && !f.startsWith("_"))
  .filter((f) => filter === undefined || f.startsWith(filter))
  .sort()
if (files.length === 0) {
  console.error(`no benchmark matches ${JSON.stringify(filter)}`)
  process.exit(2)
}
let failed = 0
for (const f of files) {
  const r = spawnSync(process.execPath, ["--expose-gc", join(here, f)], { stdio: "inherit" })
  if (r.status !== 0) failed++
}
process.exit(failed === 0 ? 0 : 1)

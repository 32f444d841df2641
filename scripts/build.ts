/**
 * `npm run build` (and `prepack`): compiles `src/` to `dist/` for publishing.
 *
 * In this repository Node runs the TypeScript sources directly, with `.ts` in relative imports.
 * Node does not strip types from files under `node_modules`, so the published package ships
 * JavaScript: `tsc` emits `dist/**.js` with the imports rewritten to `.js`
 * (`rewriteRelativeImportExtensions`). It does not rewrite them in declaration files, and a
 * consumer's `tsc` rejects `.ts` specifiers in a `.d.ts` unless it sets
 * `allowImportingTsExtensions`, so this script rewrites those too: the declarations then resolve
 * under `nodenext`, `node16` and `bundler` alike. Finally the CLI entry point gets its executable bit.
 */
import { spawnSync } from "node:child_process"
import { chmodSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const dist = join(root, "dist")

rmSync(dist, { recursive: true, force: true })
const tsc = spawnSync(process.execPath, [join(root, "node_modules", "typescript", "bin", "tsc"), "-p", join(root, "tsconfig.build.json")], { stdio: "inherit" })
if (tsc.status !== 0) {
  console.error("build: tsc failed")
  process.exit(1)
}

/** Relative module specifiers ending in `.ts`, in `from "…"`, `import("…")` and `import "…"`. */
const specifier = /((?:\bfrom|\bimport)\s*\(?\s*)(["'])(\.\.?\/[^"']*?)\.ts\2/g

const walk = (dir: string): Array<string> =>
  readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? walk(path) : [path]
  })

let rewritten = 0
for (const file of walk(dist)) {
  if (!file.endsWith(".d.ts")) continue
  const text = readFileSync(file, "utf8")
  const next = text.replace(specifier, (_, head: string, quote: string, path: string) => `${head}${quote}${path}.js${quote}`)
  if (next !== text) {
    writeFileSync(file, next)
    rewritten++
  }
}

/** An import or export statement (not a comment) that still names a `.ts` module. */
const tsImport = /^\s*(?:import|export)\b[^\n]*["']\.\.?\/[^"'\n]*\.ts["']/m
const leftovers = walk(dist).filter((f) => (f.endsWith(".d.ts") || f.endsWith(".js")) && tsImport.test(readFileSync(f, "utf8")))
if (leftovers.length > 0) {
  console.error(`build: .ts specifiers left in ${leftovers.join(", ")}`)
  process.exit(1)
}

chmodSync(join(dist, "cli", "main.js"), 0o755)
console.log(`build: dist/ written (${rewritten} declaration files rewritten to .js specifiers)`)

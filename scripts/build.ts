/**
 * `npm run build` (and `prepack`): compiles `src/` to `dist/` for publishing.
 *
 * In this repository Node runs the TypeScript sources directly, with `.ts` in relative imports.
 * Node does not strip types from files under `node_modules`, so the published package ships
 * JavaScript: `tsc` emits `dist/**.js` with the imports rewritten to `.js`
 * (`rewriteRelativeImportExtensions`). It does not rewrite them in declaration files, and a
 * consumer's `tsc` rejects `.ts` specifiers in a `.d.ts` unless it sets
 * `allowImportingTsExtensions`, so this script rewrites those too: the declarations then resolve
 * under `nodenext`, `node16` and `bundler` alike.
 *
 * Then the `effect-p2p` command's entry point, `dist/cli/main.js`, is replaced by one bundle of
 * everything it loads (effect, @effect/platform-node, @bufbuild/protobuf, smol-toml and this
 * package's modules), tree-shaken and minified by rolldown (a pinned devDependency; vitest's
 * vite uses the same). An idle node otherwise loads ~450 modules whose source text V8 keeps in memory (effect's JSDoc-rich
 * sources alone ~6 MB of heap, stored as two-byte strings): the bundle takes the idle node from
 * ~96 to ~73 MB RSS (issue 15, `npm run bench -- idle`). Only the command's own process runs the
 * bundle: the library entry points (`dist/index.js`, `dist/testing/**`) stay tsc's one-file-per-module
 * output, importing the application's copy of Effect. Subcommands loaded on demand become chunks
 * in `dist/cli/chunks/`; the e2e runner (`dist/e2e/`, which finds the package's files relative
 * to itself) and `sodium-native` (a native addon) stay outside the bundle. Without rolldown the
 * command is left unbundled (it works the same, with more memory) and the build says so.
 * `--out DIR` builds into DIR instead of `dist/` (the CLI's bundle test uses it). Finally the CLI
 * entry point gets its executable bit.
 */
import { spawnSync } from "node:child_process"
import { chmodSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { dirname, join, relative, resolve, sep } from "node:path"
import { fileURLToPath } from "node:url"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const outFlag = process.argv.indexOf("--out")
const dist = outFlag === -1 ? join(root, "dist") : resolve(process.argv[outFlag + 1] ?? "dist")

rmSync(dist, { recursive: true, force: true })
const tsc = spawnSync(process.execPath, [join(root, "node_modules", "typescript", "bin", "tsc"), "-p", join(root, "tsconfig.build.json"), "--outDir", dist], {
  stdio: "inherit"
})
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

/** Bundles `cli/main.js` in place; says why not when rolldown is missing. */
const bundleCli = async (): Promise<string> => {
  let rolldown: typeof import("rolldown").rolldown
  try {
    rolldown = (await import("rolldown")).rolldown
  } catch {
    return "the CLI is not bundled (rolldown is not installed: run npm ci); it works, with ~20 MB more RSS when idle"
  }
  const cli = join(dist, "cli")
  const e2e = join(dist, "e2e") + sep
  const bundle = await rolldown({
    input: join(cli, "main.js"),
    platform: "node",
    // Built-ins, the native addon (required at run time, optional) and the e2e runner stay imports.
    external: (id, importer) =>
      id.startsWith("node:") || id === "sodium-native" ||
      (importer !== undefined && id.startsWith(".") && resolve(dirname(importer), id).startsWith(e2e)),
    logLevel: "warn"
  })
  try {
    const { output } = await bundle.generate({
      dir: cli,
      format: "es",
      minify: true,
      // Escaped non-ASCII characters keep V8's copy of the source text one byte per character.
      charset: "ascii",
      // Class and function names stay readable in errors and stack traces.
      keepNames: true,
      sourcemap: true,
      sourcemapExcludeSources: true,
      entryFileNames: "main.js",
      chunkFileNames: "chunks/[name]-[hash].js"
    })
    for (const file of output) {
      mkdirSync(dirname(join(cli, file.fileName)), { recursive: true })
      writeFileSync(join(cli, file.fileName), file.type === "chunk" ? file.code : file.source)
    }
    const chunks = output.filter((f) => f.type === "chunk")
    return `the CLI is bundled (${chunks.map((c) => `${relative(dist, join(cli, c.fileName))} ${Math.round(c.code.length / 1024)} kB`).join(", ")})`
  } finally {
    await bundle.close()
  }
}
const bundled = await bundleCli()

chmodSync(join(dist, "cli", "main.js"), 0o755)
console.log(`build: ${relative(root, dist) || "."}/ written (${rewritten} declaration files rewritten to .js specifiers; ${bundled})`)

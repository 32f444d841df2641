#!/usr/bin/env node
/**
 * `npm run e2e -- MANIFEST [--loopback] [--lines|--live] [--report FILE]`: runs the manifest's
 * nodes as real `effect-p2p start` processes in network namespaces, injects its faults, checks the
 * mesh heals within the derived bound, and prints a table; exit code 0 when every check passed,
 * 1 when one failed, 2 for a bad manifest or arguments. SIGINT/SIGTERM stop the run and clean up
 * (a second one cleans up at once and exits). See docs/E2E.md.
 */
import { dirname, extname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { ManifestError } from "./Manifest.ts"
import * as Report from "./Report.ts"
import { control, runE2e } from "./Runner.ts"
import { E2eError } from "./Sh.ts"

const here = fileURLToPath(import.meta.url)
/** The repository or installed package this file belongs to (`src/e2e/` or `dist/e2e/`). */
export const root = resolve(dirname(here), "..", "..")
/** The `effect-p2p` command the nodes run: `src/cli/main.ts` in the repository, `dist/cli/main.js` in the package. */
export const cliMain = join(dirname(here), "..", "cli", `main${extname(here)}`)
/** The userspace delay queue's source (shipped in the package). */
export const nfqdelaySource = join(root, "e2e", "nfqdelay.c")

const usage = "usage: effect-p2p e2e MANIFEST.toml (or npm run e2e -- MANIFEST.toml) [--loopback] [--lines|--live] [--report FILE.json]"

/**
 * Runs the e2e command with its arguments (without the program name) and returns the exit code;
 * parses them, then {@link run}.
 */
export const runCommand = async (args: ReadonlyArray<string>): Promise<number> => {
  let manifestPath: string | undefined
  let loopback = false
  let live: boolean | undefined
  let reportPath: string | undefined
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!
    if (a === "--loopback") loopback = true
    else if (a === "--lines") live = false
    else if (a === "--live") live = true
    else if (a === "--report") reportPath = args[++i]
    else if (a === "--help" || a === "-h") {
      process.stdout.write(`${usage}\n`)
      return 0
    } else if (a.startsWith("-")) {
      process.stderr.write(`e2e: unknown option ${a}\n${usage}\n`)
      return 2
    } else if (manifestPath === undefined) manifestPath = a
    else {
      process.stderr.write(`e2e: one manifest at a time (got ${manifestPath} and ${a})\n`)
      return 2
    }
  }
  if (manifestPath === undefined) {
    process.stderr.write(`${usage}\n`)
    return 2
  }
  return run({ manifestPath, loopback, ...(live === undefined ? {} : { live }), ...(reportPath === undefined ? {} : { reportPath }) })
}

/** What a run is told, parsed (by {@link runCommand} or by the `effect-p2p e2e` subcommand). */
export interface CommandOptions {
  readonly manifestPath: string
  readonly loopback: boolean
  /** Live view (default: when stdout is a terminal); false: one line per event. */
  readonly live?: boolean
  readonly reportPath?: string
}

/**
 * Runs a manifest and returns the exit code (0 passed, 1 a check failed, 2 bad manifest, 130
 * stopped by a signal); installs the SIGINT/SIGTERM/SIGHUP handlers that stop the run and clean up.
 */
export const run = async ({ manifestPath, loopback, live, reportPath }: CommandOptions): Promise<number> => {
  let signals = 0
  const onSignal = (sig: NodeJS.Signals) => {
    signals++
    if (signals === 1) {
      control.aborted = true
      control.reason = sig
      process.stderr.write(`\ne2e: ${sig}: stopping the nodes and removing the namespaces (again to force)\n`)
    } else {
      control.emergency()
      process.exit(130)
    }
  }
  process.on("SIGINT", onSignal)
  process.on("SIGTERM", onSignal)
  process.on("SIGHUP", onSignal)
  // Last resort: whatever exits the process removes what the run created.
  process.on("exit", () => control.emergency())

  try {
    const report = await runE2e({ manifestPath, cliMain, nfqdelaySource, loopback, ...(live === undefined ? {} : { live }), ...(reportPath === undefined ? {} : { reportPath }) })
    const json = reportPath ?? join(report.logs, "report.json")
    Report.writeJson(json, report)
    process.stdout.write(`\n${Report.render(report)}\nreport: ${json}\n`)
    return control.aborted ? 130 : report.passed ? 0 : 1
  } catch (e) {
    if (e instanceof ManifestError) {
      process.stderr.write(`e2e: ${e.key === manifestPath ? "" : `${manifestPath}: `}${e.message}\n`)
      return 2
    }
    if (e instanceof E2eError) {
      process.stderr.write(`e2e: ${e.message}\n`)
      return 1
    }
    process.stderr.write(`e2e: unexpected failure: ${(e as Error).stack ?? String(e)}\n`)
    return 1
  }
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  runCommand(process.argv.slice(2)).then((code) => process.exit(code))
}

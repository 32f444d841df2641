/**
 * Runs fuzz targets: generated inputs (mutated seeds and random bytes) from a seeded generator, so
 * a run replays exactly; failing inputs are saved under `test/fuzz/corpus/<target>/` (committed,
 * and replayed by `npm test` as regression tests). Shared by `npm run fuzz` and the test file.
 */
import { createHash } from "node:crypto"
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { generate, Random } from "./Mutator.ts"
import type { Target } from "./targets.ts"

/** Where failing inputs are kept. */
export const CORPUS = join(dirname(fileURLToPath(import.meta.url)), "corpus")

/** What one target's run found. */
export interface Report {
  readonly target: string
  readonly inputs: number
  readonly failures: number
  readonly seconds: number
  readonly seed: number
  /** The first few failures: the message and where the input was saved. */
  readonly examples: ReadonlyArray<{ readonly message: string; readonly saved: string | undefined }>
}

/** Runs `target` on `inputs` generated inputs (or until `seconds` pass); saves failures when `save`. */
export const run = (target: Target, options: { readonly inputs: number; readonly seconds?: number; readonly seed: number; readonly save: boolean }): Report => {
  const r = new Random(options.seed)
  const seeds = target.seeds()
  const started = performance.now()
  const deadline = options.seconds === undefined ? Number.POSITIVE_INFINITY : started + options.seconds * 1000
  let failures = 0
  let inputs = 0
  const examples: Array<{ message: string; saved: string | undefined }> = []
  for (; inputs < options.inputs && (inputs % 256 !== 0 || performance.now() < deadline); inputs++) {
    const input = generate(r, seeds, target.maxLength)
    try {
      target.check(input)
    } catch (e) {
      failures++
      const saved = options.save ? save(target.name, input) : undefined
      if (examples.length < 5) examples.push({ message: e instanceof Error ? `${e.constructor.name}: ${e.message}` : String(e), saved })
    }
  }
  return { target: target.name, inputs, failures, seconds: Number(((performance.now() - started) / 1000).toFixed(2)), seed: options.seed, examples }
}

/** Saves a failing input as `corpus/<target>/<sha256 prefix>.bin`; returns the path. */
export const save = (target: string, input: Uint8Array): string => {
  const dir = join(CORPUS, target)
  mkdirSync(dir, { recursive: true })
  const path = join(dir, `${createHash("sha256").update(input).digest("hex").slice(0, 16)}.bin`)
  writeFileSync(path, input)
  return path
}

/** The saved inputs of a target. */
export const corpus = (target: string): ReadonlyArray<{ readonly file: string; readonly input: Uint8Array }> => {
  const dir = join(CORPUS, target)
  if (!existsSync(dir)) return []
  return readdirSync(dir).filter((f) => f.endsWith(".bin")).map((file) => ({ file, input: new Uint8Array(readFileSync(join(dir, file))) }))
}

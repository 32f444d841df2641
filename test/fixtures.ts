/**
 * Reference test vectors live outside the repository, in `../shared/fixtures` (override with
 * `P2P_FIXTURES`). Under `CI=true` a missing fixture fails the suite; elsewhere the tests that
 * need it are skipped with a note.
 */
import { existsSync, readFileSync } from "node:fs"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"

const here = dirname(fileURLToPath(import.meta.url))

/** Directory holding the fixtures. */
export const fixturesDir = resolve(process.env["P2P_FIXTURES"] ?? join(here, "..", "..", "shared", "fixtures"))

/** Whether a fixture file is present. Throws under CI when it is not, so CI never silently skips. */
export const hasFixture = (name: string): boolean => {
  const present = existsSync(join(fixturesDir, name))
  if (!present && process.env["CI"] === "true") {
    throw new Error(`fixture ${name} is missing from ${fixturesDir} (set P2P_FIXTURES to the fixtures folder)`)
  }
  return present
}

/** The text of a fixture file. */
export const readFixture = (name: string): string => readFileSync(join(fixturesDir, name), "utf8")

/** A JSON fixture, parsed. */
export const readJsonFixture = <A = unknown>(name: string): A => JSON.parse(readFixture(name)) as A

/**
 * Hex to bytes; whitespace is ignored, so vectors can be grouped (`"0a ff ff"`). Throws on anything
 * else that is not a whole number of hex bytes (`Buffer.from` would silently stop at the first bad
 * character and hand back a shorter vector).
 */
export const hex = (s: string): Uint8Array => {
  const digits = s.replace(/\s+/g, "")
  if (!/^(?:[0-9a-fA-F]{2})*$/.test(digits)) throw new Error(`hex: ${JSON.stringify(s)} is not a whole number of hex bytes`)
  return new Uint8Array(Buffer.from(digits, "hex"))
}

/** Bytes to lowercase hex. */
export const toHex = (b: Uint8Array): string => Buffer.from(b).toString("hex")

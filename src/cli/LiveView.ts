/**
 * Small text-output helpers shared by the `testnet` and `crawl` commands: aligned tables, the
 * ANSI sequence that redraws a terminal view in place, and a few statistics.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as References from "effect/References"
import type * as LogLevel from "effect/LogLevel"

/** Moves the cursor home and clears the screen: prefix of each frame of a view redrawn in place. */
export const CLEAR_SCREEN = "\x1b[H\x1b[2J"

/** Whether standard output is a terminal (where a live view is drawn instead of log lines). */
export const stdoutIsTty = (): boolean => process.stdout.isTTY === true

/** Rows of the terminal, or `undefined` when standard output is not one. */
export const terminalRows = (): number | undefined => (process.stdout.isTTY === true ? process.stdout.rows : undefined)

/**
 * Renders rows under a header as left-aligned columns separated by two spaces; columns listed in
 * `right` are right-aligned (numbers). Trailing spaces are trimmed.
 */
export const table = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>, right: ReadonlyArray<number> = []): string => {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)))
  const line = (cells: ReadonlyArray<string>) =>
    cells.map((c, i) => (right.includes(i) ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0))).join("  ").trimEnd()
  return [line(header), ...rows.map(line)].join("\n")
}

/** The `q`-quantile (0..1) of `values` by nearest rank, or `undefined` for none. */
export const quantile = (values: ReadonlyArray<number>, q: number): number | undefined => {
  if (values.length === 0) return undefined
  const sorted = [...values].sort((a, b) => a - b)
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))
  return sorted[rank]
}

/** The mean of `values`, or `undefined` for none. */
export const mean = (values: ReadonlyArray<number>): number | undefined =>
  values.length === 0 ? undefined : values.reduce((a, b) => a + b, 0) / values.length

/** A number with `digits` decimals, or "-" when there is none. */
export const fixed = (n: number | undefined, digits = 1): string => (n === undefined ? "-" : n.toFixed(digits))

/**
 * Raises the minimum log level to `level` while `effect` runs, unless someone chose a level (the
 * current one is not Effect's default "Info", e.g. `--log-level debug`): node logs would scroll a
 * live view away or interleave with machine-readable output.
 */
export const quietLogs = (level: LogLevel.LogLevel) => <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.gen(function* () {
    const current = yield* References.MinimumLogLevel
    return yield* (current === "Info" ? Effect.provideService(effect, References.MinimumLogLevel, level) : effect)
  })

/**
 * CometBFT's `log_level`: one level (`"info"`) or levels per module with a default
 * (`"main:info,p2p:debug,*:error"`). Levels are `debug`, `info`, `warn`, `error` and `none`. The
 * node's own lines (start, shutdown, files written) belong to module `main`; everything the P2P
 * stack logs belongs to `p2p`. `log_format` is `plain` (logfmt lines) or `json` (one object per line).
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as EffectLogLevel from "effect/LogLevel"
import * as References from "effect/References"
import * as Result from "effect/Result"

/** A level as written in `config.toml`. */
export type Level = "debug" | "info" | "warn" | "error" | "none"

/** A parsed `log_level`. */
export interface LogSpec {
  /** The level of modules not listed (`*`, or the whole value when it names one level). */
  readonly default: Level
  readonly modules: ReadonlyMap<string, Level>
}

/** The modules the node logs under. */
export const MODULES = ["main", "p2p"] as const

const LEVELS: ReadonlyArray<Level> = ["debug", "info", "warn", "error", "none"]

const isLevel = (s: string): s is Level => (LEVELS as ReadonlyArray<string>).includes(s)

/** Parses a `log_level` value; the failure says what is wrong in words. */
export const parse = (text: string): Result.Result<LogSpec, string> => {
  const value = text.trim()
  if (isLevel(value)) return Result.succeed({ default: value, modules: new Map() })
  let fallback: Level = "info"
  const modules = new Map<string, Level>()
  for (const part of value.split(",")) {
    const m = /^\s*([A-Za-z0-9_*-]+)\s*:\s*([a-z]+)\s*$/.exec(part)
    if (m === null) return Result.fail(`"${part.trim()}" is not a level (${LEVELS.join(", ")}) or module:level`)
    const [, module, level] = m as unknown as [string, string, string]
    if (!isLevel(level)) return Result.fail(`"${level}" in "${part.trim()}" is not a level: use ${LEVELS.join(", ")}`)
    if (module === "*") fallback = level
    else modules.set(module, level)
  }
  return Result.succeed({ default: fallback, modules })
}

/** The level a module logs at. */
export const levelOf = (spec: LogSpec, module: string): Level => spec.modules.get(module) ?? spec.default

const effectLevel = (level: Level): EffectLogLevel.LogLevel =>
  level === "debug" ? "Debug" : level === "info" ? "Info" : level === "warn" ? "Warn" : level === "error" ? "Error" : "None"

/** The module of a log line: its `module` annotation, `p2p` when it has none. */
const moduleOf = (annotations: Readonly<Record<string, unknown>>): string => {
  const m = annotations["module"]
  return typeof m === "string" ? m : "p2p"
}

/** `inner`, dropping the lines below the level of their module (the `module` annotation, `p2p` when absent). */
export const filter = <Output>(spec: LogSpec, inner: Logger.Logger<unknown, Output>): Logger.Logger<unknown, Output | undefined> =>
  Logger.make((options) => {
    const threshold = effectLevel(levelOf(spec, moduleOf(options.fiber.getRef(References.CurrentLogAnnotations))))
    if (threshold === "None" || EffectLogLevel.isLessThan(options.logLevel, threshold)) return undefined
    return inner.log(options)
  })

/** The lowest level any module logs at: what the runtime must let through to the logger. */
export const minimum = (spec: LogSpec): EffectLogLevel.LogLevel =>
  [spec.default, ...spec.modules.values()]
    .map(effectLevel)
    .filter((l) => l !== "None")
    .reduce<EffectLogLevel.LogLevel>((lowest, l) => (EffectLogLevel.isLessThan(l, lowest) ? l : lowest), "None")

/**
 * The node's logger: lines below their module's level are dropped, the rest written as logfmt
 * (`plain`) or JSON to the console; the minimum log level is the lowest one in use, so nothing a
 * module wants is filtered out before it reaches the logger.
 */
export const layer = (spec: LogSpec, format: "plain" | "json"): Layer.Layer<never> =>
  Layer.mergeAll(
    Logger.layer([filter(spec, format === "json" ? Logger.consoleJson : Logger.consoleLogFmt)]),
    Layer.succeed(References.MinimumLogLevel, minimum(spec))
  )

/** Marks an effect's log lines as the node's own (`main`) rather than the P2P stack's. */
export const main = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> => Effect.annotateLogs(effect, "module", "main")

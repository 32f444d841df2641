/**
 * The one way options are declared in this codebase. Each options record is a `Schema.Struct`:
 *
 * - every field optional, its default in the schema ({@link withDefault}), so a decoded record is
 *   complete and "adding an option" is one field with one default;
 * - durations written as `Duration.Input` (milliseconds, `"5 seconds"`, a `Duration`) and decoded
 *   to milliseconds ({@link Millis});
 * - rules between fields as checks on the struct ({@link rule}) that name the field to change;
 * - decoding ({@link decode}) that fails with the offending field taken from the issue's path and
 *   a message that says what is wrong and what would do.
 *
 * @example
 * ```ts
 * const Options = Schema.Struct({
 *   timeout: Options.withDefault(Options.Millis, 5_000),
 *   retries: Options.withDefault(Options.Count(), 3)
 * }).check(Options.rule("retries", (o) => o.retries === 0 || o.timeout > 0, "needs a timeout above 0"))
 * Options.decode(Options, { timeout: "2 seconds" }) // Success({ timeout: 2000, retries: 3 })
 * ```
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as SchemaAST from "effect/SchemaAST"
import * as SchemaGetter from "effect/SchemaGetter"
import * as SchemaIssue from "effect/SchemaIssue"

/**
 * A duration in milliseconds, written as milliseconds (a number), text `Duration` reads
 * (`"250 millis"`, `"5 seconds"`, `"30 minutes"`) or a `Duration`. Negative and infinite
 * durations are refused.
 */
export const Millis = Schema.Union([Schema.Number, Schema.String, Schema.Duration]).pipe(
  Schema.decodeTo(Schema.Number, {
    decode: SchemaGetter.transformEffect((input: number | string | Duration.Duration) => {
      const d = typeof input === "number" ? (Number.isNaN(input) ? Option.none() : Option.some(Duration.millis(input))) : Duration.fromInput(input as Duration.Input)
      if (Option.isNone(d)) {
        return Effect.fail<SchemaIssue.Issue>(new SchemaIssue.InvalidValue({ message: `${JSON.stringify(input)} is not a duration (use milliseconds or text like "5 seconds")` }, input))
      }
      if (!Duration.isFinite(d.value)) return Effect.fail<SchemaIssue.Issue>(new SchemaIssue.InvalidValue({ message: "must be finite" }, input))
      const ms = Duration.toMillis(d.value)
      if (ms < 0) return Effect.fail<SchemaIssue.Issue>(new SchemaIssue.InvalidValue({ message: `must not be negative, got ${ms} ms` }, input))
      return Effect.succeed(ms)
    }),
    encode: SchemaGetter.transform((ms: number) => ms)
  })
)

/** An integer in `0..max` (default 65535). */
export const Count = (max = 65535) => Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: max }))

/** An integer in `min..max`. */
export const Between = (min: number, max: number) => Schema.Int.check(Schema.isBetween({ minimum: min, maximum: max }))

/** The field may be left out; decoding fills in `value` (a decoded value: milliseconds for {@link Millis}). */
export const withDefault = <S extends Schema.Top>(schema: S, value: S["Type"]) =>
  schema.pipe(Schema.withDecodingDefaultTypeKey(Effect.succeed(value)))

/**
 * A rule between fields, checked once every field decoded: `holds` is false (or a string, the
 * problem) and the issue points at `field`, the one to change.
 */
export const rule = <T>(field: keyof T & string, holds: (options: T) => boolean | string, message = "") =>
  Schema.makeFilter<T>((o) => {
    const result = holds(o)
    if (result === true) return undefined
    return { path: [field], issue: typeof result === "string" ? result : message }
  })

/** What was wrong with a set of options: the field to change, and the problem. */
export interface Problem {
  readonly option: string
  readonly message: string
}

const formatter = SchemaIssue.makeFormatterStandardSchemaV1()

/** A short JSON rendering of an offending value, for messages; nothing for values JSON cannot show. */
const shown = (value: unknown): string | undefined => {
  if (value === undefined || typeof value === "function" || typeof value === "bigint" || typeof value === "symbol") return undefined
  try {
    const text = JSON.stringify(value)
    return text === undefined || text.length > 80 ? undefined : text
  } catch {
    return undefined
  }
}

/**
 * Decodes `input` with `schema`; unknown fields are refused. The failure names the first
 * offending field (`option`, `"options"` when the input is not a record) and its problem, with
 * where inside the field when it is a list or record (`"[2]: ..."`).
 */
export const decode = <S extends Schema.Decoder<unknown>>(schema: S, input: unknown): Result.Result<S["Type"], Problem> => {
  const decoded = Schema.decodeUnknownResult(schema)(input, { onExcessProperty: "error" })
  if (Result.isSuccess(decoded)) return Result.succeed(decoded.success)
  const [first] = formatter(decoded.failure.issue).issues
  const path = (first?.path ?? []).map((p) => (typeof p === "object" ? p.key : p))
  // Struct fields name the option ("nodeInfo.moniker"); list indexes and record keys after them
  // say where inside it ("[2]").
  let ast: SchemaAST.AST | undefined = schema.ast
  let depth = 0
  for (; depth < path.length && ast !== undefined && SchemaAST.isObjects(ast); depth++) {
    ast = ast.propertySignatures.find((p) => p.name === path[depth])?.type
    if (ast === undefined) break
  }
  const names = path.slice(0, Math.max(depth, Math.min(1, path.length))).map(String)
  const inside = path.slice(names.length).map(String)
  const got = shown(path.reduce<unknown>((v, key) => (Predicate.isObject(v) ? (v as Record<PropertyKey, unknown>)[key] : undefined), input))
  const text = first?.message ?? decoded.failure.message
  const message = got === undefined || text.includes(got) ? text : `${text}, got ${got}`
  return Result.fail({ option: names.length === 0 ? "options" : names.join("."), message: inside.length === 0 ? message : `${inside.map((p) => `[${p}]`).join("")}: ${message}` })
}

/** Decodes one value with a field's schema; the failure is the problem's text. */
export const decodeValue = <S extends Schema.Decoder<unknown>>(schema: S, value: unknown): Result.Result<S["Type"], string> => {
  const decoded = Schema.decodeUnknownResult(schema)(value)
  if (Result.isSuccess(decoded)) return Result.succeed(decoded.success)
  const [first] = formatter(decoded.failure.issue).issues
  return Result.fail(first?.message ?? decoded.failure.message)
}

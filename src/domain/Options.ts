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
import { Duration, Effect, Option, Result, Schema, SchemaGetter, SchemaIssue } from "effect"

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

/**
 * Decodes `input` with `schema`; unknown fields are refused. The failure names the first
 * offending field (`option`, `"options"` when the input is not a record) and its problem, with
 * where inside the field when it is a list or record (`"[2]: ..."`).
 */
export const decode = <S extends Schema.Decoder<unknown>>(schema: S, input: unknown): Result.Result<S["Type"], Problem> => {
  const decoded = Schema.decodeUnknownResult(schema)(input, { onExcessProperty: "error" })
  if (Result.isSuccess(decoded)) return Result.succeed(decoded.success)
  const [first] = formatter(decoded.failure.issue).issues
  const path = (first?.path ?? []).map((p) => String(typeof p === "object" ? p.key : p))
  const [option = "options", ...inside] = path
  const message = first?.message ?? decoded.failure.message
  return Result.fail({ option, message: inside.length === 0 ? message : `${inside.map((p) => `[${p}]`).join("")}: ${message}` })
}

/** Decodes one value with a field's schema; the failure is the problem's text. */
export const decodeValue = <S extends Schema.Decoder<unknown>>(schema: S, value: unknown): Result.Result<S["Type"], string> => {
  const decoded = Schema.decodeUnknownResult(schema)(value)
  if (Result.isSuccess(decoded)) return Result.succeed(decoded.success)
  const [first] = formatter(decoded.failure.issue).issues
  return Result.fail(first?.message ?? decoded.failure.message)
}

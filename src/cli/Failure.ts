/**
 * How the `effect-p2p` command ends when something fails: one or two lines on standard error
 * (what failed, which file, port or key, what to do) and a documented exit code:
 * - 0: success, or a node stopped by SIGINT/SIGTERM;
 * - 1: a runtime failure (a port in use, a peer store that cannot be opened, a home that cannot be
 *   written, anything unexpected);
 * - 2: bad input (a flag, a `config.toml` value, a `node_key.json`); nothing was written.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Exit from "effect/Exit"
import * as Schema from "effect/Schema"

/** Exit codes. */
export const EXIT = { ok: 0, runtime: 1, input: 2 } as const

/** A failure the command already put into words for the operator. */
export class CommandFailure extends Schema.TaggedError<CommandFailure>()("CommandFailure", {
  message: Schema.String,
  exitCode: Schema.Literals([1, 2])
}) {}

/** What to print and the exit code. */
export interface Report {
  readonly lines: ReadonlyArray<string>
  readonly code: number
}

interface Tagged {
  readonly _tag?: string
  readonly message?: string
  readonly reason?: string
  readonly errors?: ReadonlyArray<unknown>
}

/** Tags of effect/cli's usage errors (it prints them itself, with the help text). */
const USAGE = /^(ShowHelp|CliError|UnrecognizedOption|DuplicateOption|MissingOption|MissingArgument|UnexpectedArgument|InvalidValue|UnknownSubcommand|ValidationError)$/

/** Tags of errors that come from what the operator wrote (configuration, key file, options). */
const INPUT = /^(ConfigError|InvalidNodeKey|NodeKeyFileError|InvalidRouterOptions|InvalidPeerManagerOptions|InvalidPexOptions|InvalidHttpOptions|InvalidChannelDescriptor)$/

const line = (message: string) => `effect-p2p: ${message}`

/** The report for a failed (or interrupted) run. */
export const report = (exit: Exit.Exit<unknown, unknown>): Report => {
  if (Exit.isSuccess(exit) || Cause.hasInterruptsOnly(exit.cause)) return { lines: [], code: EXIT.ok }
  const error = Cause.findErrorOption(exit.cause)
  if (error._tag === "Some") {
    const e = error.value as Tagged
    const tag = e._tag ?? ""
    // effect/cli has printed the help and the problem already.
    if (tag === "ShowHelp") return { lines: [], code: (e.errors?.length ?? 0) > 0 ? EXIT.input : EXIT.ok }
    if (USAGE.test(tag)) return { lines: [], code: EXIT.input }
    if (tag === "CommandFailure") return { lines: [line(e.message ?? "")], code: (e as CommandFailure).exitCode }
    if (INPUT.test(tag)) return { lines: [line(e.message ?? tag)], code: EXIT.input }
    return { lines: [line(e.message ?? tag)], code: EXIT.runtime }
  }
  const defect = Cause.squash(exit.cause)
  const text = defect instanceof Error ? defect.message : String(defect)
  return {
    lines: [line(`unexpected error: ${text}`), line("this is a bug; please report it with the command you ran and the output of --log-level debug")],
    code: EXIT.runtime
  }
}

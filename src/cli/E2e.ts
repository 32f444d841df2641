/**
 * `effect-p2p e2e MANIFEST [--loopback] [--lines|--live] [--report FILE]`: the end-to-end runner
 * (real node processes in network namespaces, faults, checks; docs/E2E.md). The runner is loaded
 * only when this command runs, so `start` does not pay for it.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { Argument, Command, Flag } from "effect/cli"
import { CommandFailure } from "./Failure.ts"

/** What each exit code of the runner means, for the closing line. */
const outcome = (code: number): { readonly message: string; readonly exitCode: 1 | 2 } | undefined => {
  if (code === 0) return undefined
  if (code === 2) return { message: "e2e: bad manifest or arguments (see above)", exitCode: 2 }
  return { message: "e2e: a check failed or the run could not start (see the table and report above)", exitCode: 1 }
}

export const e2eCommand = Command.make("e2e", {
  manifest: Argument.String("manifest").pipe(Argument.withDescription("the manifest (TOML): nodes, conditions, faults, duration, checks")),
  loopback: Flag.Boolean("loopback").pipe(Flag.withDescription("run on 127.0.1.x addresses, network faults through a userspace link proxy, even where namespaces work"), Flag.withDefault(false)),
  lines: Flag.Boolean("lines").pipe(Flag.withDescription("one line per event (the default when stdout is not a terminal)"), Flag.withDefault(false)),
  live: Flag.Boolean("live").pipe(Flag.withDescription("the live view (the default on a terminal)"), Flag.withDefault(false)),
  report: Flag.String("report").pipe(Flag.withDescription("where the JSON report goes (default: the run's log directory)"), Flag.optional)
}, (f) =>
  Effect.gen(function* () {
    const report = Option.getOrUndefined(f.report)
    const live = f.live ? true : f.lines ? false : undefined
    // The runner owns SIGINT/SIGTERM (it stops the nodes and removes the namespaces before it
    // returns), so the run is not interrupted from outside: it is told, and finishes cleaning up.
    const { run } = yield* Effect.promise(() => import("../e2e/main.ts"))
    const code = yield* Effect.promise(() =>
      run({ manifestPath: f.manifest, loopback: f.loopback, ...(live === undefined ? {} : { live }), ...(report === undefined ? {} : { reportPath: report }) })
    )
    // Stopped by SIGINT/SIGTERM: the runner has removed what it created. The main fiber was
    // interrupted by the same signal, and an interrupted run exits 0, so the code is set here.
    if (code === 130) return yield* Effect.sync(() => process.exit(130))
    const failed = outcome(code)
    if (failed !== undefined) return yield* new CommandFailure(failed)
  }).pipe(Effect.uninterruptible)).pipe(Command.withDescription("run an end-to-end manifest: real nodes in network namespaces, with faults (docs/E2E.md)"))

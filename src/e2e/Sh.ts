/**
 * Running the system's commands (`ip`, `nft`, `iptables`, `tc`, `gcc`) with clear errors: a
 * failed command is an {@link E2eError} naming the command line and its stderr.
 */
import { spawnSync } from "node:child_process"

/** Something the runner needs failed; `message` says what and what to do. */
export class E2eError extends Error {
  readonly _tag = "E2eError"
}

export interface Result {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

/** Runs a command to completion (synchronously: these take milliseconds). */
export const run = (cmd: string, args: ReadonlyArray<string>, options: { readonly input?: string; readonly allowFail?: boolean; readonly timeout?: number } = {}): Result => {
  const r = spawnSync(cmd, args, { input: options.input ?? "", encoding: "utf8", timeout: options.timeout ?? 30_000 })
  const result = { code: r.status ?? (r.error === undefined ? 1 : 127), stdout: r.stdout ?? "", stderr: (r.stderr ?? "") + (r.error === undefined ? "" : String(r.error.message)) }
  if (result.code !== 0 && options.allowFail !== true) {
    throw new E2eError(`${cmd} ${args.join(" ")} failed (exit ${result.code}): ${result.stderr.trim().split("\n").slice(0, 3).join(" | ")}`)
  }
  return result
}

/** Whether a command exists on PATH. */
export const which = (cmd: string): boolean => run("sh", ["-c", `command -v ${cmd}`], { allowFail: true }).code === 0

import { assert, describe, it } from "@effect/vitest"
import { Effect, Logger, References, Result } from "effect"
import * as LogLevel from "../../src/cli/LogLevel.ts"

describe("log_level (CometBFT's syntax)", () => {
  it("one level for every module, or module:level pairs with * as the default", () => {
    const one = Result.getOrThrow(LogLevel.parse("debug"))
    assert.strictEqual(LogLevel.levelOf(one, "p2p"), "debug")
    const many = Result.getOrThrow(LogLevel.parse("main:info, p2p:debug,*:error"))
    assert.deepStrictEqual(["main", "p2p", "state"].map((m) => LogLevel.levelOf(many, m)), ["info", "debug", "error"])
    assert.strictEqual(LogLevel.levelOf(Result.getOrThrow(LogLevel.parse("p2p:none")), "main"), "info")
    assert.isTrue(Result.isFailure(LogLevel.parse("verbose")))
    assert.isTrue(Result.isFailure(LogLevel.parse("p2p=debug")))
  })

  it("the node's logger drops lines below their module's level; main lines are the node's own", () =>
    Effect.gen(function* () {
      const spec = Result.getOrThrow(LogLevel.parse("main:info,p2p:error"))
      const seen: Array<string> = []
      const collect = Logger.make(({ message }) => void seen.push(String(Array.isArray(message) ? message[0] : message)))
      yield* Effect.gen(function* () {
        yield* Effect.logDebug("p2p debug")
        yield* Effect.logWarning("p2p warning")
        yield* Effect.logError("p2p error")
        yield* LogLevel.main(Effect.logDebug("main debug"))
        yield* LogLevel.main(Effect.logInfo("main info"))
      }).pipe(
        Effect.provide(Logger.layer([LogLevel.filter(spec, collect)])),
        Effect.provideService(References.MinimumLogLevel, LogLevel.minimum(spec))
      )
      assert.deepStrictEqual(seen, ["p2p error", "main info"])
      assert.strictEqual(LogLevel.minimum(spec), "Info")
      assert.strictEqual(LogLevel.minimum(Result.getOrThrow(LogLevel.parse("none"))), "None")
    }))
})

/**
 * A wake-up signal: a one-shot `Deferred` replaced each time it fires. Waiters take the current one
 * (`get`), re-check their condition, then await it; `fire` wakes every waiter at once and never
 * blocks. Spurious wake-ups are harmless because waiters re-check.
 *
 * @since 0.1.0
 */
import { Deferred, Effect, Exit, References, type Scope } from "effect"

/** A replaceable signal. */
export interface Signal {
  /** The signal the next `fire` completes. */
  readonly get: () => Deferred.Deferred<void>
  /** Wakes everyone waiting on the current signal. */
  readonly fire: Effect.Effect<void>
  /** `fire`, run at once (for callers already inside an effect). */
  readonly fireUnsafe: () => void
}

/** A new signal. */
export const make: Effect.Effect<Signal> = Effect.gen(function* () {
  let current = yield* Deferred.make<void>()
  const fireUnsafe = () => {
    const fired = current
    current = Deferred.makeUnsafe<void>()
    Deferred.doneUnsafe(fired, Exit.void)
  }
  return {
    get: () => current,
    fire: Effect.sync(fireUnsafe),
    fireUnsafe
  }
})

/**
 * Deadlines for waiters of `signal`: `arm(at, now)` makes sure the signal fires by `at` (through
 * `Clock`, so `TestClock` drives it), in a fiber of `scope`. One timer serves every deadline at or
 * after the one already armed: the waiter it wakes early re-checks and arms again. So a waiter
 * whose deadline has not moved since it last slept does not start a timer of its own, and none
 * races the signal. A timer that is no longer needed still fires: a spurious wake-up, harmless.
 */
export const timer = (signal: Signal, scope: Scope.Scope) => {
  let armedAt = Number.POSITIVE_INFINITY
  return (at: number, now: number): Effect.Effect<void> =>
    Effect.suspend(() => {
      if (at >= armedAt) return Effect.void
      armedAt = at
      return Effect.asVoid(Effect.forkIn(
        Effect.andThen(
          // Whole milliseconds, at least one: a fractional deadline would wake just short of it.
          Effect.sleep(Math.max(1, Math.ceil(at - now))),
          Effect.sync(() => {
            if (armedAt === at) armedAt = Number.POSITIVE_INFINITY
            signal.fireUnsafe()
          })
        ),
        scope
      ))
    })
}

/**
 * A loop that lives as long as its layer, run without the stack frame of the `make` that starts
 * it: every failure in the loop and in the fibers it starts (each connection's, each message's)
 * would be annotated with that frame, which tells nothing about them and, at scale, costs a map
 * and a cause per failure.
 */
export const background = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.provideService(effect, References.CurrentStackFrame, undefined)

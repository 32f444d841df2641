/**
 * A wake-up signal: a one-shot `Deferred` replaced each time it fires. Waiters take the current one
 * (`get`), re-check their condition, then await it; `fire` wakes every waiter at once and never
 * blocks. Spurious wake-ups are harmless because waiters re-check.
 *
 * @since 0.1.0
 */
import { Deferred, Effect, Exit } from "effect"

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

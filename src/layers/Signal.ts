/**
 * A wake-up signal: a one-shot `Deferred` replaced each time it fires. Waiters take the current one
 * (`get`), re-check their condition, then await it; `fire` wakes every waiter at once and never
 * blocks. Spurious wake-ups are harmless because waiters re-check.
 *
 * @since 0.1.0
 */
import type * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as References from "effect/References"
import type * as Scope from "effect/Scope"

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
export const timer = (signal: Signal, scope: Scope.Scope) => earliest(scope, () => Effect.sync(() => signal.fireUnsafe()))

/**
 * One timer fiber of `scope` at a time, armed for the earliest time asked for: `arm(at, now)`
 * starts one only when `at` is before the one armed, and `fire` runs when it goes off (a timer
 * overtaken by an earlier one still fires: callers re-check, so a spurious wake-up is harmless).
 */
const earliest = (scope: Scope.Scope, fire: () => Effect.Effect<void>) => {
  let armedAt = Number.POSITIVE_INFINITY
  return (at: number, now: number): Effect.Effect<void> =>
    Effect.suspend(() => {
      if (at >= armedAt) return Effect.void
      armedAt = at
      return Effect.asVoid(Effect.forkIn(
        Effect.andThen(
          // Whole milliseconds, at least one: a fractional deadline would wake just short of it.
          Effect.sleep(Math.max(1, Math.ceil(at - now))),
          Effect.suspend(() => {
            if (armedAt === at) armedAt = Number.POSITIVE_INFINITY
            return fire()
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

/** A pending deadline of {@link deadlines}. */
interface Pending {
  readonly at: number
  readonly reached: Deferred.Deferred<void>
  /** Its waiter is gone (the bounded effect finished first): dropped when it reaches the top. */
  cancelled: boolean
}

/** Deadlines shared by many waiters, kept by one timer at a time (see {@link deadlines}). */
export interface Deadlines {
  /**
   * `self`, bounded: `orElse` if `self` has not finished `ms` milliseconds from now (it is then
   * interrupted), as `Effect.timeoutOrElse` does.
   */
  readonly timeout: <A, E, R, A2, E2, R2>(self: Effect.Effect<A, E, R>, ms: number, orElse: () => Effect.Effect<A2, E2, R2>) => Effect.Effect<A | A2, E | E2, R | R2>
}

/**
 * Time bounds for many effects in flight at once (a router's dials and handshakes), kept by one
 * timer fiber of `scope` at a time, armed for the earliest deadline. `Effect.timeoutOrElse` starts
 * a sleep of its own per bounded effect; under `TestClock` each sleep is an entry in one sorted
 * list of every sleeper of the runtime, inserted and removed in O(entries), which in a simulation
 * of many nodes cost more than the handshakes. Here a bound that ends first only marks its entry;
 * the timer, firing at the earliest deadline, wakes what is due and arms for the next.
 */
export const deadlines = (scope: Scope.Scope, clock: Clock.Clock): Deadlines => {
  // A binary min-heap on `at`.
  const heap: Array<Pending> = []
  const up = (i: number) => {
    const e = heap[i]!
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (heap[parent]!.at <= e.at) break
      heap[i] = heap[parent]!
      i = parent
    }
    heap[i] = e
  }
  const pop = (): Pending => {
    const top = heap[0]!
    const last = heap.pop()!
    if (heap.length > 0) {
      let i = 0
      while (true) {
        const l = 2 * i + 1
        if (l >= heap.length) break
        const c = l + 1 < heap.length && heap[l + 1]!.at < heap[l]!.at ? l + 1 : l
        if (heap[c]!.at >= last.at) break
        heap[i] = heap[c]!
        i = c
      }
      heap[i] = last
    }
    return top
  }
  const arm = earliest(scope, () => settle(clock.currentTimeMillisUnsafe()))
  /** Wakes what is due at `now`, then arms the timer for the earliest deadline left. */
  const settle = (now: number): Effect.Effect<void> => {
    while (heap.length > 0 && (heap[0]!.cancelled || heap[0]!.at <= now)) {
      const e = pop()
      if (!e.cancelled) Deferred.doneUnsafe(e.reached, Exit.void)
    }
    const next = heap[0]?.at
    return next === undefined ? Effect.void : arm(next, now)
  }
  const reached = (at: number): Effect.Effect<void> =>
    Effect.suspend(() => {
      const entry: Pending = { at, reached: Deferred.makeUnsafe<void>(), cancelled: false }
      heap.push(entry)
      up(heap.length - 1)
      return Effect.andThen(
        settle(clock.currentTimeMillisUnsafe()),
        Effect.onInterrupt(Deferred.await(entry.reached), () => Effect.sync(() => void (entry.cancelled = true)))
      )
    })
  return {
    timeout: (self, ms, orElse) =>
      Effect.suspend(() => Effect.raceFirst(self, Effect.andThen(reached(clock.currentTimeMillisUnsafe() + ms), Effect.suspend(orElse))))
  }
}

/**
 * Bounded waiting that works under both clocks. Under `TestClock` nothing advances time on its
 * own, so a wait for a message that never comes would hang; `within` drives the test clock forward
 * in small steps (yielding between them so the network makes progress) and fails once the virtual
 * budget is spent. Under the live clock it is a plain timeout.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"

/** A wait ran out of (virtual or real) time. */
export class WaitTimedOut extends Schema.TaggedError<WaitTimedOut>()("WaitTimedOut", {
  what: Schema.String,
  millis: Schema.Number,
  message: Schema.String
}) {}

type Adjustable = Clock.Clock & { readonly adjust: (d: Duration.Input) => Effect.Effect<void> }

const testClock: Effect.Effect<Adjustable | undefined> = Effect.withFiber((fiber) => {
  const clock = fiber.getRef(Clock.Clock)
  return Effect.succeed("adjust" in clock ? (clock as Adjustable) : undefined)
})

/** Virtual milliseconds advanced per step. */
const STEP_MS = 5
/** Scheduler yields between steps, so message hops complete before time moves. */
const YIELDS_PER_STEP = 16

/** Runs `effect`, failing with `WaitTimedOut` (naming `what`) after `duration`. */
export const within = <A, E, R>(duration: Duration.Input, what: string, effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | WaitTimedOut, R> =>
  Effect.gen(function* () {
    const millis = Duration.toMillis(Duration.fromInputUnsafe(duration))
    const timedOut = new WaitTimedOut({ what, millis, message: `timed out after ${millis} ms waiting for ${what}` })
    const clock = yield* testClock
    if (clock === undefined) {
      return yield* effect.pipe(Effect.timeoutOrElse({ duration: millis, orElse: () => Effect.fail(timedOut) }))
    }
    const driver = Effect.gen(function* () {
      for (let elapsed = 0; elapsed < millis; elapsed += STEP_MS) {
        for (let i = 0; i < YIELDS_PER_STEP; i++) yield* Effect.yieldNow
        yield* clock.adjust(STEP_MS)
      }
      for (let i = 0; i < YIELDS_PER_STEP; i++) yield* Effect.yieldNow
      return yield* Effect.fail(timedOut)
    })
    return yield* Effect.raceFirst(effect, driver)
  })

/** Lets virtual (or real) time pass, driving the test clock like {@link within}. */
export const settle = (duration: Duration.Input = 10): Effect.Effect<void> =>
  Effect.catchTag(within(duration, "settle", Effect.never), "WaitTimedOut", () => Effect.void)

/**
 * Polls `check` every `every` ms (virtual under `TestClock`) until it holds, failing with
 * `WaitTimedOut` naming `what` after `duration`. For state that has no event to wait on.
 */
export const eventually = <E, R>(duration: Duration.Input, what: string, check: Effect.Effect<boolean, E, R>, every: Duration.Input = 50): Effect.Effect<void, E | WaitTimedOut, R> =>
  within(duration, what, Effect.gen(function* () {
    while (!(yield* check)) yield* Effect.sleep(every)
  }))

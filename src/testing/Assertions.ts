/**
 * Assertions over channels and peer-update streams (docs/ARCHITECTURE.md#test-kit), bounded in (virtual) time so a
 * missing message fails fast instead of hanging. A stream is first turned into a {@link Probe}
 * that takes one item at a time, so nothing is consumed that an assertion did not ask for.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import type * as Scope from "effect/Scope"
import { isDeepStrictEqual } from "node:util"
import type * as NodeId from "../domain/NodeId.ts"
import type * as PeerUpdate from "../domain/PeerUpdate.ts"
import { settle, within, type WaitTimedOut } from "./Within.ts"

/** An assertion did not hold. */
export class AssertionFailed extends Schema.TaggedError<AssertionFailed>()("AssertionFailed", {
  message: Schema.String
}) {}

/** One-at-a-time access to a stream's items. */
export interface Probe<A> {
  /** The next item, waiting for it. */
  readonly take: Effect.Effect<A, Option.Option<unknown>>
  /** The next item if one is ready. */
  readonly poll: Effect.Effect<Option.Option<A>>
}

/** Drains `stream` into a buffer in the background (for the caller's scope) and reads it item by item. */
export const probe = Effect.fn("Assertions.probe")(function* <A, E>(stream: Stream.Stream<A, E>): Effect.fn.Return<Probe<A>, never, Scope.Scope> {
  const buffer = yield* Queue.unbounded<A, Option.Option<E>>()
  yield* Effect.forkScoped(
    Stream.runForEach(stream, (a) => Queue.offer(buffer, a)).pipe(
      // Any end counts, an interruption included (a stream over a shut-down queue ends with one):
      // otherwise `take` would wait out its whole budget and report a timeout, not the end.
      Effect.matchCauseEffect({
        onSuccess: () => Queue.fail(buffer, Option.none()),
        onFailure: (cause) => Queue.fail(buffer, Cause.findErrorOption(cause))
      })
    )
  )
  return { take: Queue.take(buffer), poll: Queue.poll(buffer) }
})

/** Default wait for something that should happen. */
export const DEFAULT_WAIT = 1000

const fail = (message: string) => Effect.fail(new AssertionFailed({ message }))

const next = <A>(p: Probe<A>, what: string, millis: number) =>
  within(millis, what, p.take).pipe(
    Effect.catchTag("WaitTimedOut", (e: WaitTimedOut) => fail(e.message)),
    Effect.catch((e) => (e instanceof AssertionFailed ? Effect.fail(e) : fail(`stream ended while waiting for ${what}`)))
  )

/** The next item equals `expected` (deep equality), within `millis`. */
export const receive = <A>(p: Probe<A>, expected: A, millis = DEFAULT_WAIT): Effect.Effect<A, AssertionFailed> =>
  Effect.flatMap(next(p, "a message", millis), (got) =>
    isDeepStrictEqual(got, expected) ? Effect.succeed(got) : fail(`expected ${show(expected)}, received ${show(got)}`))

/** The next `expected.length` items equal `expected` in any order, within `millis`. */
export const receiveUnordered = Effect.fn("Assertions.receiveUnordered")(function* <A>(p: Probe<A>, expected: ReadonlyArray<A>, millis = DEFAULT_WAIT): Effect.fn.Return<ReadonlyArray<A>, AssertionFailed> {
  const got: Array<A> = []
  for (let i = 0; i < expected.length; i++) got.push(yield* next(p, `message ${i + 1} of ${expected.length}`, millis))
  const remaining = [...expected]
  for (const g of got) {
    const i = remaining.findIndex((e) => isDeepStrictEqual(e, g))
    if (i < 0) return yield* fail(`unexpected ${show(g)}; expected ${show(expected)} in any order`)
    remaining.splice(i, 1)
  }
  return got
})

/** Nothing arrives within `millis` (default 10). */
export const empty = Effect.fn("Assertions.empty")(function* <A>(p: Probe<A>, millis = 10): Effect.fn.Return<void, AssertionFailed> {
  yield* settle(millis)
  const got = yield* p.poll
  if (Option.isSome(got)) return yield* fail(`expected nothing, received ${show(got.value)}`)
})

/** The next update is about `nodeId` with `status` (channels not compared). */
export const update = (p: Probe<PeerUpdate.PeerUpdate>, nodeId: NodeId.NodeId, status: PeerUpdate.PeerStatus, millis = DEFAULT_WAIT) =>
  Effect.flatMap(next(p, `${status} for ${nodeId}`, millis), (u) =>
    u.nodeId === nodeId && u.status === status ? Effect.succeed(u) : fail(`expected ${status} for ${nodeId}, got ${u.status} for ${u.nodeId}`))

/** The next updates are exactly these, in order. */
export const updates = (p: Probe<PeerUpdate.PeerUpdate>, expected: ReadonlyArray<readonly [NodeId.NodeId, PeerUpdate.PeerStatus]>, millis = DEFAULT_WAIT) =>
  Effect.forEach(expected, ([id, status]) => update(p, id, status, millis))

/** No update is pending. */
export const noUpdates = (p: Probe<PeerUpdate.PeerUpdate>) => empty(p, 0)

/** Waits for the first `up` about `nodeId` on a subscription stream, skipping other updates. */
export const firstUp = <E>(stream: Stream.Stream<PeerUpdate.PeerUpdate, E>, nodeId: NodeId.NodeId) =>
  Stream.runHead(Stream.filter(stream, (u) => u.nodeId === nodeId && u.status === "up"))

const show = (a: unknown): string => {
  try {
    return JSON.stringify(a, (_, v) => (typeof v === "bigint" ? `${v}n` : v instanceof Uint8Array ? Buffer.from(v).toString("hex") : v))
  } catch {
    return String(a)
  }
}

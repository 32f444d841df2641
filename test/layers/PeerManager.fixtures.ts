/**
 * Shared helpers for the PeerManager suites: node IDs, addresses, a manager over an in-memory
 * store, and a subscriber that records the updates it sees.
 */
import { Effect, Exit, Fiber, Stream, type Scope } from "effect"
import type * as NodeId from "../../src/domain/NodeId.ts"
import type * as PeerUpdate from "../../src/domain/PeerUpdate.ts"
import * as PeerManagerLayer from "../../src/layers/PeerManager.ts"
import * as PeerStoreMemory from "../../src/layers/PeerStoreMemory.ts"
import { zero, type OptionsInput, type PeerManager, type SubscriberLagged } from "../../src/services/PeerManager.ts"
import { self } from "../domain/peermanager/fixtures.ts"

// Node IDs and addresses of the original's test scenarios: one definition, shared with the pure-core tests.
export { a, b, c, d, e, mem, nodeId, self, tcp } from "../domain/peermanager/fixtures.ts"

export type Manager = PeerManager["Service"]

/** the original's "PM{…}": zero options plus `options`, over a fresh in-memory store. */
export const makePM = (options: OptionsInput = {}, selfId: NodeId.NodeId = self) =>
  PeerManagerLayer.make(selfId, { ...zero, ...options }).pipe(Effect.provide(PeerStoreMemory.layerMemory))

/**
 * Yields 20 times so forked fibers (subscribers, waiters) run as far as they can. It never moves
 * the clock: unlike `Within.settle(duration)`, which lets virtual time pass, a deadline that is
 * 1 ms away stays 1 ms away.
 */
export const yieldToFibers = Effect.gen(function* () {
  for (let i = 0; i < 20; i++) yield* Effect.yieldNow
})

/** A subscriber recording every update, and how its stream ended. */
export interface Recorder {
  readonly updates: Array<PeerUpdate.PeerUpdate>
  /** `status:nodeId-prefix` strings, for readable assertions. */
  readonly seen: () => Array<string>
  readonly fiber: Fiber.Fiber<void, SubscriberLagged>
}

/** Short form of an update: `"up:a"`. */
export const show = (u: PeerUpdate.PeerUpdate): string => `${u.status}:${u.nodeId.slice(0, 1)}`

/** Subscribes and consumes the stream in a forked fiber (owned by the current scope). */
export const record = (pm: Manager): Effect.Effect<Recorder, never, Scope.Scope> =>
  Effect.gen(function* () {
    const stream = yield* pm.subscribe
    const updates: Array<PeerUpdate.PeerUpdate> = []
    const fiber = yield* Effect.forkChild(Stream.runForEach(stream, (u) => Effect.sync(() => void updates.push(u))))
    yield* yieldToFibers
    return { updates, seen: () => updates.map(show), fiber }
  })

/** Whether a forked fiber is still running after everything runnable has run. */
export const isBlocked = <A, E>(fiber: Fiber.Fiber<A, E>) => Effect.map(yieldToFibers, () => fiber.pollUnsafe() === undefined)

/** The exit of a fiber that must have finished by now. */
export const finished = <A, E>(fiber: Fiber.Fiber<A, E>) =>
  Effect.map(yieldToFibers, () => {
    const exit = fiber.pollUnsafe()
    if (exit === undefined) throw new Error("fiber is still running")
    return exit
  })

/** The value of a fiber that must have succeeded by now. */
export const result = <A, E>(fiber: Fiber.Fiber<A, E>) =>
  Effect.map(finished(fiber), (exit) => {
    if (Exit.isFailure(exit)) throw new Error(`fiber failed: ${String(exit.cause)}`)
    return exit.value
  })

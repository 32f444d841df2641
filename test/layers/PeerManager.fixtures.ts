/**
 * Shared helpers for the PeerManager suites: node IDs, addresses, a manager over an in-memory
 * store, and a subscriber that records the updates it sees.
 */
import { Effect, Exit, Fiber, Stream, type Scope } from "effect"
import * as NodeAddress from "../../src/domain/NodeAddress.ts"
import * as NodeId from "../../src/domain/NodeId.ts"
import type * as PeerUpdate from "../../src/domain/PeerUpdate.ts"
import * as PeerManagerLayer from "../../src/layers/PeerManager.ts"
import * as PeerStoreMemory from "../../src/layers/PeerStoreMemory.ts"
import { zero, type OptionsInput, type PeerManager, type SubscriberLagged } from "../../src/services/PeerManager.ts"

/** A node ID made of 40 copies of one hex character. */
export const nodeId = (c: string): NodeId.NodeId => NodeId.unsafeDecode(c.repeat(40))

export const self = nodeId("0")
export const a = nodeId("a")
export const b = nodeId("b")
export const c = nodeId("c")
export const d = nodeId("d")
export const e = nodeId("e")

/** `memory:<id>`, the SPEC's default address of a peer. */
export const mem = (id: string): NodeAddress.NodeAddress => NodeAddress.unsafeParse(`memory:${id}`)

/** `tcp://<id>@host:port`. */
export const tcp = (id: string, host = "localhost", port = 26656): NodeAddress.NodeAddress =>
  NodeAddress.unsafeParse(`tcp://${id}@${host}:${port}`)

export type Manager = PeerManager["Service"]

/** SPEC's "PM{…}": zero options plus `options`, over a fresh in-memory store. */
export const makePM = (options: OptionsInput = {}, selfId: NodeId.NodeId = self) =>
  PeerManagerLayer.make(selfId, { ...zero, ...options }).pipe(Effect.provide(PeerStoreMemory.layerMemory))

/** Lets forked fibers (subscribers, waiters) run. */
export const settle = Effect.gen(function* () {
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
    yield* settle
    return { updates, seen: () => updates.map(show), fiber }
  })

/** Whether a forked fiber is still running after everything runnable has run. */
export const isBlocked = <A, E>(fiber: Fiber.Fiber<A, E>) => Effect.map(settle, () => fiber.pollUnsafe() === undefined)

/** The exit of a fiber that must have finished by now. */
export const finished = <A, E>(fiber: Fiber.Fiber<A, E>) =>
  Effect.map(settle, () => {
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

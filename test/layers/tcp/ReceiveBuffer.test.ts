/**
 * The MConnection's receive buffer: bounded, takers woken in the caller's tick, `offer` waiting
 * for room, and the two ways to close.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, Fiber } from "effect"
import { ReceiveBuffer } from "../../../src/layers/tcp/ReceiveBuffer.ts"

describe("ReceiveBuffer", () => {
  it.effect("refuses past its capacity, and hands items out in order", () =>
    Effect.gen(function* () {
      const b = new ReceiveBuffer<number, string>(2)
      assert.isTrue(b.add(1))
      assert.isTrue(b.add(2))
      assert.isFalse(b.add(3))
      assert.strictEqual(b.size, 2)
      assert.strictEqual(yield* b.take, 1)
      assert.isTrue(b.add(3))
      assert.strictEqual(yield* b.take, 2)
      assert.strictEqual(yield* b.take, 3)
      assert.strictEqual(b.size, 0)
    }))

  it.effect("wake resumes a waiting taker within the call, with no scheduler hop", () =>
    Effect.gen(function* () {
      const b = new ReceiveBuffer<number, string>(4)
      const got: Array<number> = []
      const taker = yield* Effect.forkChild(Effect.gen(function* () {
        while (true) got.push(yield* b.take)
      }))
      yield* Effect.yieldNow
      b.add(7)
      b.add(8)
      assert.deepStrictEqual(got, [], "add alone wakes nobody")
      b.wake()
      // Both items were taken before wake returned: the taker ran in this call.
      assert.deepStrictEqual(got, [7, 8])
      yield* Fiber.interrupt(taker)
    }))

  it.effect("awaitRoom waits while full and goes on once a take frees a slot; hasTaker says whether a wake would run someone", () =>
    Effect.gen(function* () {
      const b = new ReceiveBuffer<number, string>(1)
      assert.isTrue(b.add(1))
      const waiting = yield* Effect.forkChild(b.awaitRoom)
      yield* Effect.yieldNow
      assert.isUndefined(waiting.pollUnsafe())
      assert.isFalse(b.hasTaker)
      assert.strictEqual(yield* b.take, 1)
      yield* Fiber.join(waiting)
      const taker = yield* Effect.forkChild(b.take)
      yield* Effect.yieldNow
      assert.isTrue(b.hasTaker)
      b.add(2)
      b.wake()
      assert.strictEqual(yield* Fiber.join(taker), 2)
      assert.isFalse(b.hasTaker)
    }))

  it.effect("closed without drain: takers fail at once, buffered items are dropped; with drain they come first", () =>
    Effect.gen(function* () {
      const dropped = new ReceiveBuffer<number, string>(4)
      dropped.add(1)
      const waiting = new ReceiveBuffer<number, string>(4)
      const taker = yield* Effect.forkChild(waiting.take)
      yield* Effect.yieldNow
      waiting.close(() => Cause.fail("gone"), false)
      assert.deepStrictEqual(yield* Fiber.await(taker), Exit.fail("gone"))
      dropped.close(() => Cause.fail("gone"), false)
      assert.deepStrictEqual(yield* Effect.exit(dropped.take), Exit.fail("gone"))
      assert.isFalse(dropped.add(2))

      const drained = new ReceiveBuffer<number, string>(4)
      drained.add(1)
      drained.add(2)
      drained.close(() => Cause.fail("ended"), true)
      assert.strictEqual(yield* drained.take, 1)
      assert.strictEqual(yield* drained.take, 2)
      assert.deepStrictEqual(yield* Effect.exit(drained.take), Exit.fail("ended"))
    }))

  it.effect("closing releases a fiber waiting for room", () =>
    Effect.gen(function* () {
      const b = new ReceiveBuffer<number, string>(1)
      b.add(1)
      const waiting = yield* Effect.forkChild(b.awaitRoom)
      yield* Effect.yieldNow
      b.close(() => Cause.fail("gone"), false)
      yield* Fiber.join(waiting)
      assert.strictEqual(b.size, 0)
      assert.isFalse(b.add(2))
    }))
})

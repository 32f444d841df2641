// The byte budget of MConnection's send/recv rates and the e2e link proxy's bandwidth limits.
import { assert, describe, it } from "@effect/vitest"
import * as TokenBucket from "../../src/domain/TokenBucket.ts"

describe("TokenBucket", () => {
  it("lets a burst go at once, then paces at the rate; never holds more than the burst", () => {
    const b = TokenBucket.make(1000, 500)
    assert.strictEqual(b.delay(500, 0), 0)
    b.take(500, 0)
    assert.strictEqual(b.delay(100, 0), 100)
    assert.strictEqual(b.delay(100, 100), 0)
    b.take(100, 100)
    assert.strictEqual(b.delay(500, 10_000), 0, "never more than the burst")
    b.take(500, 10_000)
    assert.strictEqual(b.delay(1, 10_000), 1)
    assert.strictEqual(b.delay(2_000, 10_000), 500, "a request over the burst waits for a full bucket")
  })

  it("defaults the burst to one second of rate; tryTake takes only what the budget allows; take reports the debt", () => {
    const b = TokenBucket.make(1000)
    assert.isTrue(b.tryTake(1000, 0))
    assert.isFalse(b.tryTake(1, 0))
    assert.strictEqual(b.take(500, 0), 500, "500 bytes of debt last 500 ms")
    assert.strictEqual(b.delay(100, 500), 100)
  })
})

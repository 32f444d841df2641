/** Small helpers shared by the test files. */
import { assert } from "@effect/vitest"

/** The value `f` throws; fails the test when it returns normally. */
export const thrown = (f: () => unknown): unknown => {
  try {
    f()
  } catch (e) {
    return e
  }
  assert.fail("expected an error")
}

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

/** Splits `bytes` at the given (unsorted, possibly repeated) cut points, for random-chunking tests. */
export const split = (bytes: Uint8Array, cuts: ReadonlyArray<number>): Array<Uint8Array> => {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b)
  const chunks: Array<Uint8Array> = []
  let prev = 0
  for (const p of [...points, bytes.length]) {
    chunks.push(bytes.slice(prev, p))
    prev = p
  }
  return chunks
}

/**
 * Deterministic node keys for tests: `key(n)` is the key whose 32-byte seed is the byte `n`
 * repeated, so the same `n` gives the same node ID in every run and distinct `n` distinct IDs.
 *
 * @since 0.1.0
 */
import * as NodeKey from "../domain/NodeKey.ts"

/** The key seeded with 32 bytes of `n` (an integer 0..255; anything else would silently alias another key). */
export const key = (n: number): NodeKey.NodeKey => {
  if (!Number.isInteger(n) || n < 0 || n > 255) throw new RangeError(`Keys.key: seed byte ${n} is not an integer in 0..255`)
  return NodeKey.fromSeed(new Uint8Array(32).fill(n))
}

/**
 * A small seeded generator (mulberry32): the same seed gives the same sequence of numbers in
 * [0, 1), so simulations (link jitter and loss) and e2e runs (random faults) replay exactly.
 * Not for keys or anything an attacker may guess.
 *
 * @since 0.1.0
 */

/** A generator of numbers in [0, 1) from `seed` (any integer; taken as an unsigned 32-bit value). */
export const generator = (seed: number): (() => number) => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

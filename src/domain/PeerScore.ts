/**
 * Peer scores are int16 (docs/ARCHITECTURE.md#scores-and-ranking). Persistent peers score the maximum; other peers saturate one
 * below it, so persistent peers always rank first (the v0.36 fix, docs/ARCHITECTURE.md#fixed-problems-of-the-original).
 *
 * @since 0.1.0
 */

/** An integer from {@link MIN} to {@link PERSISTENT}. */
export type PeerScore = number

/** The score of every persistent peer. */
export const PERSISTENT: PeerScore = 32767
/** The highest score a non-persistent peer can reach. */
export const MAX_NOT_PERSISTENT: PeerScore = 32766
/** The lowest score. */
export const MIN: PeerScore = -32768

/** Clamps a computed score of a non-persistent peer into range. */
export const clamp = (n: number): PeerScore => Math.max(MIN, Math.min(MAX_NOT_PERSISTENT, Math.trunc(n)))

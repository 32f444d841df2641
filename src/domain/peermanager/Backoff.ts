/**
 * Retry delays after failed dials: exponential from `minRetryTime`, plus jitter, capped by
 * `maxRetryTime` (or `maxRetryTimePersistent` for persistent peers). Pure; the jitter comes in as a
 * number in [0, 1) so callers decide where randomness comes from.
 *
 * @since 0.1.0
 */
import type { Policy } from "./Policy.ts"

/** Persistent peers are retried even when `minRetryTime` is 0 (which disables retries of other peers). */
export const PERSISTENT_MIN_RETRY_MS = 1000

/**
 * Whole milliseconds to wait after the `failures`-th consecutive failure, or `undefined` for never.
 * `minRetryTime × 2^(failures-1) + jitter × retryTimeJitter`, capped. No failures: 0.
 */
export const retryDelay = (options: Policy, failures: number, persistent: boolean, jitter: number): number | undefined => {
  if (failures <= 0) return 0
  const min = options.minRetryTime > 0 ? options.minRetryTime : persistent ? PERSISTENT_MIN_RETRY_MS : 0
  if (min === 0) return undefined
  const cap = persistent && options.maxRetryTimePersistent > 0 ? options.maxRetryTimePersistent : options.maxRetryTime
  const exponential = min * 2 ** Math.min(failures - 1, 52)
  // Whole milliseconds: `Clock` time is integral, so a fractional deadline would never be reached
  // exactly and a waiter would wake, find the address still frozen, and sleep for less than 1 ms.
  const delay = Math.ceil(exponential + Math.max(0, Math.min(jitter, 1)) * options.retryTimeJitter)
  return cap > 0 ? Math.min(delay, cap) : delay
}

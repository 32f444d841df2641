/**
 * A token bucket over bytes, with the time passed in (so it is pure and `TestClock` drives it):
 * `tryTake(n, now)` lets `n` bytes pass if the budget allows (synchronous, for the send fast path),
 * `delay(n, now)` says how long to wait until it would (0: now), `take(n, now)` charges `n` (negative
 * gives back) and says how long the debt lasts. The burst is one second's worth of `rate` unless
 * given; a request larger than the burst waits for a full bucket.
 *
 * @since 0.1.0
 */

/** A bucket refilled at `rate` bytes per second. */
export interface TokenBucket {
  readonly tryTake: (n: number, now: number) => boolean
  readonly delay: (n: number, now: number) => number
  readonly take: (n: number, now: number) => number
}

/** A full bucket for `rate` bytes per second holding at most `burst` bytes (default: `rate`). */
export const make = (rate: number, burst = rate): TokenBucket => {
  let tokens = burst
  let last: number | undefined
  const refill = (now: number) => {
    if (last !== undefined) tokens = Math.min(burst, tokens + ((now - last) * rate) / 1000)
    last = now
  }
  return {
    tryTake: (n: number, now: number): boolean => {
      refill(now)
      if (tokens < Math.min(n, burst)) return false
      tokens -= n
      return true
    },
    delay: (n: number, now: number): number => {
      refill(now)
      const need = Math.min(n, burst)
      return tokens >= need ? 0 : Math.max(1, Math.ceil(((need - tokens) * 1000) / rate))
    },
    take: (n: number, now: number): number => {
      refill(now)
      tokens -= n
      return tokens >= 0 ? 0 : Math.ceil((-tokens * 1000) / rate)
    }
  }
}

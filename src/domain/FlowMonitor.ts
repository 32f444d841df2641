/**
 * Transfer statistics of one direction of a connection, in the shape of CometBFT's `flowrate`
 * monitor (what `/net_info` reports as `SendMonitor` and `RecvMonitor`): total bytes, rates over
 * 100 ms samples, an exponential moving average over about a second, the peak, and idle time.
 * The caller passes the time (epoch milliseconds from `Clock`), so it runs under `TestClock` and
 * costs two additions per `update` on the hot path.
 *
 * @since 0.1.0
 */

/** Length of one rate sample, ms (flowrate's default). */
export const SAMPLE_MS = 100
/** Averaging window of the current rate, ms (flowrate's default). */
export const WINDOW_MS = 1000

/** A snapshot of a monitor: rates in bytes per second, times in milliseconds. */
export interface FlowStatus {
  /** When the monitor started (epoch ms). */
  readonly start: number
  /** Bytes transferred. */
  readonly bytes: number
  /** Rate samples taken. */
  readonly samples: number
  /** Rate of the last complete sample. */
  readonly instRate: number
  /** Moving average of the sample rates over about {@link WINDOW_MS}. */
  readonly curRate: number
  /** `bytes` over the monitor's lifetime. */
  readonly avgRate: number
  /** Highest sample rate seen. */
  readonly peakRate: number
  /** Time since `start`. */
  readonly duration: number
  /** Time since the last transfer of at least one byte (since `start` if none). */
  readonly idle: number
  /** Whether anything moved within the last averaging window. */
  readonly active: boolean
}

/** A monitor; not thread-shared state, just numbers. */
export class FlowMonitor {
  readonly #start: number
  #bytes = 0
  #samples = 0
  #sampleStart: number
  #sampleBytes = 0
  #instRate = 0
  #curRate = 0
  #peakRate = 0
  #lastTransfer: number | undefined

  constructor(now: number) {
    this.#start = now
    this.#sampleStart = now
  }

  /** Records `n` bytes transferred at `now`. */
  update(n: number, now: number): void {
    if (now - this.#sampleStart >= SAMPLE_MS) this.#sample(now)
    this.#bytes += n
    this.#sampleBytes += n
    if (n > 0) this.#lastTransfer = now
  }

  /** Closes the sample that ended at or before `now`; a gap of idle samples counts as one at the rate it had. */
  #sample(now: number): void {
    const elapsed = now - this.#sampleStart
    const rate = (this.#sampleBytes * 1000) / elapsed
    this.#samples++
    this.#instRate = Math.round(rate)
    // The weight grows with the time the sample covers, so a long idle gap pulls the average to 0.
    const alpha = Math.min(1, elapsed / WINDOW_MS)
    this.#curRate = this.#samples === 1 ? rate : this.#curRate + (rate - this.#curRate) * alpha
    this.#peakRate = Math.max(this.#peakRate, this.#instRate)
    this.#sampleStart = now
    this.#sampleBytes = 0
  }

  /** The statistics at `now`. */
  status(now: number): FlowStatus {
    if (now - this.#sampleStart >= SAMPLE_MS) this.#sample(now)
    const duration = Math.max(0, now - this.#start)
    const idle = now - (this.#lastTransfer ?? this.#start)
    return {
      start: this.#start,
      bytes: this.#bytes,
      samples: this.#samples,
      instRate: this.#instRate,
      curRate: Math.round(this.#curRate),
      avgRate: duration > 0 ? Math.round((this.#bytes * 1000) / duration) : 0,
      peakRate: this.#peakRate,
      duration,
      idle,
      active: this.#lastTransfer !== undefined && idle < WINDOW_MS
    }
  }
}

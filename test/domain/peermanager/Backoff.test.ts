/**
 * Retry delays after failed dials (docs/ARCHITECTURE.md#retries-and-backoff, our exponential variant, §9.2.14): the arithmetic of
 * `Backoff.retryDelay` with the jitter passed in, and how `Dialing.retryTime` applies it.
 */
import { assert, describe, it } from "@effect/vitest"
import * as PeerRecord from "../../../src/domain/PeerRecord.ts"
import * as Backoff from "../../../src/domain/peermanager/Backoff.ts"
import * as Dialing from "../../../src/domain/peermanager/Dialing.ts"
import * as Peers from "../../../src/domain/peermanager/Peers.ts"
import type { OptionsInput } from "../../../src/services/PeerManager.ts"
import { a, mem, policy, stateWith } from "./fixtures.ts"

interface Case {
  readonly name: string
  readonly options: OptionsInput
  readonly failures: number
  readonly persistent?: boolean
  readonly jitter?: number
  readonly expected: number | undefined
}

const cases: ReadonlyArray<Case> = [
  { name: "no failures: no delay", options: { minRetryTime: 100 }, failures: 0, expected: 0 },
  { name: "no failures: no delay, even when retries are off", options: {}, failures: 0, expected: 0 },
  { name: "minRetryTime 0: an ordinary peer is never retried", options: {}, failures: 1, expected: undefined },
  { name: "minRetryTime 0: a persistent peer is retried after 1 s", options: {}, failures: 1, persistent: true, expected: Backoff.PERSISTENT_MIN_RETRY_MS },
  { name: "minRetryTime 0: a persistent peer's 1 s floor doubles too", options: {}, failures: 3, persistent: true, expected: 4000 },
  { name: "the first failure waits minRetryTime", options: { minRetryTime: 100 }, failures: 1, expected: 100 },
  { name: "the second failure waits twice as long", options: { minRetryTime: 100 }, failures: 2, expected: 200 },
  { name: "the fourth failure waits 2^3 × minRetryTime", options: { minRetryTime: 100 }, failures: 4, expected: 800 },
  { name: "maxRetryTime 0 leaves the delay uncapped", options: { minRetryTime: 100 }, failures: 10, expected: 51_200 },
  { name: "maxRetryTime caps an ordinary peer", options: { minRetryTime: 100, maxRetryTime: 500 }, failures: 4, expected: 500 },
  { name: "below the cap the cap changes nothing", options: { minRetryTime: 100, maxRetryTime: 500 }, failures: 3, expected: 400 },
  { name: "maxRetryTimePersistent caps a persistent peer", options: { minRetryTime: 100, maxRetryTime: 1000, maxRetryTimePersistent: 300 }, failures: 3, persistent: true, expected: 300 },
  { name: "maxRetryTimePersistent does not cap an ordinary peer", options: { minRetryTime: 100, maxRetryTime: 1000, maxRetryTimePersistent: 300 }, failures: 3, expected: 400 },
  { name: "a persistent peer falls back to maxRetryTime when maxRetryTimePersistent is 0", options: { minRetryTime: 100, maxRetryTime: 500, maxRetryTimePersistent: 0 }, failures: 4, persistent: true, expected: 500 },
  { name: "jitter adds its fraction of retryTimeJitter", options: { minRetryTime: 100, retryTimeJitter: 1000 }, failures: 1, jitter: 0.5, expected: 600 },
  { name: "jitter 0 adds nothing", options: { minRetryTime: 100, retryTimeJitter: 1000 }, failures: 2, jitter: 0, expected: 200 },
  { name: "a fractional delay is rounded up to a whole millisecond", options: { minRetryTime: 100, retryTimeJitter: 1000 }, failures: 1, jitter: 0.3333, expected: 434 },
  { name: "jitter above 1 counts as 1", options: { minRetryTime: 100, retryTimeJitter: 1000 }, failures: 1, jitter: 5, expected: 1100 },
  { name: "negative jitter counts as 0", options: { minRetryTime: 100, retryTimeJitter: 1000 }, failures: 1, jitter: -1, expected: 100 },
  { name: "the cap applies after the jitter", options: { minRetryTime: 100, maxRetryTime: 500, retryTimeJitter: 1000 }, failures: 1, jitter: 0.9, expected: 500 },
  { name: "the exponent stops growing at 2^52 (no Infinity after many failures)", options: { minRetryTime: 1 }, failures: 1000, expected: 2 ** 52 },
  { name: "a huge failure count is still capped", options: { minRetryTime: 100, maxRetryTime: 60_000 }, failures: 1_000_000, expected: 60_000 }
]

describe("Backoff.retryDelay", () => {
  for (const t of cases) {
    it(t.name, () => {
      assert.strictEqual(Backoff.retryDelay(policy(t.options), t.failures, t.persistent ?? false, t.jitter ?? 0), t.expected)
    })
  }

  it("grows monotonically with the failure count up to the cap", () => {
    const p = policy({ minRetryTime: 250, maxRetryTime: 30_000, retryTimeJitter: 5000 })
    const delays = Array.from({ length: 12 }, (_, i) => Backoff.retryDelay(p, i + 1, false, 0.5)!)
    assert.deepStrictEqual(delays, [2750, 3000, 3500, 4500, 6500, 10_500, 18_500, 30_000, 30_000, 30_000, 30_000, 30_000])
  })
})

describe("Dialing.retryTime", () => {
  const failed = (failures: number, at: number) =>
    PeerRecord.empty(a, { addresses: [{ ...PeerRecord.addressInfo(mem(a)), dialFailures: failures, lastDialFailure: at }] })

  it("an address that never failed may be dialed at once", () => {
    const state = stateWith({ minRetryTime: 100 })
    const peer = PeerRecord.empty(a, { addresses: [PeerRecord.addressInfo(mem(a))] })
    assert.strictEqual(Dialing.retryTime(state, peer, peer.addresses[0]!), 0)
  })

  it("a failure loaded from the store waits the delay without jitter (no sample survives a restart)", () => {
    const state = Peers.load(stateWith({ minRetryTime: 100, retryTimeJitter: 10_000 }), [failed(3, 5000)]).state
    const peer = state.peers.get(a)!
    assert.strictEqual(Dialing.retryTime(state, peer, peer.addresses[0]!), 5400)
  })

  it("times from the future (written while the clock was ahead) are loaded as now, and rewritten", () => {
    const HOUR = 3_600_000
    const now = 10_000
    const ahead = PeerRecord.empty(a, { lastConnected: now + HOUR, addresses: [{ ...PeerRecord.addressInfo(mem(a)), dialFailures: 3, lastDialFailure: now + HOUR, lastDialSuccess: now + HOUR - 1 }] })
    const out = Peers.load(stateWith({ minRetryTime: 100 }), [ahead], now)
    const peer = out.state.peers.get(a)!
    assert.deepStrictEqual([peer.lastConnected, peer.addresses[0]!.lastDialFailure, peer.addresses[0]!.lastDialSuccess], [now, now, now])
    // Retried after the backoff from now, not an hour later.
    assert.strictEqual(Dialing.retryTime(out.state, peer, peer.addresses[0]!), now + 400)
    assert.deepStrictEqual(out.persist.map((p) => p.id), [a])
    // A record from the past is kept as stored and not rewritten.
    const past = Peers.load(stateWith({ minRetryTime: 100 }), [failed(3, 5000)], now)
    assert.strictEqual(past.state.peers.get(a)!.addresses[0]!.lastDialFailure, 5000)
    assert.deepStrictEqual(past.persist, [])
  })

  it("a failure loaded from the store with retries off is never retried", () => {
    const state = Peers.load(stateWith(), [failed(1, 5000)]).state
    const peer = state.peers.get(a)!
    assert.strictEqual(Dialing.retryTime(state, peer, peer.addresses[0]!), Number.POSITIVE_INFINITY)
  })

  it("a failure recorded by dialFailed keeps its one jitter sample", () => {
    let state = Dialing.tryDialNext(Peers.load(stateWith({ minRetryTime: 100, retryTimeJitter: 1000 }), [PeerRecord.empty(a, { addresses: [PeerRecord.addressInfo(mem(a))] })]).state, 0).state
    state = Dialing.dialFailed(state, mem(a), 2000, 0.25).state
    const peer = state.peers.get(a)!
    assert.strictEqual(Dialing.retryTime(state, peer, peer.addresses[0]!), 2000 + 100 + 250)
    // Asking again does not re-sample: the deadline stays put.
    assert.strictEqual(Dialing.retryTime(state, peer, peer.addresses[0]!), 2350)
  })
})

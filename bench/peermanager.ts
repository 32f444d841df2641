/**
 * peermanager: the per-call cost of the PeerManager's decisions as its address book grows. Each
 * decision runs against 1,000 known peers with 200 connected (the baseline), then 10,000 known with
 * 2,000 connected; `ratio` is the large book's microseconds per call over the baseline's, so a
 * decision that does not walk the book stays near 1 (a linear one would be near 10).
 *
 * The books are alike at both sizes: peers with mutable scores from -3 to 3, one address each, a
 * third of them in retry backoff after failed dials (so a dial decision must skip frozen
 * candidates); the connected peers (half of them inbound) score 4 and rank first, so a dial
 * decision that walks the ranking passes all of them.
 *
 * - `peermanager-dialnext`: `Dialing.tryDialNext`, the pure core, 100 calls in a row (each marks a
 *   peer dialing, so each call sees the previous one's outcome, as the dial loop does);
 * - `peermanager-evictnext`: `Connections.tryEvictNext` over capacity (50 more connected than
 *   `maxConnected`), 40 calls in a row: each picks the worst-ranked counted peer not yet evicting;
 * - `peermanager-advertise`: `Advertise.advertise` of 100 addresses (the PEX answer);
 * - `peermanager-layer-dialnext`, `peermanager-layer-advertise`: the same through the
 *   `PeerManager` layer (lock, commit, gauges) over an in-memory store, under `TestClock`: what the
 *   router and PEX pay. Dials go in rounds of 50 (timed); each round's peers are then connected
 *   and disconnected (not timed), so the next round finds the same book.
 */
import { Effect, Layer, Random, Result } from "effect"
import { TestClock } from "effect/testing"
import * as NodeAddress from "../src/domain/NodeAddress.ts"
import * as NodeId from "../src/domain/NodeId.ts"
import * as PeerRecord from "../src/domain/PeerRecord.ts"
import * as Advertise from "../src/domain/peermanager/Advertise.ts"
import * as Connections from "../src/domain/peermanager/Connections.ts"
import * as Dialing from "../src/domain/peermanager/Dialing.ts"
import * as Peers from "../src/domain/peermanager/Peers.ts"
import * as State from "../src/domain/peermanager/State.ts"
import * as PeerManagerLayer from "../src/layers/PeerManager.ts"
import * as PeerStoreMemory from "../src/layers/PeerStoreMemory.ts"
import { decodeOptions, type OptionsInput } from "../src/services/PeerManager.ts"
import { PeerStore } from "../src/services/PeerStore.ts"

const NOW = 1_000_000
const self = NodeId.unsafeDecode("f".repeat(40))
const idOf = (i: number) => NodeId.unsafeDecode((i + 1).toString(16).padStart(40, "0"))
const addressOf = (i: number) =>
  NodeAddress.make({ protocol: "tcp", nodeId: idOf(i), hostname: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, port: 26656 })

interface Book {
  readonly known: number
  readonly connected: number
  readonly options: OptionsInput
  readonly records: ReadonlyArray<PeerRecord.PeerRecord>
  /** Indices of the connected peers, spread over the book. */
  readonly connectedIndices: ReadonlyArray<number>
}

const book = (known: number, connected: number): Book => {
  const step = Math.floor(known / connected)
  const records = Array.from({ length: known }, (_, i) => {
    const failures = i % 3 === 0 ? 1 + (i % 4) : 0
    return PeerRecord.empty(idOf(i), {
      // Connected peers rank first (they proved themselves), so a dial decision walks past them.
      mutableScore: i % step === 1 ? 4 : ((i * 5) % 7) - 3,
      addresses: [{ ...PeerRecord.addressInfo(addressOf(i)), dialFailures: failures, lastDialFailure: failures > 0 ? NOW - 10 : undefined }]
    })
  })
  const connectedIndices = Array.from({ length: connected }, (_, k) => k * step + 1)
  const options: OptionsInput = {
    maxConnected: connected + 200,
    maxOutgoingConnections: 0,
    maxConnectedUpgrade: 0,
    maxPeers: known + 100,
    minRetryTime: 60_000
  }
  return { known, connected, options, records, connectedIndices }
}

/** The pure state of a book: loaded, then its connected peers admitted (odd ones dialed, even ones accepted). */
const stateOf = (b: Book): State.State => {
  let state = Peers.load(State.empty(self, Result.getOrThrow(decodeOptions(b.options))), b.records).state
  for (const [k, i] of b.connectedIndices.entries()) {
    const out = k % 2 === 0 ? Connections.accepted(state, idOf(i), NOW) : Dialing.dialed(state, addressOf(i), NOW)
    if (out.value !== undefined) throw new Error(`could not connect ${i}: ${out.value.reason}`)
    state = out.state
  }
  return state
}

/** Microseconds per call: `run` makes `calls` calls; repeated until 0.5 s has passed (after a warm-up). */
const measure = (calls: number, run: () => void): number => {
  for (let i = 0; i < 3; i++) run()
  let rounds = 0
  const start = process.hrtime.bigint()
  let elapsed = 0
  while (elapsed < 5e8) {
    run()
    rounds++
    elapsed = Number(process.hrtime.bigint() - start)
  }
  return elapsed / 1000 / (rounds * calls)
}

const measureEffect = (calls: number, run: Effect.Effect<void>): Effect.Effect<number> =>
  Effect.gen(function* () {
    for (let i = 0; i < 3; i++) yield* run
    let rounds = 0
    const start = process.hrtime.bigint()
    let elapsed = 0
    while (elapsed < 5e8) {
      yield* run
      rounds++
      elapsed = Number(process.hrtime.bigint() - start)
    }
    return elapsed / 1000 / (rounds * calls)
  })

const core = (b: Book) => {
  const state = stateOf(b)
  const dialnext = measure(100, () => {
    let s = state
    for (let i = 0; i < 100; i++) {
      const out = Dialing.tryDialNext(s, NOW)
      if (out.value === undefined) throw new Error("nothing to dial")
      s = out.state
    }
  })
  // Over capacity: the same connections under a lower maxConnected (one untimed call settles it).
  const over = Connections.tryEvictNext(
    { ...state, options: Result.getOrThrow(decodeOptions({ ...b.options, maxConnected: b.connected - 50 })) },
    NOW
  ).state
  const evictnext = measure(40, () => {
    let s = over
    for (let i = 0; i < 40; i++) {
      const out = Connections.tryEvictNext(s, NOW)
      if (out.value === undefined) throw new Error("nothing to evict")
      s = out.state
    }
  })
  let seed = 1
  const random = () => (seed = (seed * 16807) % 2147483647) / 2147483647
  const requester = idOf(b.connectedIndices[0]!)
  const advertise = measure(1, () => {
    if (Advertise.advertise(state, requester, 100, random, NOW).length !== 100) throw new Error("short answer")
  })
  return { dialnext, evictnext, advertise }
}

const layer = (b: Book) =>
  Effect.scoped(Effect.gen(function* () {
    yield* TestClock.setTime(NOW)
    const rows = new Map(b.records.map((r) => [r.id, PeerRecord.encode(r)] as const))
    const store = yield* PeerStoreMemory.makeMemory(rows)
    const pm = yield* PeerManagerLayer.make(self, { ...b.options, disconnectCooldownPeriod: 1 }).pipe(Effect.provide(Layer.succeed(PeerStore, store)))
    for (const [k, i] of b.connectedIndices.entries()) {
      if (k % 2 === 0) yield* pm.accepted(idOf(i))
      else yield* pm.dialed(addressOf(i))
    }
    // Rounds of 50 dials (timed), each then connected and disconnected (not timed) so that every
    // round starts from the same book once the 1 ms cooldown is over.
    const dialed: Array<NodeAddress.NodeAddress> = []
    let calls = 0
    let elapsed = 0
    for (let round = 0; round < 3 || elapsed < 5e8; round++) {
      const start = process.hrtime.bigint()
      for (let i = 0; i < 50; i++) {
        const address = yield* pm.tryDialNext
        if (address === undefined) throw new Error("nothing to dial")
        dialed.push(address)
      }
      if (round >= 3) {
        elapsed += Number(process.hrtime.bigint() - start)
        calls += 50
      }
      for (const address of dialed) yield* pm.dialed(address)
      for (const address of dialed) yield* pm.disconnected(address.nodeId as NodeId.NodeId)
      dialed.length = 0
      yield* TestClock.adjust(2)
    }
    const dialnext = elapsed / 1000 / calls
    const requester = idOf(b.connectedIndices[0]!)
    const advertise = yield* measureEffect(1, Effect.asVoid(pm.advertise(requester, 100))).pipe(Random.withSeed("bench"))
    return { dialnext, advertise }
  })).pipe(Effect.provide(TestClock.layer()))

const main = Effect.gen(function* () {
  const small = book(1_000, 200)
  const large = book(10_000, 2_000)
  const base = core(small)
  const big = core(large)
  const baseLayer = yield* layer(small)
  const bigLayer = yield* layer(large)
  const line = (name: string, us: number, baseline: number) =>
    console.log(JSON.stringify({
      name,
      known: large.known,
      connected: large.connected,
      us_per_call: +us.toFixed(2),
      baseline_known: small.known,
      baseline_connected: small.connected,
      baseline: +baseline.toFixed(2),
      ratio: +(us / baseline).toFixed(2)
    }))
  line("peermanager-dialnext", big.dialnext, base.dialnext)
  line("peermanager-evictnext", big.evictnext, base.evictnext)
  line("peermanager-advertise", big.advertise, base.advertise)
  line("peermanager-layer-dialnext", bigLayer.dialnext, baseLayer.dialnext)
  line("peermanager-layer-advertise", bigLayer.advertise, baseLayer.advertise)
})

Effect.runPromise(main).catch((e) => {
  console.error(e)
  process.exit(1)
})

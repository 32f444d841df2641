/**
 * PeerManager options and construction (docs/ARCHITECTURE.md#options, scenarios 19–26), and `decodeOptions` errors
 * naming each option.
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Layer, Result } from "effect"
import * as PeerRecord from "../../src/domain/PeerRecord.ts"
import * as PeerManagerLayer from "../../src/layers/PeerManager.ts"
import * as PeerStoreMemory from "../../src/layers/PeerStoreMemory.ts"
import * as NodeIdentity from "../../src/layers/NodeIdentity.ts"
import { PeerManager, decodeOptions, defaults, zero, type OptionsInput } from "../../src/services/PeerManager.ts"
import { PeerStore, PeerStoreError } from "../../src/services/PeerStore.ts"
import * as TransportSuite from "../../src/testing/TransportSuite.ts"
import { a, b, c, d, makePM, mem, self, tcp } from "./PeerManager.fixtures.ts"

/** The option an invalid input is rejected for. */
const rejected = (input: unknown): string => {
  const r = decodeOptions(input)
  if (Result.isSuccess(r)) throw new Error(`expected ${JSON.stringify(input)} to be rejected`)
  assert.strictEqual(r.failure._tag, "InvalidPeerManagerOptions")
  assert.include(r.failure.message, r.failure.option)
  return r.failure.option
}

const valid = (input: OptionsInput) => {
  const r = decodeOptions(input)
  if (Result.isFailure(r)) throw new Error(`expected valid options, got ${r.failure.message}`)
  return r.success
}

/** A manager over a store given as raw rows (node ID -> encoded record), so tests can reopen it. */
const openPM = (rows: Map<string, Uint8Array>, options: OptionsInput, selfId = self) =>
  PeerManagerLayer.make(selfId, { ...zero, ...options }).pipe(Effect.provideServiceEffect(PeerStore, PeerStoreMemory.makeMemory(rows)))

const scoresOf = (pm: PeerManager["Service"]) => Effect.map(pm.scores, (m) => Object.fromEntries([...m].map(([id, s]) => [id.slice(0, 1), s])))

describe("PeerManager options", () => {
  it("19. zero options are valid and switch every limit, delay and cap off", () => {
    const o = valid(zero)
    assert.deepStrictEqual(
      [o.maxPeers, o.maxConnected, o.maxOutgoingConnections, o.maxConnectedUpgrade, o.minRetryTime, o.maxRetryTime, o.maxRetryTimePersistent, o.retryTimeJitter, o.disconnectCooldownPeriod],
      [0, 0, 0, 0, 0, 0, 0, 0, 0]
    )
  })

  it("empty options get the production defaults (maxPeers 4 + 4 × maxConnected, durations in ms)", () => {
    const o = valid({})
    assert.strictEqual(o.maxConnected, defaults.maxConnected)
    assert.strictEqual(o.maxPeers, 4 + 4 * 64)
    assert.strictEqual(o.maxOutgoingConnections, 12)
    assert.strictEqual(o.maxConnectedUpgrade, 4)
    assert.strictEqual(o.maxAddressesPerPeer, 16)
    assert.deepStrictEqual([o.minRetryTime, o.maxRetryTime, o.maxRetryTimePersistent, o.retryTimeJitter, o.disconnectCooldownPeriod], [250, 1_800_000, 300_000, 5000, 2000])
    assert.strictEqual(o.subscriberBufferSize, 1024)
    // maxOutgoingConnections defaults to at most maxConnected; maxPeers follows maxConnected.
    assert.strictEqual(valid({ maxConnected: 5 }).maxOutgoingConnections, 5)
    assert.strictEqual(valid({ maxConnected: 5 }).maxPeers, 24)
    assert.strictEqual(valid({ maxConnected: 0 }).maxPeers, 0)
  })

  it("durations are milliseconds or text", () => {
    const o = valid({ ...zero, minRetryTime: "2 seconds", maxRetryTime: 5000, disconnectCooldownPeriod: "1500 millis" })
    assert.deepStrictEqual([o.minRetryTime, o.maxRetryTime, o.disconnectCooldownPeriod], [2000, 5000, 1500])
  })

  it("zero and negative fixed scores are dropped; persistent duplicates count once", () => {
    const o = valid({ peerScores: { [a]: 0, [b]: 5, [c]: -3 }, persistentPeers: [a, a, b], maxConnected: 2 })
    assert.deepStrictEqual([...o.peerScores], [[b, 5], [c, -3]])
    assert.deepStrictEqual([...o.persistentPeers], [a, b])
  })

  it("20. an invalid or uppercase ID in persistentPeers or privatePeers is rejected", () => {
    assert.strictEqual(rejected({ persistentPeers: ["foo"] }), "persistentPeers")
    assert.strictEqual(rejected({ persistentPeers: [a.toUpperCase()] }), "persistentPeers")
    assert.strictEqual(rejected({ persistentPeers: [""] }), "persistentPeers")
    assert.strictEqual(rejected({ privatePeers: ["zz"] }), "privatePeers")
    assert.strictEqual(rejected({ privatePeers: [b.toUpperCase()] }), "privatePeers")
  })

  it("21. three persistent peers fit maxConnected 3 but not 2, even with maxConnectedUpgrade 2", () => {
    valid({ ...zero, persistentPeers: [a, b, c], maxConnected: 3 })
    assert.strictEqual(rejected({ ...zero, persistentPeers: [a, b, c], maxConnected: 2 }), "persistentPeers")
    assert.strictEqual(rejected({ ...zero, persistentPeers: [a, b, c], maxConnected: 2, maxConnectedUpgrade: 2 }), "persistentPeers")
    // Unlimited connections admit any number of persistent peers.
    valid({ ...zero, persistentPeers: [a, b, c, d] })
  })

  it("22. maxPeers needs maxConnected > 0 and room for maxConnected + maxConnectedUpgrade", () => {
    assert.strictEqual(rejected({ ...zero, maxPeers: 3, maxConnected: 0 }), "maxPeers")
    assert.strictEqual(rejected({ ...zero, maxPeers: 2, maxConnected: 2, maxConnectedUpgrade: 1 }), "maxPeers")
    valid({ ...zero, maxPeers: 3, maxConnected: 2, maxConnectedUpgrade: 1 })
  })

  it("23. retry caps need 0 < minRetryTime <= cap, for maxRetryTime and maxRetryTimePersistent alike", () => {
    assert.strictEqual(rejected({ ...zero, minRetryTime: "7 seconds", maxRetryTime: "5 seconds" }), "maxRetryTime")
    valid({ ...zero, minRetryTime: "5 seconds", maxRetryTime: "5 seconds" })
    assert.strictEqual(rejected({ ...zero, maxRetryTime: "5 seconds" }), "maxRetryTime")
    assert.strictEqual(rejected({ ...zero, minRetryTime: 7000, maxRetryTimePersistent: 5000 }), "maxRetryTimePersistent")
    valid({ ...zero, minRetryTime: 5000, maxRetryTimePersistent: 5000 })
    assert.strictEqual(rejected({ ...zero, maxRetryTimePersistent: 5000 }), "maxRetryTimePersistent")
  })

  it("maxOutgoingConnections may not exceed a set maxConnected", () => {
    assert.strictEqual(rejected({ ...zero, maxConnected: 2, maxOutgoingConnections: 3 }), "maxOutgoingConnections")
    valid({ ...zero, maxConnected: 2, maxOutgoingConnections: 2 })
    // Deliberate: with unlimited connections an outgoing cap is still meaningful (the original rejects it).
    valid({ ...zero, maxOutgoingConnections: 3 })
  })

  it("every malformed option is rejected with InvalidPeerManagerOptions naming it", () => {
    const cases: Array<[string, unknown]> = [
      ["maxPeers", -1],
      ["maxPeers", "3"],
      ["maxConnected", 1.5],
      ["maxConnected", 70_000],
      ["maxOutgoingConnections", -1],
      ["maxConnectedUpgrade", 1e6],
      ["maxAddressesPerPeer", 0],
      ["maxAddressesPerPeer", 1025],
      ["minRetryTime", -5],
      ["minRetryTime", "soon"],
      ["maxRetryTime", Number.POSITIVE_INFINITY],
      ["maxRetryTimePersistent", "Infinity"],
      ["retryTimeJitter", {}],
      ["disconnectCooldownPeriod", Number.NaN],
      ["subscriberBufferSize", 0],
      ["subscriberBufferSize", 2.5],
      ["persistentPeers", "a"],
      ["persistentPeers", [5]],
      ["privatePeers", null],
      ["peerScores", { [a]: 1.5 }],
      ["peerScores", { [a]: 40_000 }],
      ["peerScores", { [a]: -40_000 }],
      ["peerScores", { xyz: 1 }],
      ["peerScores", { [a.toUpperCase()]: 1 }],
      ["selfAddress", "bad"],
      ["selfAddress", 5]
    ]
    for (const [option, value] of cases) {
      assert.strictEqual(rejected({ ...zero, [option]: value }), option, `${option} = ${String(value)}`)
    }
  })

  it("input that is not an object is rejected as a whole", () => {
    assert.strictEqual(rejected(null), "options")
    assert.strictEqual(rejected(5), "options")
  })

  it("selfAddress is parsed; an empty one means none", () => {
    assert.strictEqual(valid({ selfAddress: `tcp://${self}@[2001:db8::1]:26657` }).selfAddress?.hostname, "2001:db8::1")
    assert.isUndefined(valid({ selfAddress: "" }).selfAddress)
  })
})

describe("PeerManager construction", () => {
  it.effect("24. make fails on invalid options with InvalidPeerManagerOptions", () =>
    Effect.gen(function* () {
      const err = yield* Effect.flip(makePM({ maxPeers: 3 }))
      assert.strictEqual(err._tag, "InvalidPeerManagerOptions")
      assert.strictEqual(err._tag === "InvalidPeerManagerOptions" && err.option, "maxPeers")
    }))

  it.effect("24. make fails on an empty, short or uppercase self ID with InvalidSelfId", () =>
    Effect.gen(function* () {
      for (const id of ["", "abc", a.toUpperCase()]) {
        const err = yield* Effect.flip(makePM({}, id as typeof self))
        assert.strictEqual(err._tag, "InvalidSelfId")
      }
    }))

  it.effect("24. make fails with PeerStoreError when the store cannot be loaded", () =>
    Effect.gen(function* () {
      const broken = Layer.succeed(PeerStore, PeerStore.of({
        load: Effect.fail(new PeerStoreError({ path: "broken", operation: "load", message: "disk on fire" })),
        put: () => Effect.void,
        remove: () => Effect.void,
        loadBans: Effect.succeed([]),
        putBan: () => Effect.void,
        removeBan: () => Effect.void
      }))
      const err = yield* Effect.flip(PeerManagerLayer.make(self, zero).pipe(Effect.provide(broken)))
      assert.strictEqual(err._tag, "PeerStoreError")
      assert.strictEqual(err._tag === "PeerStoreError" && err.operation, "load")
    }))

  it.effect("layer builds the manager of the node NodeIdentity names", () =>
    Effect.gen(function* () {
      const key = TransportSuite.key(1)
      const context = yield* Layer.build(
        PeerManagerLayer.layer(zero).pipe(Layer.provide(PeerStoreMemory.layerMemory), Layer.provide(NodeIdentity.layer(key)))
      )
      const pm = Context.get(context, PeerManager)
      const err = yield* Effect.flip(pm.add(mem(key.nodeId)))
      assert.strictEqual(err._tag, "InvalidPeerAddress")
      assert.isTrue(yield* pm.add(mem(a)))
    }))

  it.effect("25. persistent peers and fixed scores come from the options; stored peers survive a reopen", () =>
    Effect.gen(function* () {
      const rows = new Map<string, Uint8Array>()
      yield* Effect.scoped(Effect.gen(function* () {
        const pm = yield* openPM(rows, { persistentPeers: [a], peerScores: { [b]: 1 } })
        for (const id of [a, b, c]) {
          assert.isTrue(yield* pm.add(mem(id)))
          assert.isTrue(yield* pm.add(tcp(id)))
        }
        assert.deepStrictEqual(yield* scoresOf(pm), { a: 32767, b: 1, c: 0 })
      }))
      yield* Effect.scoped(Effect.gen(function* () {
        const pm = yield* openPM(rows, { persistentPeers: [b], peerScores: { [c]: 1 } })
        for (const id of [a, b, c]) assert.deepStrictEqual(yield* pm.addresses(id), [mem(id), tcp(id)])
        assert.deepStrictEqual(yield* scoresOf(pm), { a: 0, b: 32767, c: 1 })
        const peers = yield* pm.peers
        assert.deepStrictEqual(peers.map((p) => [p.nodeId, p.persistent]), [[b, true], [c, false], [a, false]])
      }))
      // The rows whose persistent flag changed were rewritten.
      assert.isFalse(Result.getOrThrow(PeerRecord.decode(rows.get(a)!)).persistent)
      assert.isTrue(Result.getOrThrow(PeerRecord.decode(rows.get(b)!)).persistent)
    }))

  it.effect("26. reopening a store with a stored peer's ID as self drops that peer, from memory and from the store", () =>
    Effect.gen(function* () {
      const rows = new Map<string, Uint8Array>()
      yield* Effect.scoped(Effect.gen(function* () {
        const pm = yield* openPM(rows, {})
        yield* pm.add(mem(a))
        yield* pm.add(mem(b))
      }))
      yield* Effect.scoped(Effect.gen(function* () {
        const pm = yield* openPM(rows, {}, a)
        assert.deepStrictEqual((yield* pm.peers).map((p) => p.nodeId), [b])
      }))
      assert.deepStrictEqual([...rows.keys()], [b])
    }))

  it.effect("loading prunes a store that holds more than maxPeers, keeping persistent and better peers", () =>
    Effect.gen(function* () {
      const rows = new Map<string, Uint8Array>()
      yield* Effect.scoped(Effect.gen(function* () {
        const pm = yield* openPM(rows, { peerScores: { [d]: 5 } })
        for (const id of [a, b, c, d]) yield* pm.add(mem(id))
      }))
      yield* Effect.scoped(Effect.gen(function* () {
        const pm = yield* openPM(rows, { persistentPeers: [c], peerScores: { [d]: 5 }, maxPeers: 2, maxConnected: 1 })
        assert.deepStrictEqual((yield* pm.peers).map((p) => p.nodeId), [c, d])
      }))
      assert.deepStrictEqual([...rows.keys()].sort(), [c, d])
    }))
})

/**
 * PeerManager: add, dialing and admitting connections (SPEC §8.3–§8.5, scenarios 27–60), against
 * our deliberate differences from the Go original (exponential backoff, in-flight dials counting
 * toward maxOutgoingConnections, inactive peers not dialed, `add` returning false when pruned).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Random } from "effect"
import { TestClock } from "effect/testing"
import * as NodeAddress from "../../src/domain/NodeAddress.ts"
import type * as NodeId from "../../src/domain/NodeId.ts"
import { a, b, c, d, e, isBlocked, makePM, mem, result, self, tcp, type Manager } from "./PeerManager.fixtures.ts"

const peerIds = (pm: Manager) => Effect.map(pm.peers, (ps) => ps.map((p) => p.nodeId))

/** `tryDialNext` must dispense exactly `expected`. */
const dispenses = (pm: Manager, expected: NodeAddress.NodeAddress) =>
  Effect.map(pm.tryDialNext, (got) => {
    assert.isDefined(got, `expected ${NodeAddress.format(expected)} to be dispensed, got nothing`)
    assert.isTrue(got !== undefined && NodeAddress.format(got) === NodeAddress.format(expected), `expected ${NodeAddress.format(expected)}, got ${got && NodeAddress.format(got)}`)
  })

const dispensesNothing = (pm: Manager) =>
  Effect.map(pm.tryDialNext, (got) => assert.isUndefined(got, `expected nothing, got ${got && NodeAddress.format(got)}`))

/** Adds `memory:<id>` (must be new), dispenses it and reports the dial as successful. */
const dialIn = (pm: Manager, id: NodeId.NodeId) =>
  Effect.gen(function* () {
    assert.isTrue(yield* pm.add(mem(id)))
    yield* dispenses(pm, mem(id))
    yield* pm.dialed(mem(id))
  })

/** The `reason` of a `ConnectionRejected` failure. */
const rejection = <A, E extends { readonly _tag: string }>(effect: Effect.Effect<A, E>) =>
  Effect.map(Effect.flip(effect), (err) => {
    assert.strictEqual(err._tag, "ConnectionRejected")
    return (err as unknown as { readonly reason: string }).reason
  })

/** Forks `dialNext`. */
const forkDialNext = (pm: Manager) => Effect.forkChild(pm.dialNext)

describe("PeerManager.add (SPEC §8.3)", () => {
  it.effect("27. new addresses are added, a known address is not", () =>
    Effect.gen(function* () {
      const pm = yield* makePM({ persistentPeers: [a, c], maxPeers: 2, maxConnected: 2 })
      assert.isTrue(yield* pm.add(mem(a)))
      assert.isTrue(yield* pm.add(tcp(a)))
      assert.isTrue(yield* pm.add(mem(b)))
      assert.isFalse(yield* pm.add(mem(a)))
      assert.deepStrictEqual(yield* pm.addresses(a), [mem(a), tcp(a)])
    }))

  it.effect("28. adding a persistent peer to a full store prunes the lowest-scored peer", () =>
    Effect.gen(function* () {
      const pm = yield* makePM({ persistentPeers: [a, c], maxPeers: 2, maxConnected: 2 })
      yield* pm.add(mem(a))
      yield* pm.add(tcp(a))
      yield* pm.add(mem(b))
      assert.isTrue(yield* pm.add(mem(c)))
      assert.deepStrictEqual(yield* peerIds(pm), [a, c])
      assert.deepStrictEqual(yield* pm.addresses(b), [])
    }))

  it.effect("add returns false when the new peer ranks lowest of a full store and is pruned at once", () =>
    Effect.gen(function* () {
      const pm = yield* makePM({ maxPeers: 2, maxConnected: 1, peerScores: { [a]: 2, [b]: 1 } })
      assert.isTrue(yield* pm.add(mem(a)))
      assert.isTrue(yield* pm.add(mem(b)))
      assert.isFalse(yield* pm.add(mem(c)))
      assert.deepStrictEqual(yield* peerIds(pm), [a, b])
      // A better peer displaces the worst one.
      const pm2 = yield* makePM({ maxPeers: 2, maxConnected: 1, peerScores: { [c]: 5 } })
      yield* pm2.add(mem(a))
      yield* pm2.add(mem(b))
      assert.isTrue(yield* pm2.add(mem(c)))
      assert.deepStrictEqual(yield* peerIds(pm2), [c, a])
    }))

  it.effect("pruning never removes a dialing or connected peer, even to keep a better one", () =>
    Effect.gen(function* () {
      const pm = yield* makePM({ maxPeers: 2, maxConnected: 1, maxConnectedUpgrade: 1, peerScores: { [b]: 1, [c]: 3, [d]: 4 } })
      yield* dialIn(pm, a) // connected
      assert.isTrue(yield* pm.add(mem(b)))
      yield* dispenses(pm, mem(b)) // dialing, as an upgrade of a
      assert.isFalse(yield* pm.add(mem(c))) // both others are exempt, so the new peer goes
      assert.deepStrictEqual(yield* peerIds(pm), [b, a])
      yield* pm.dialFailed(mem(b))
      assert.isTrue(yield* pm.add(mem(d))) // now b can go
      assert.deepStrictEqual(yield* peerIds(pm), [d, a])
    }))

  it.effect("add returns false at maxAddressesPerPeer", () =>
    Effect.gen(function* () {
      const pm = yield* makePM({ maxAddressesPerPeer: 2 })
      assert.isTrue(yield* pm.add(mem(a)))
      assert.isTrue(yield* pm.add(tcp(a)))
      assert.isFalse(yield* pm.add(tcp(a, "10.0.0.1")))
      assert.deepStrictEqual(yield* pm.addresses(a), [mem(a), tcp(a)])
    }))

  it.effect("29. an invalid address or our own fails with InvalidPeerAddress", () =>
    Effect.gen(function* () {
      const pm = yield* makePM()
      const invalid = [
        NodeAddress.make({ path: "foo" }),
        NodeAddress.make({ protocol: "memory" }),
        NodeAddress.make({ protocol: "memory", nodeId: "xyz" }),
        NodeAddress.make({ protocol: "tcp", nodeId: a, port: 80 }),
        mem(self),
        tcp(self)
      ]
      for (const address of invalid) {
        const err = yield* Effect.flip(pm.add(address))
        assert.strictEqual(err._tag, "InvalidPeerAddress")
        assert.strictEqual(err._tag === "InvalidPeerAddress" && err.address, NodeAddress.format(address))
      }
      assert.deepStrictEqual(yield* pm.peers, [])
    }))

  it.effect("30. a new address for an inactive peer is ignored", () =>
    Effect.gen(function* () {
      const pm = yield* makePM()
      yield* pm.add(mem(a))
      yield* pm.inactivate(a)
      assert.isFalse(yield* pm.add(tcp(a)))
      assert.deepStrictEqual(yield* pm.addresses(a), [mem(a)])
      assert.isTrue((yield* pm.peers)[0]!.inactive)
      // inactivate does not create unknown peers
      yield* pm.inactivate(b)
      assert.deepStrictEqual(yield* peerIds(pm), [a])
    }))

  it.effect("inactive peers are not dialed until they connect to us", () =>
    Effect.gen(function* () {
      const pm = yield* makePM()
      yield* pm.add(mem(a))
      yield* pm.inactivate(a)
      yield* dispensesNothing(pm)
      yield* pm.accepted(a)
      assert.isFalse((yield* pm.peers)[0]!.inactive)
      yield* pm.disconnected(a)
      yield* dispenses(pm, mem(a))
    }))
})

describe("PeerManager.dialNext / tryDialNext (SPEC §8.4)", () => {
  it.effect("31. dialNext returns an added peer, then waits while nothing is dialable", () =>
    Effect.gen(function* () {
      const pm = yield* makePM()
      yield* pm.add(mem(a))
      assert.deepStrictEqual(yield* pm.dialNext, mem(a))
      const waiting = yield* Effect.forkChild(Effect.timeout(pm.dialNext, "100 millis"))
      yield* TestClock.adjust("100 millis")
      const err = yield* Effect.flip(Fiber.join(waiting))
      assert.strictEqual(err._tag, "TimeoutError")
    }))

  it.effect("32. dialNext waits until the retry backoff has elapsed: 100, 200, 400 ms, then the 500 ms cap", () =>
    Effect.gen(function* () {
      const pm = yield* makePM({ minRetryTime: 100, maxRetryTime: 500 })
      yield* pm.add(mem(a))
      assert.deepStrictEqual(yield* pm.dialNext, mem(a))
      for (const delay of [100, 200, 400, 500, 500, 500]) {
        yield* pm.dialFailed(mem(a))
        const waiting = yield* forkDialNext(pm)
        yield* TestClock.adjust(delay - 1)
        assert.isTrue(yield* isBlocked(waiting), `still backing off ${delay - 1} ms into a ${delay} ms delay`)
        yield* TestClock.adjust(1)
        assert.deepStrictEqual(yield* result(waiting), mem(a))
      }
    }))

  it.effect("each failure lowers the score by one; a successful dial of that address restores it (81)", () =>
    Effect.gen(function* () {
      const pm = yield* makePM({ minRetryTime: 100 })
      yield* pm.add(mem(a))
      for (const expected of [-1, -2]) {
        yield* pm.dialNext
        yield* pm.dialFailed(mem(a))
        assert.strictEqual((yield* pm.scores).get(a), expected)
        yield* TestClock.adjust("1 second")
      }
      yield* pm.dialNext
      yield* pm.dialed(mem(a))
      assert.strictEqual((yield* pm.scores).get(a), 0)
    }))

  it.effect("jitter is sampled once per failure and stays within [delay, delay + retryTimeJitter)", () =>
    Effect.gen(function* () {
      for (const seed of ["one", "two", "three"]) {
        const pm = yield* makePM({ minRetryTime: 100, retryTimeJitter: 1000 })
        yield* pm.add(mem(a))
        yield* pm.tryDialNext
        yield* pm.dialFailed(mem(a)).pipe(Random.withSeed(seed))
        const jitter = yield* Random.next.pipe(Random.withSeed(seed))
        const due = 100 + jitter * 1000
        const waiting = yield* forkDialNext(pm)
        yield* TestClock.adjust(Math.ceil(due) - 1)
        // Re-evaluating the delay does not re-sample it: still not dialable just before it is due.
        yield* pm.tryDialNext
        assert.isTrue(yield* isBlocked(waiting))
        yield* TestClock.adjust(1)
        assert.deepStrictEqual(yield* result(waiting), mem(a))
        yield* TestClock.adjust("2 seconds") // so the next manager starts at a fresh time
      }
    }))

  it.effect("persistent peers are retried with a 1 s floor when retries are disabled, growing exponentially", () =>
    Effect.gen(function* () {
      const pm = yield* makePM({ persistentPeers: [a] })
      yield* pm.add(mem(a))
      yield* pm.add(mem(b))
      yield* dispenses(pm, mem(a))
      yield* dispenses(pm, mem(b))
      yield* pm.dialFailed(mem(b)) // never retried: not persistent, minRetryTime 0
      for (const delay of [1000, 2000, 4000]) {
        yield* pm.dialFailed(mem(a))
        assert.strictEqual((yield* pm.scores).get(a), 32767)
        const waiting = yield* forkDialNext(pm)
        yield* TestClock.adjust(delay - 1)
        assert.isTrue(yield* isBlocked(waiting))
        yield* TestClock.adjust(1)
        assert.deepStrictEqual(yield* result(waiting), mem(a))
      }
      yield* pm.dialFailed(mem(a))
      yield* TestClock.adjust("1 hour")
      yield* dispenses(pm, mem(a))
      yield* dispensesNothing(pm) // b stays frozen for good
    }))

  it.effect("persistent peers back off up to maxRetryTimePersistent, others up to maxRetryTime", () =>
    Effect.gen(function* () {
      const pm = yield* makePM({ persistentPeers: [a], minRetryTime: 100, maxRetryTime: 1000, maxRetryTimePersistent: 300 })
      const delays = (address: NodeAddress.NodeAddress, expected: ReadonlyArray<number>) =>
        Effect.gen(function* () {
          yield* pm.add(address)
          yield* dispenses(pm, address)
          for (const delay of expected) {
            yield* pm.dialFailed(address)
            yield* TestClock.adjust(delay - 1)
            yield* dispensesNothing(pm)
            yield* TestClock.adjust(1)
            yield* dispenses(pm, address)
          }
          yield* pm.dialed(address)
        })
      yield* delays(mem(a), [100, 200, 300, 300])
      yield* delays(mem(b), [100, 200, 400, 800, 1000, 1000])
    }))

  it.effect("33. adding a peer wakes a waiting dialNext", () =>
    Effect.gen(function* () {
      const pm = yield* makePM()
      const waiting = yield* forkDialNext(pm)
      yield* TestClock.adjust("200 millis")
      assert.isTrue(yield* isBlocked(waiting))
      yield* pm.add(mem(a))
      assert.deepStrictEqual(yield* result(waiting), mem(a))
    }))

  it.effect("34. a failed dial frees its slot: a waiting dialNext gets the next peer, the failed one is not retried", () =>
    Effect.gen(function* () {
      const pm = yield* makePM({ maxConnected: 1 })
      yield* pm.add(mem(a))
      yield* dispenses(pm, mem(a))
      yield* pm.add(mem(b))
      yield* dispensesNothing(pm)
      const waiting = yield* forkDialNext(pm)
      yield* TestClock.adjust("200 millis")
      assert.isTrue(yield* isBlocked(waiting))
      yield* pm.dialFailed(mem(a))
      assert.deepStrictEqual(yield* result(waiting), mem(b))
      yield* pm.dialFailed(mem(b))
      yield* TestClock.adjust("1 hour")
      yield* dispensesNothing(pm)
    }))

  it.effect("35. after a failure the retry timer wakes dialNext once minRetryTime has passed", () =>
    Effect.gen(function* () {
      const pm = yield* makePM({ minRetryTime: 200 })
      yield* pm.add(mem(a))
      yield* dispenses(pm, mem(a))
      yield* pm.dialFailed(mem(a))
      const waiting = yield* forkDialNext(pm)
      yield* TestClock.adjust("199 millis")
      assert.isTrue(yield* isBlocked(waiting))
      yield* TestClock.adjust("1 millis")
      assert.deepStrictEqual(yield* result(waiting), mem(a))
    }))

  it.effect("36. a disconnection wakes a waiting dialNext (cooldown 0)", () =>
    Effect.gen(function* () {
      const pm = yield* makePM()
      yield* pm.add(mem(a))
      yield* pm.accepted(a)
      yield* dispensesNothing(pm)
      const waiting = yield* forkDialNext(pm)
      yield* TestClock.adjust("200 millis")
      assert.isTrue(yield* isBlocked(waiting))
      yield* pm.disconnected(a)
      assert.deepStrictEqual(yield* result(waiting), mem(a))
    }))

  it.effect("37. connected plus dialing peers fill maxConnected", () =>
    Effect.gen(function* () {
      const pm = yield* makePM({ maxConnected: 2 })
      yield* dialIn(pm, a)
      yield* pm.add(mem(b))
      yield* dispenses(pm, mem(b))
      yield* pm.add(mem(c))
      yield* dispensesNothing(pm)
      assert.isFalse(yield* pm.isFull)
    }))

  it.effect("38. upgrade slots: only better peers are dialed once full, and only one per reservation", () =>
    Effect.gen(function* () {
      const pm = yield* makePM({
        peerScores: { [a]: 0, [b]: 1, [c]: 2, [d]: 3, [e]: 0 },
        persistentPeers: [c, d],
        maxConnected: 2,
        maxConnectedUpgrade: 1
      })
      yield* dialIn(pm, a)
      yield* pm.add(mem(b))
      yield* dispenses(pm, mem(b)) // in flight
      yield* pm.add(mem(c))
      yield* dispenses(pm, mem(c)) // the third (upgrade) slot
      yield* pm.add(mem(d))
      yield* dispensesNothing(pm) // connected + dialing = 3 = maxConnected + maxConnectedUpgrade
      yield* pm.dialed(mem(c))
      yield* dispensesNothing(pm)
      assert.strictEqual(yield* rejection(pm.dialed(mem(d))), "full") // d reserved nothing
      yield* pm.disconnected(a)
      yield* pm.dialed(mem(d))
      yield* pm.disconnected(b) // b was never connected: its dial is still in flight
      yield* pm.add(mem(e))
      yield* dispensesNothing(pm)
      yield* pm.dialFailed(mem(b))
      // Full with c and d, neither scoring lower than e: no upgrade candidate.
      yield* dispensesNothing(pm)
      assert.deepStrictEqual(yield* pm.tryEvictNext, undefined)
    }))

  it.effect("39. an upgrade dial claims the worst connected peer; a second upgrade finds nothing left to claim", () =>
    Effect.gen(function* () {
      const pm = yield* makePM({ peerScores: { [b]: 1, [c]: 1 }, maxConnected: 1, maxConnectedUpgrade: 2 })
      yield* dialIn(pm, a)
      yield* pm.add(mem(b))
      yield* dispenses(pm, mem(b))
      yield* pm.add(mem(c))
      yield* dispensesNothing(pm)
    }))

  it.effect("40. a failed upgrade dial releases its claim", () =>
    Effect.gen(function* () {
      const pm = yield* makePM({ peerScores: { [b]: 1, [c]: 1 }, maxConnected: 1, maxConnectedUpgrade: 2 })
      yield* dialIn(pm, a)
      yield* pm.add(mem(b))
      yield* dispenses(pm, mem(b))
      yield* pm.add(mem(c))
      yield* dispensesNothing(pm)
      yield* pm.dialFailed(mem(b))
      yield* dispenses(pm, mem(c))
    }))

  it.effect("41. a peer already dialing or connected is never dispensed again", () =>
    Effect.gen(function* () {
      const pm = yield* makePM()
      yield* pm.add(mem(a))
      yield* dispenses(pm, mem(a))
      yield* pm.add(tcp(a))
      yield* dispensesNothing(pm)
      yield* pm.dialed(mem(a))
      yield* dispensesNothing(pm)
      yield* pm.add(mem(b))
      yield* pm.accepted(b)
      yield* dispensesNothing(pm)
    }))

  it.effect("42. with retries disabled every address is dispensed exactly once", () =>
    Effect.gen(function* () {
      const pm = yield* makePM()
      const all = [mem(a), tcp(a), mem(b), tcp(b)]
      for (const address of all) yield* pm.add(address)
      const seen: Array<string> = []
      for (let i = 0; i < all.length; i++) {
        const address = yield* pm.tryDialNext
        assert.isDefined(address)
        seen.push(NodeAddress.format(address!))
        yield* pm.dialFailed(address!)
      }
      assert.deepStrictEqual(seen.sort(), all.map(NodeAddress.format).sort())
      yield* dispensesNothing(pm)
    }))

  it.effect("43. maxOutgoingConnections stops dialing (in-flight dials count) but not accepting", () =>
    Effect.gen(function* () {
      const pm = yield* makePM({ maxOutgoingConnections: 1, maxConnected: 2 })
      yield* pm.add(mem(a))
      yield* pm.add(mem(b))
      yield* dispenses(pm, mem(a))
      yield* dispensesNothing(pm) // a's dial in flight uses the outgoing slot
      yield* pm.dialed(mem(a))
      yield* dispensesNothing(pm)
      yield* pm.accepted(c)
      assert.isTrue(yield* pm.isFull)
    }))

  it.effect("44. a disconnected peer is not dialed during the cooldown; the cooldown end wakes dialNext", () =>
    Effect.gen(function* () {
      const pm = yield* makePM({ disconnectCooldownPeriod: "1 second" })
      yield* dialIn(pm, a)
      yield* pm.disconnected(a)
      yield* dispensesNothing(pm)
      const waiting = yield* forkDialNext(pm)
      yield* TestClock.adjust("999 millis")
      assert.isTrue(yield* isBlocked(waiting))
      yield* TestClock.adjust("1 millis")
      assert.deepStrictEqual(yield* result(waiting), mem(a))
    }))
})

describe("PeerManager.dialFailed / dialed / accepted (SPEC §8.5)", () => {
  it.effect("45. a failure for an unknown address of the peer clears dialing but records nothing", () =>
    Effect.gen(function* () {
      const pm = yield* makePM({ minRetryTime: 1000 })
      yield* pm.add(mem(a))
      yield* dispenses(pm, mem(a))
      yield* pm.dialFailed(NodeAddress.unsafeParse(`tcp://${a}@localhost`))
      assert.deepStrictEqual(yield* pm.addresses(a), [mem(a)])
      assert.strictEqual((yield* pm.scores).get(a), 0)
      yield* dispenses(pm, mem(a))
    }))

  it.effect("46. dialFailed twice is fine; for an unknown peer it adds nothing", () =>
    Effect.gen(function* () {
      const pm = yield* makePM()
      yield* pm.add(mem(a))
      yield* dispenses(pm, mem(a))
      yield* pm.dialFailed(mem(a))
      yield* pm.dialFailed(mem(a))
      yield* pm.dialFailed(mem(b))
      assert.deepStrictEqual(yield* peerIds(pm), [a])
    }))

  it.effect("47. dialed twice is rejected as already connected, as is dialed after accepted", () =>
    Effect.gen(function* () {
      const pm = yield* makePM()
      yield* dialIn(pm, a)
      assert.strictEqual(yield* rejection(pm.dialed(mem(a))), "already_connected")
      yield* pm.add(mem(b))
      yield* dispenses(pm, mem(b))
      yield* pm.accepted(b)
      assert.strictEqual(yield* rejection(pm.dialed(mem(b))), "already_connected")
      // the rejected dial released b's dialing mark; a new address of b is still not dialed (connected)
      yield* pm.add(tcp(b))
      yield* dispensesNothing(pm)
    }))

  it.effect("48. our own address cannot be added, dialed or accepted", () =>
    Effect.gen(function* () {
      const pm = yield* makePM()
      assert.strictEqual((yield* Effect.flip(pm.add(mem(self))))._tag, "InvalidPeerAddress")
      assert.strictEqual(yield* rejection(pm.dialed(mem(self))), "self")
      assert.strictEqual(yield* rejection(pm.accepted(self)), "self")
      assert.deepStrictEqual(yield* pm.peers, [])
    }))

  it.effect("49. a dial that was never dispensed may take a free slot; the dispensed one then finds the node full", () =>
    Effect.gen(function* () {
      const pm = yield* makePM({ maxConnected: 1 })
      yield* pm.add(mem(a))
      yield* dispenses(pm, mem(a))
      yield* pm.add(mem(b))
      yield* pm.dialed(mem(b))
      assert.strictEqual(yield* rejection(pm.dialed(mem(a))), "full")
      // the rejection cleared a's dialing mark
      assert.strictEqual((yield* pm.peers).find((p) => p.nodeId === a)?.state, "candidate")
    }))

  it.effect("50. an upgrade dial is admitted beyond maxConnected; a dial without a reservation is not", () =>
    Effect.gen(function* () {
      const pm = yield* makePM({ maxConnected: 2, maxConnectedUpgrade: 1, peerScores: { [c]: 1, [d]: 1 } })
      yield* pm.add(mem(a))
      yield* pm.dialed(mem(a))
      yield* pm.add(mem(b))
      yield* pm.dialed(mem(b))
      yield* pm.add(mem(c))
      yield* dispenses(pm, mem(c))
      yield* pm.dialed(mem(c))
      yield* pm.add(mem(d))
      assert.strictEqual(yield* rejection(pm.dialed(mem(d))), "full")
      assert.strictEqual(yield* pm.tryEvictNext, b) // the worst connected peer was claimed
    }))

  it.effect("51. dialed for a peer that was never added is rejected as unknown", () =>
    Effect.gen(function* () {
      const pm = yield* makePM()
      assert.strictEqual(yield* rejection(pm.dialed(mem(a))), "unknown_peer")
      assert.deepStrictEqual(yield* pm.peers, [])
    }))

  it.effect("52. a connected upgrade marks the claimed peer for eviction, which blocks further upgrades", () =>
    Effect.gen(function* () {
      const pm = yield* makePM({ maxConnected: 1, maxConnectedUpgrade: 2, peerScores: { [b]: 1, [c]: 1 } })
      yield* dialIn(pm, a)
      yield* pm.add(mem(b))
      yield* dispenses(pm, mem(b))
      yield* pm.dialed(mem(b))
      yield* pm.add(mem(c))
      yield* dispensesNothing(pm)
      assert.strictEqual(yield* pm.tryEvictNext, a)
    }))

  it.effect("53. a connected upgrade evicts an even lower peer that connected meanwhile", () =>
    Effect.gen(function* () {
      const pm = yield* makePM({ maxConnected: 2, maxConnectedUpgrade: 1, peerScores: { [a]: 3, [b]: 2, [c]: 10, [d]: 1 } })
      yield* dialIn(pm, a)
      yield* dialIn(pm, b)
      yield* pm.add(mem(c))
      yield* dispenses(pm, mem(c)) // claims b
      yield* pm.disconnected(a)
      yield* pm.accepted(d)
      yield* pm.dialed(mem(c))
      assert.strictEqual(yield* pm.tryEvictNext, d)
      assert.strictEqual(yield* pm.tryEvictNext, undefined)
    }))

  it.effect("54. a connected upgrade evicts nobody when the node is no longer full", () =>
    Effect.gen(function* () {
      const pm = yield* makePM({ maxConnected: 2, maxConnectedUpgrade: 1, peerScores: { [a]: 1, [b]: 2, [c]: 3 } })
      yield* dialIn(pm, a)
      yield* dialIn(pm, b)
      yield* pm.add(mem(c))
      yield* dispenses(pm, mem(c)) // claims a
      yield* pm.disconnected(b)
      yield* pm.dialed(mem(c))
      assert.strictEqual(yield* pm.tryEvictNext, undefined)
    }))

  it.effect("55. accepted: self and duplicates are rejected; unknown peers are registered without addresses", () =>
    Effect.gen(function* () {
      const pm = yield* makePM()
      assert.strictEqual(yield* rejection(pm.accepted(self)), "self")
      yield* pm.add(mem(a))
      yield* pm.accepted(a)
      assert.strictEqual(yield* rejection(pm.accepted(a)), "already_connected")
      yield* pm.accepted(b)
      assert.deepStrictEqual((yield* pm.peers).map((p) => [p.nodeId, p.addresses.length]), [[a, 1], [b, 0]])
      yield* pm.add(mem(c))
      yield* dispenses(pm, mem(c))
      yield* pm.accepted(c)
      assert.strictEqual(yield* rejection(pm.dialed(mem(c))), "already_connected")
      yield* pm.add(mem(d))
      yield* dispenses(pm, mem(d))
      yield* pm.dialed(mem(d))
      assert.strictEqual(yield* rejection(pm.accepted(d)), "already_connected")
      const directions = Object.fromEntries((yield* pm.peers).map((p) => [p.nodeId.slice(0, 1), p.direction]))
      assert.deepStrictEqual(directions, { a: "incoming", b: "incoming", c: "incoming", d: "outgoing" })
    }))

  it.effect("56. accepted is rejected when dialed and accepted peers fill maxConnected", () =>
    Effect.gen(function* () {
      const pm = yield* makePM({ maxConnected: 2 })
      yield* dialIn(pm, a)
      yield* pm.accepted(b)
      assert.strictEqual(yield* rejection(pm.accepted(c)), "full")
      assert.deepStrictEqual(yield* peerIds(pm), [a, b]) // c was not registered
    }))

  it.effect("57. once full, only a better-scored inbound peer is accepted, and only up to the upgrade slots", () =>
    Effect.gen(function* () {
      const pm = yield* makePM({ maxConnected: 1, maxConnectedUpgrade: 1, peerScores: { [c]: 1, [d]: 2 } })
      yield* dialIn(pm, a)
      assert.strictEqual(yield* rejection(pm.accepted(b)), "full")
      yield* pm.accepted(c)
      assert.strictEqual(yield* rejection(pm.accepted(b)), "full")
      assert.strictEqual(yield* rejection(pm.accepted(d)), "full")
      assert.strictEqual(yield* pm.tryEvictNext, a)
    }))

  it.effect("58. an accepted upgrade claims the worst peer; later ones need a strictly lower peer", () =>
    Effect.gen(function* () {
      const pm = yield* makePM({ maxConnected: 1, maxConnectedUpgrade: 2, peerScores: { [b]: 1, [c]: 1 } })
      yield* pm.accepted(a)
      yield* pm.accepted(b)
      assert.strictEqual(yield* rejection(pm.accepted(c)), "full")
      assert.strictEqual(yield* pm.tryEvictNext, a)
      yield* pm.disconnected(a)
      assert.strictEqual(yield* rejection(pm.accepted(c)), "full")
    }))

  it.effect("59. an inbound connection from a peer being dialed as an upgrade inherits its claim", () =>
    Effect.gen(function* () {
      const pm = yield* makePM({ maxConnected: 1, maxConnectedUpgrade: 2, peerScores: { [b]: 1, [c]: 1 } })
      yield* pm.add(mem(a))
      yield* pm.accepted(a)
      yield* pm.add(mem(b))
      yield* dispenses(pm, mem(b))
      assert.strictEqual(yield* rejection(pm.accepted(c)), "full")
      yield* pm.accepted(b)
      assert.strictEqual(yield* pm.tryEvictNext, a)
      assert.strictEqual(yield* rejection(pm.dialed(mem(b))), "already_connected")
    }))

  it.effect("60. an inbound connection forgives past dial failures: score restored, no retry delay after the cooldown", () =>
    Effect.gen(function* () {
      const pm = yield* makePM({ minRetryTime: "10 seconds", disconnectCooldownPeriod: 500 })
      yield* pm.add(mem(a))
      yield* dispenses(pm, mem(a))
      yield* pm.dialFailed(mem(a))
      assert.strictEqual((yield* pm.scores).get(a), -1)
      yield* pm.accepted(a)
      assert.strictEqual((yield* pm.scores).get(a), 0)
      yield* pm.disconnected(a)
      const waiting = yield* forkDialNext(pm)
      yield* TestClock.adjust(499)
      assert.isTrue(yield* isBlocked(waiting))
      yield* TestClock.adjust(1)
      assert.deepStrictEqual(yield* result(waiting), mem(a))
    }))
})

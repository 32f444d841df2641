/**
 * Property test of the PeerManager lifecycle: random sequences of calls over a small ID pool, with
 * random limits, checking the manager's invariants after every step.
 *
 * The invariants, stated precisely (they are weaker than "connected + dialing never exceeds the
 * limit": `accepted` checks only connected peers, as in the original, so an inbound connection can
 * arrive while dials are in flight):
 * - connected <= maxConnected + maxConnectedUpgrade (when maxConnected > 0);
 * - `tryDialNext` hands out an address only when connected + dialing < maxConnected +
 *   maxConnectedUpgrade and outgoing + dialing < maxOutgoingConnections (when set), and only a
 *   known address of a peer that is neither connected, dialing, inactive nor ourselves;
 * - a subscriber sees, per peer, up and down alternating and starting with up, and the last one is
 *   up exactly when the peer's status is up;
 * - pruning (after an `add` that stored a new address) leaves at most max(maxPeers, exempt) peers,
 *   where exempt = persistent, connected or dialing; only `accepted` of an unknown peer adds a peer
 *   otherwise, and only pruning removes one; persistent peers are never removed;
 * - `tryEvictNext` hands out only connected peers, each once per connection;
 * - scores: persistent peers 32767 (unless a positive fixed score), others at most 32766;
 * - `isFull` exactly when maxConnected > 0 and connected >= maxConnected.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { TestClock } from "effect/testing"
import * as fc from "fast-check"
import * as NodeAddress from "../../src/domain/NodeAddress.ts"
import type * as NodeId from "../../src/domain/NodeId.ts"
import type { OptionsInput, PeerStatus } from "../../src/services/PeerManager.ts"
import { makePM, mem, nodeId, record, self, tcp, yieldToFibers } from "./PeerManager.fixtures.ts"

const pool = ["a", "b", "c", "d", "e"].map(nodeId)
const addressesOf = (id: NodeId.NodeId) => [mem(id), tcp(id, "10.0.0.1"), tcp(id, "10.0.0.2")]

type Step =
  | { readonly op: "add"; readonly peer: number; readonly address: number }
  | { readonly op: "tryDialNext" }
  | { readonly op: "dialFailed" | "dialed"; readonly inFlight: boolean; readonly pick: number; readonly peer: number; readonly address: number }
  | { readonly op: "accepted" | "ready" | "disconnected" | "inactivate"; readonly peer: number }
  | { readonly op: "errored"; readonly peer: number; readonly fatal: boolean }
  | { readonly op: "report"; readonly peer: number; readonly good: boolean }
  | { readonly op: "tryEvictNext" }
  | { readonly op: "adjust"; readonly ms: number }

const peer = fc.nat({ max: pool.length - 1 })
const address = fc.nat({ max: 2 })
const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ op: fc.constant("add" as const), peer, address }) },
  { weight: 6, arbitrary: fc.constant({ op: "tryDialNext" as const }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constantFrom("dialFailed" as const, "dialed" as const), inFlight: fc.nat({ max: 5 }).map((n) => n > 0), pick: fc.nat(), peer, address }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constantFrom("accepted" as const, "ready" as const, "disconnected" as const), peer }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("inactivate" as const), peer }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("errored" as const), peer, fatal: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("report" as const), peer, good: fc.boolean() }) },
  { weight: 2, arbitrary: fc.constant({ op: "tryEvictNext" as const }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("adjust" as const), ms: fc.constantFrom(1, 50, 100, 1000) }) }
)

const options: fc.Arbitrary<OptionsInput> = fc
  .record({
    maxConnected: fc.nat({ max: 4 }),
    maxConnectedUpgrade: fc.nat({ max: 2 }),
    extraPeers: fc.option(fc.nat({ max: 3 }), { nil: undefined }),
    outgoing: fc.nat({ max: 4 }),
    persistent: fc.subarray(pool, { maxLength: 2 }),
    scores: fc.array(fc.tuple(fc.constantFrom(...pool), fc.integer({ min: -2, max: 3 })), { maxLength: 3 }),
    minRetryTime: fc.constantFrom(0, 100),
    retryTimeJitter: fc.constantFrom(0, 50),
    disconnectCooldownPeriod: fc.constantFrom(0, 50),
    maxAddressesPerPeer: fc.integer({ min: 1, max: 3 })
  })
  .map((o) => ({
    maxConnected: o.maxConnected,
    maxConnectedUpgrade: o.maxConnectedUpgrade,
    maxPeers: o.maxConnected > 0 && o.extraPeers !== undefined ? o.maxConnected + o.maxConnectedUpgrade + o.extraPeers : 0,
    maxOutgoingConnections: o.maxConnected > 0 ? Math.min(o.outgoing, o.maxConnected) : o.outgoing % 3,
    persistentPeers: o.maxConnected > 0 ? o.persistent.slice(0, o.maxConnected) : o.persistent,
    peerScores: Object.fromEntries(o.scores),
    minRetryTime: o.minRetryTime,
    retryTimeJitter: o.retryTimeJitter,
    disconnectCooldownPeriod: o.disconnectCooldownPeriod,
    maxAddressesPerPeer: o.maxAddressesPerPeer
  }))

const isConnected = (p: PeerStatus) => p.state === "connected" || p.state === "ready"

const run = (input: OptionsInput, steps: ReadonlyArray<Step>) =>
  Effect.gen(function* () {
    const pm = yield* makePM({ ...input, subscriberBufferSize: 10_000 })
    const o = pm.options
    const rec = yield* record(pm)
    /** Addresses handed out by tryDialNext and not yet reported (the manager's dialing set, by peer). */
    const inFlight: Array<NodeAddress.NodeAddress> = []
    const dialing = new Set<NodeId.NodeId>()
    /** Peers handed out by tryEvictNext that have not disconnected since. */
    const evicting = new Set<NodeId.NodeId>()

    const snapshot = Effect.gen(function* () {
      const list = yield* pm.peers
      const byId = new Map(list.map((p) => [p.nodeId, p] as const))
      const connected = list.filter(isConnected)
      return { list, byId, connected, outgoing: connected.filter((p) => p.direction === "outgoing").length }
    })

    for (const [i, s] of steps.entries()) {
      const where = `step ${i} ${JSON.stringify(s)}`
      const before = yield* snapshot
      const id = "peer" in s ? pool[s.peer]! : undefined
      let pruned = false
      let registered: NodeId.NodeId | undefined
      switch (s.op) {
        case "add": {
          const target = addressesOf(id!)[s.address]!
          const known = before.byId.get(id!)
          pruned = known === undefined ||
            (!known.inactive && known.addresses.length < o.maxAddressesPerPeer && !known.addresses.some((x) => NodeAddress.format(x) === NodeAddress.format(target)))
          const added = yield* pm.add(target)
          if (added) assert.isTrue((yield* pm.addresses(id!)).some((x) => NodeAddress.format(x) === NodeAddress.format(target)), where)
          break
        }
        case "tryDialNext": {
          const got = yield* pm.tryDialNext
          if (got === undefined) break
          const gid = got.nodeId as NodeId.NodeId
          const p = before.byId.get(gid)
          assert.isDefined(p, `${where}: dispensed an unknown peer`)
          assert.notStrictEqual(gid, self, where)
          assert.isFalse(isConnected(p!) || dialing.has(gid), `${where}: dispensed ${gid} while connected or dialing`)
          assert.isFalse(p!.inactive, `${where}: dispensed an inactive peer`)
          assert.isTrue(p!.addresses.some((x) => NodeAddress.format(x) === NodeAddress.format(got)), `${where}: dispensed an unknown address`)
          if (o.maxConnected > 0) assert.isBelow(before.connected.length + dialing.size, o.maxConnected + o.maxConnectedUpgrade, where)
          if (o.maxOutgoingConnections > 0) assert.isBelow(before.outgoing + dialing.size, o.maxOutgoingConnections, where)
          inFlight.push(got)
          dialing.add(gid)
          break
        }
        case "dialFailed":
        case "dialed": {
          const useInFlight = s.inFlight && inFlight.length > 0
          const target = useInFlight ? inFlight.splice(s.pick % inFlight.length, 1)[0]! : addressesOf(id!)[s.address]!
          const tid = target.nodeId as NodeId.NodeId
          if (!useInFlight) for (let k = inFlight.length - 1; k >= 0; k--) if (inFlight[k]!.nodeId === tid) inFlight.splice(k, 1)
          dialing.delete(tid)
          for (let k = inFlight.length - 1; k >= 0; k--) if (inFlight[k]!.nodeId === tid) inFlight.splice(k, 1)
          if (s.op === "dialFailed") yield* pm.dialFailed(target)
          else yield* Effect.ignore(pm.dialed(target))
          break
        }
        case "accepted": {
          const ok = yield* Effect.isSuccess(pm.accepted(id!))
          if (ok && !before.byId.has(id!)) registered = id
          if (ok) assert.isTrue(o.maxConnected === 0 || before.connected.length < o.maxConnected + o.maxConnectedUpgrade, where)
          break
        }
        case "ready":
          yield* pm.ready(id!, [1])
          break
        case "disconnected":
          yield* pm.disconnected(id!)
          evicting.delete(id!)
          break
        case "inactivate":
          yield* pm.inactivate(id!)
          break
        case "errored":
          yield* pm.errored(id!, s.fatal)
          break
        case "report":
          yield* pm.report(id!, s.good ? "good" : "bad")
          break
        case "tryEvictNext": {
          const got = yield* pm.tryEvictNext
          if (got === undefined) break
          assert.isTrue(before.byId.has(got) && isConnected(before.byId.get(got)!), `${where}: evicting an unconnected peer`)
          assert.isFalse(evicting.has(got), `${where}: ${got} handed out for eviction twice`)
          evicting.add(got)
          break
        }
        case "adjust":
          yield* TestClock.adjust(s.ms)
          break
      }
      yield* yieldToFibers
      const after = yield* snapshot

      // Connection limits.
      if (o.maxConnected > 0) assert.isAtMost(after.connected.length, o.maxConnected + o.maxConnectedUpgrade, `${where}: too many connections`)
      assert.strictEqual(yield* pm.isFull, o.maxConnected > 0 && after.connected.length >= o.maxConnected, `${where}: isFull`)
      // Our model of the dialing set agrees with the manager's view.
      for (const p of after.list) if (p.state === "dialing") assert.isTrue(dialing.has(p.nodeId), `${where}: ${p.nodeId} dialing unexpectedly`)
      for (const d of dialing) {
        const p = after.byId.get(d)
        assert.isDefined(p, `${where}: a dialing peer was removed`)
        if (!isConnected(p!)) assert.strictEqual(p!.state, "dialing", `${where}: ${d} should still be dialing`)
      }

      // Stored peers: only pruning removes peers, only accepted adds one without an address.
      const beforeIds = new Set(before.list.map((p) => p.nodeId))
      const afterIds = new Set(after.list.map((p) => p.nodeId))
      for (const p of before.list) {
        if (!afterIds.has(p.nodeId)) {
          assert.isTrue(pruned, `${where}: ${p.nodeId} vanished`)
          assert.isFalse(p.persistent || isConnected(p) || dialing.has(p.nodeId), `${where}: pruned an exempt peer ${p.nodeId}`)
        }
      }
      for (const nid of afterIds) {
        if (!beforeIds.has(nid)) assert.isTrue((s.op === "add" && nid === id) || nid === registered, `${where}: ${nid} appeared`)
      }
      if (pruned && o.maxPeers > 0) {
        const exempt = after.list.filter((p) => p.persistent || isConnected(p) || dialing.has(p.nodeId)).length
        assert.isAtMost(after.list.length, Math.max(o.maxPeers, exempt), `${where}: pruning left too many peers`)
      }

      // Scores.
      for (const p of after.list) {
        const fixed = o.peerScores.get(p.nodeId) ?? 0
        if (fixed > 0) assert.strictEqual(p.score, fixed, where)
        else if (p.persistent) assert.strictEqual(p.score, 32767, where)
        else assert.isAtMost(p.score, 32766, where)
      }

      // Updates: per peer, up/down alternate starting with up, and agree with the status.
      for (const nid of pool) {
        const statuses = rec.updates.filter((u) => u.nodeId === nid).map((u) => u.status)
        statuses.forEach((st, k) => assert.strictEqual(st, k % 2 === 0 ? "up" : "down", `${where}: updates of ${nid}: ${statuses.join(",")}`))
        const isUp = (yield* pm.status(nid)) === "up"
        assert.strictEqual(statuses.length % 2 === 1, isUp, `${where}: status of ${nid} vs its updates`)
        assert.strictEqual(isUp, after.byId.get(nid)?.state === "ready", where)
      }
    }
  })

describe("PeerManager lifecycle properties", () => {
  it("random call sequences keep every invariant (200 runs × up to 60 steps)", { timeout: 60_000 }, async () => {
    await fc.assert(
      fc.asyncProperty(options, fc.array(step, { maxLength: 60, size: "max" }), (input, steps) =>
        Effect.runPromise(run(input, steps).pipe(Effect.scoped, Effect.provide(TestClock.layer())))),
      { numRuns: Number(process.env["PM_PROP_RUNS"] ?? 200) }
    )
  })
})

/**
 * Bans: node IDs and IP networks, made by an operator, a reactor or repeated misbehaviour, bounded,
 * expiring under the clock, persisted across restarts. The transitions are tested as plain
 * functions; persistence and expiry through the shell over a real SQLite file and TestClock.
 */
import { assert, describe, it } from "@effect/vitest"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Layer, Result } from "effect"
import { TestClock } from "effect/testing"
import * as Ban from "../../src/domain/Ban.ts"
import * as NodeAddress from "../../src/domain/NodeAddress.ts"
import * as PeerManagerLayer from "../../src/layers/PeerManager.ts"
import * as PeerStoreSqlite from "../../src/layers/PeerStoreSqlite.ts"
import * as Advertise from "../../src/domain/peermanager/Advertise.ts"
import * as Bans from "../../src/domain/peermanager/Bans.ts"
import * as Connections from "../../src/domain/peermanager/Connections.ts"
import * as Dialing from "../../src/domain/peermanager/Dialing.ts"
import * as Peers from "../../src/domain/peermanager/Peers.ts"
import * as State from "../../src/domain/peermanager/State.ts"
import { decodeOptions, zero, type OptionsInput } from "../../src/services/PeerManager.ts"
import { a, b, c, mem, self, tcp } from "./PeerManager.fixtures.ts"

const HOUR = 3_600_000
const stateWith = (options: OptionsInput = {}) => State.empty(self, Result.getOrThrow(decodeOptions({ ...zero, ...options })))
const subject = (text: string) => Result.getOrThrow(Ban.parseSubject(text))
const banOf = (text: string, until = HOUR, reason = "test"): Ban.Ban => ({ subject: subject(text), since: 0, until, reason })
const withAddresses = (state: State.State, addresses: ReadonlyArray<NodeAddress.NodeAddress>) =>
  addresses.reduce((s, address) => Result.getOrThrow(Peers.add(s, address)).state, state)

describe("Ban subjects", () => {
  it("node IDs, IP addresses and networks; host bits cleared; bad text is a typed error", () => {
    assert.deepStrictEqual(subject(a), { _tag: "Node", nodeId: a })
    assert.deepStrictEqual(subject("10.1.2.3"), { _tag: "Network", cidr: "10.1.2.3/32", bits: 32, v4: true })
    assert.deepStrictEqual(subject("10.1.2.3/24"), { _tag: "Network", cidr: "10.1.2.0/24", bits: 24, v4: true })
    assert.strictEqual(Ban.formatSubject(subject("2001:db8::7/64")), "2001:db8::/64")
    for (const bad of ["nope", "10.0.0.0/4", "10.0.0.0/33", "10.0.0.0/x", ""]) assert.isTrue(Result.isFailure(Ban.parseSubject(bad)), bad)
  })

  it("round-trip through their protobuf form, a ban without end included", () => {
    for (const ban of [banOf(a), banOf("10.0.0.0/8", Number.POSITIVE_INFINITY, "forever")]) {
      assert.deepStrictEqual(Result.getOrThrow(Ban.decode(Ban.encode(ban))), ban)
    }
    assert.isTrue(Result.isFailure(Ban.decode(Uint8Array.of(0xff, 0xff))))
  })
})

describe("a banned node", () => {
  it("is evicted if connected, refused at handshake (no grace), not dialed, not added, never advertised; free again when the ban ends", () => {
    let state = withAddresses(stateWith({ maxIncomingPeers: 0, maxGracePeers: 4 }), [mem(a), tcp(b, "10.0.0.2"), mem(c)])
    state = Dialing.dialed(Dialing.tryDialNext(state, 0).state, mem(a), 0).state
    state = Bans.ban(state, banOf(a), 0).state
    assert.strictEqual(Connections.tryEvictNext(state, 0).value, a)
    state = Connections.disconnected(state, a, 1).state
    assert.strictEqual(Connections.accepted(state, a, 2).value?.reason, "banned")
    const dials: Array<string> = []
    for (let s = state, next = Dialing.tryDialNext(s, 10_000); next.value !== undefined; s = next.state, next = Dialing.tryDialNext(s, 10_000)) dials.push(next.value.nodeId)
    assert.notInclude(dials, a)
    assert.isFalse(Result.getOrThrow(Peers.add(state, tcp(a, "10.9.9.9"), 3)).value)
    assert.notInclude(Advertise.advertise(state, c, 10, Math.random, 3).map((x) => x.nodeId), a)
    // After the ban: accepted and advertised again.
    assert.isUndefined(Connections.accepted(stateWith(), a, 0).value)
    assert.include(Advertise.advertise(state, c, 10, Math.random, HOUR).map((x) => x.nodeId), a)
    assert.isUndefined(Bans.nodeBan(state, a, HOUR))
  })
})

describe("a banned network", () => {
  it("refuses peers coming from inside it, evicts those connected from inside, and is never dialed or advertised", () => {
    let state = withAddresses(stateWith(), [tcp(b, "10.0.0.2"), tcp(c, "192.168.1.1")])
    state = Connections.accepted(state, a, 0, "10.0.0.77").state
    state = Bans.ban(state, banOf("10.0.0.0/24"), 0).state
    assert.strictEqual(Connections.tryEvictNext(state, 0).value, a)
    assert.strictEqual(Connections.accepted(stateWith({}), a, 0, "10.0.0.5").value, undefined, "another node's state knows no ban")
    assert.strictEqual(Connections.accepted(Connections.disconnected(state, a, 1).state, a, 1, "10.0.0.5").value?.reason, "banned")
    assert.strictEqual(Bans.ipBan(state, "10.0.0.200", 1)?.reason, "test")
    assert.isUndefined(Bans.ipBan(state, "10.0.1.1", 1))
    assert.strictEqual(Dialing.tryDialNext(state, 1).value?.nodeId, c)
    assert.deepStrictEqual(Advertise.advertise(state, a, 10, Math.random, 1).map((x) => x.nodeId), [c])
  })
})

describe("the ban table", () => {
  it("is bounded: a full table keeps the longer bans; an operator's ban always fits, dropping the soonest to end", () => {
    let state = stateWith({ maxBans: 2 })
    state = Bans.ban(state, banOf("10.0.0.1", 5 * HOUR), 0).state
    state = Bans.ban(state, banOf("10.0.0.2", 9 * HOUR), 0).state
    const draft = new State.Draft(state)
    assert.isFalse(Bans.add(draft, banOf("10.0.0.3", 2 * HOUR), 0))
    state = Bans.ban(state, banOf("10.0.0.3", 2 * HOUR), 0).state
    assert.deepStrictEqual(Bans.active(state, 0).map((x) => Ban.formatSubject(x.subject)), ["10.0.0.2/32", "10.0.0.3/32"])
  })

  it("unban lifts a ban; expired ones are dropped at the next change", () => {
    let state = Bans.ban(stateWith(), banOf(a, 100), 0).state
    const lifted = Bans.unban(state, subject(a), 50)
    assert.isTrue(lifted.value)
    assert.deepStrictEqual(lifted.removeBans, [Ban.key(subject(a))])
    state = Bans.ban(state, banOf(b), 200).state
    assert.deepStrictEqual([...state.bans.keys()], [Ban.key(subject(b))])
  })
})

describe("misbehaviour escalates to a ban", () => {
  it("banAfterMisbehaviours reports within the window ban the peer for misbehaviourBanDuration", () => {
    let state = stateWith({ banAfterMisbehaviours: 3, misbehaviourWindow: 60_000, misbehaviourBanDuration: HOUR })
    const made: Array<Ban.Ban | undefined> = []
    for (const at of [0, 10_000, 20_000]) {
      const out = Connections.errored(state, a, false, at)
      made.push(out.value)
      state = out.state
    }
    assert.deepStrictEqual(made.slice(0, 2), [undefined, undefined])
    assert.strictEqual(made[2]?.until, 20_000 + HOUR)
    assert.match(made[2]!.reason, /repeated misbehaviour \(3 times within 60 s\)/)
    assert.isDefined(Bans.nodeBan(state, a, 20_001))
  })

  it("reports spread wider than the window do not add up", () => {
    let state = stateWith({ banAfterMisbehaviours: 2, misbehaviourWindow: 60_000 })
    state = Connections.errored(state, a, false, 0).state
    assert.isUndefined(Connections.errored(state, a, false, 60_000).value)
  })

  it("banAfterFailedHandshakes from one IP ban the address", () => {
    let state = stateWith({ banAfterFailedHandshakes: 2, failedHandshakeBanDuration: 600_000 })
    state = Connections.handshakeFailed(state, "10.0.0.9", 0).state
    const out = Connections.handshakeFailed(state, "10.0.0.9", 1)
    assert.strictEqual(out.value && Ban.formatSubject(out.value.subject), "10.0.0.9/32")
    assert.isUndefined(Bans.ipBan(out.state, "10.0.0.10", 2))
    assert.isUndefined(Connections.handshakeFailed(stateWith({ banAfterFailedHandshakes: 2 }), "", 0).value, "no IP, no ban")
  })
})

describe("bans through the PeerManager service", () => {
  it.effect("survive a restart (SQLite) and end under the clock", () =>
    Effect.gen(function* () {
      const path = join(mkdtempSync(join(tmpdir(), "p2p-bans-")), "peers.db")
      // The store lives in the caller's scope: closing it is the "restart".
      const open = Effect.flatMap(Layer.build(PeerStoreSqlite.layerSqlite(path)), (store) => PeerManagerLayer.make(self, zero).pipe(Effect.provideContext(store)))
      yield* Effect.scoped(Effect.gen(function* () {
        const pm = yield* open
        const made = yield* pm.ban(a, { duration: "1 hour", reason: "spam" })
        assert.strictEqual(made.until - made.since, HOUR)
        yield* pm.ban("10.0.0.0/24", { duration: Infinity, reason: "abuse" })
        const bad = yield* Effect.flip(pm.ban("not a subject"))
        assert.strictEqual(bad._tag, "InvalidBanSubject")
      }))
      const pm = yield* open
      assert.deepStrictEqual((yield* pm.bans).map((x) => [Ban.formatSubject(x.subject), x.reason]), [["10.0.0.0/24", "abuse"], [a, "spam"]])
      assert.isDefined(yield* pm.checkIp("10.0.0.1"))
      assert.strictEqual((yield* Effect.flip(pm.accepted(a))).reason, "banned")
      yield* TestClock.adjust("61 minutes")
      assert.deepStrictEqual((yield* pm.bans).map((x) => Ban.formatSubject(x.subject)), ["10.0.0.0/24"])
      yield* pm.accepted(a)
      assert.isTrue(yield* pm.unban("10.0.0.0/24"))
      assert.isUndefined(yield* pm.checkIp("10.0.0.1"))
    }).pipe(Effect.scoped))
})

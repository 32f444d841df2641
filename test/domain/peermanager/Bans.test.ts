/**
 * Bans as plain functions: what a ban of a node or a network does to the other decisions, the
 * bounded ban table, expiry, and misbehaviour that escalates to a ban.
 */
import { assert, describe, it } from "@effect/vitest"
import { Result } from "effect"
import * as Ban from "../../../src/domain/Ban.ts"
import * as Advertise from "../../../src/domain/peermanager/Advertise.ts"
import * as Bans from "../../../src/domain/peermanager/Bans.ts"
import * as Connections from "../../../src/domain/peermanager/Connections.ts"
import * as Dialing from "../../../src/domain/peermanager/Dialing.ts"
import * as Peers from "../../../src/domain/peermanager/Peers.ts"
import * as State from "../../../src/domain/peermanager/State.ts"
import type { OptionsInput } from "../../../src/services/PeerManager.ts"
import { a, admitAccepted, b, c, connectOut, letters, mem, stateWith, tcp, withAddresses } from "./fixtures.ts"

const HOUR = 3_600_000
const first = () => 0 // a "random" source that always picks the best candidate
const subject = (text: string) => Result.getOrThrow(Ban.parseSubject(text))
const banOf = (text: string, until = HOUR, reason = "test"): Ban.Ban => ({ subject: subject(text), since: 0, until, reason })
const banned = (options: OptionsInput, text: string, until = HOUR) => Bans.ban(stateWith(options), banOf(text, until), 0).state

describe("a banned node", () => {
  it("is evicted if connected, refused at handshake (no grace), not dialed, not added, never advertised; free again when the ban ends", () => {
    let state = withAddresses(stateWith({ maxIncomingPeers: 0, maxGracePeers: 4 }), [mem(a), tcp(b, "10.0.0.2"), mem(c)])
    state = connectOut(state, a)
    const out = Bans.ban(state, banOf(a), 0)
    assert.deepStrictEqual([letters(out.state.evict), out.wakeEvict, out.persistBans.length], ["a", true, 1])
    state = out.state
    assert.strictEqual(Connections.tryEvictNext(state, 0).value, a)
    state = Connections.disconnected(state, a, 1).state
    assert.strictEqual(Connections.accepted(state, a, 2).value?.reason, "banned")
    const dials: Array<string> = []
    for (let s = state, next = Dialing.tryDialNext(s, 10_000); next.value !== undefined; s = next.state, next = Dialing.tryDialNext(s, 10_000)) dials.push(next.value.nodeId)
    assert.sameMembers(dials, [b, c])
    assert.isFalse(Result.getOrThrow(Peers.add(state, tcp(a, "10.9.9.9"), 3)).value)
    assert.notInclude(Advertise.advertise(state, c, 10, first, 3).map((x) => x.nodeId), a)
    // After the ban: dialed and advertised again.
    assert.strictEqual(Dialing.tryDialNext(state, HOUR).value?.nodeId, a)
    assert.include(Advertise.advertise(state, c, 10, first, HOUR).map((x) => x.nodeId), a)
  })

  it("a ban is in force until its end, exclusive", () => {
    const state = banned({}, a, 100)
    assert.isDefined(Bans.nodeBan(state, a, 99))
    assert.isUndefined(Bans.nodeBan(state, a, 100))
    assert.isUndefined(Bans.nodeBan(state, b, 0))
  })
})

describe("a banned network", () => {
  it("refuses peers coming from inside it, evicts those connected from inside, and is never dialed or advertised", () => {
    let state = withAddresses(stateWith(), [tcp(b, "10.0.0.2"), tcp(c, "192.168.1.1")])
    state = admitAccepted(admitAccepted(state, a, 0, "10.0.0.77"), b, 0, "10.0.1.1")
    state = Bans.ban(state, banOf("10.0.0.0/24"), 0).state
    assert.strictEqual(letters(state.evict), "a", "b connected from outside the /24")
    assert.strictEqual(Connections.accepted(Connections.disconnected(state, a, 1).state, a, 1, "10.0.0.5").value?.reason, "banned")
    assert.strictEqual(Bans.ipBan(state, "10.0.0.200", 1)?.reason, "test")
    assert.isUndefined(Bans.ipBan(state, "10.0.1.1", 1))
    assert.isUndefined(Bans.ipBan(state, "", 1), "no IP, no ban")
    assert.strictEqual(Dialing.tryDialNext(Connections.disconnected(state, b, 1).state, 1).value?.nodeId, c)
    assert.deepStrictEqual(Advertise.advertise(state, a, 10, first, 1).map((x) => x.nodeId), [c])
  })

  it("an IPv6 ban covers its prefix", () => {
    const state = banned({}, "2001:db8::/32")
    assert.isDefined(Bans.ipBan(state, "2001:db8:ffff::1", 0))
    assert.isUndefined(Bans.ipBan(state, "2001:db9::1", 0))
  })
})

describe("the ban table", () => {
  it("is bounded: a full table keeps the longer bans; an operator's ban always fits, dropping the soonest to end", () => {
    let state = stateWith({ maxBans: 2 })
    state = Bans.ban(state, banOf("10.0.0.1", 5 * HOUR), 0).state
    state = Bans.ban(state, banOf("10.0.0.2", 9 * HOUR), 0).state
    assert.isFalse(Bans.add(new State.Draft(state), banOf("10.0.0.3", 2 * HOUR), 0))
    assert.isTrue(Bans.add(new State.Draft(state), banOf("10.0.0.3", 6 * HOUR), 0), "an escalation ban that outlasts the soonest fits")
    const out = Bans.ban(state, banOf("10.0.0.3", 2 * HOUR), 0)
    assert.deepStrictEqual(Bans.active(out.state, 0).map((x) => Ban.formatSubject(x.subject)), ["10.0.0.2/32", "10.0.0.3/32"])
    assert.deepStrictEqual(out.removeBans, [Ban.key(subject("10.0.0.1"))])
  })

  it("makes room from expired bans first", () => {
    const state = Bans.ban(stateWith({ maxBans: 1 }), banOf(a, 100), 0).state
    const draft = new State.Draft(state)
    assert.isTrue(Bans.add(draft, banOf(b, 50 + HOUR), 100))
    assert.deepStrictEqual([...draft.state.bans.keys()], [Ban.key(subject(b))])
  })

  it("a new ban of the same subject replaces the old one", () => {
    const state = Bans.ban(Bans.ban(stateWith(), banOf(a, HOUR, "first"), 0).state, banOf(a, 2 * HOUR, "second"), 0).state
    assert.deepStrictEqual(Bans.active(state, 0).map((x) => [x.reason, x.until]), [["second", 2 * HOUR]])
  })

  it("lists bans in force, the longest-lasting first", () => {
    let state = stateWith()
    for (const [text, until] of [["10.0.0.1", 2 * HOUR], [a, 100], [b, Number.POSITIVE_INFINITY]] as const) state = Bans.ban(state, banOf(text, until), 0).state
    assert.deepStrictEqual(Bans.active(state, 200).map((x) => Ban.formatSubject(x.subject)), [b, "10.0.0.1/32"])
  })

  it("unban lifts a ban, removes it from the store and wakes the dialer; false when none was in force", () => {
    const state = Bans.ban(stateWith(), banOf(a, 100), 0).state
    const lifted = Bans.unban(state, subject(a), 50)
    assert.deepStrictEqual([lifted.value, lifted.removeBans, lifted.wakeDial, lifted.state.bans.size], [true, [Ban.key(subject(a))], true, 0])
    assert.isFalse(Bans.unban(state, subject(a), 100).value, "expired")
    assert.isFalse(Bans.unban(state, subject(b), 0).value, "never banned")
  })

  it("expired bans are dropped at the next change", () => {
    const state = Bans.ban(Bans.ban(stateWith(), banOf(a, 100), 0).state, banOf(b), 200)
    assert.deepStrictEqual([...state.state.bans.keys()], [Ban.key(subject(b))])
    assert.deepStrictEqual(state.removeBans, [Ban.key(subject(a))])
  })

  it("loading keeps bans in force without rewriting them and removes expired ones from the store", () => {
    const out = Bans.load(stateWith(), [banOf(a, 100), banOf(b, 1000)], 500)
    assert.deepStrictEqual([...out.state.bans.keys()], [Ban.key(subject(b))])
    assert.deepStrictEqual([out.persistBans, out.removeBans], [[], [Ban.key(subject(a))]])
  })
})

describe("misbehaviour escalates to a ban", () => {
  const reports = (options: OptionsInput, times: ReadonlyArray<number>, setup = (s: State.State) => s) => {
    let state = setup(stateWith(options))
    const made: Array<Ban.Ban | undefined> = []
    for (const at of times) {
      const out = Connections.errored(state, a, false, at)
      made.push(out.value)
      state = out.state
    }
    return { state, made }
  }

  const cases: ReadonlyArray<readonly [string, OptionsInput, ReadonlyArray<number>, number | undefined]> = [
    ["banAfterMisbehaviours reports within the window ban the peer", { banAfterMisbehaviours: 3, misbehaviourWindow: 60_000, misbehaviourBanDuration: HOUR }, [0, 10_000, 20_000], 20_000 + HOUR],
    ["one report fewer bans nobody", { banAfterMisbehaviours: 3, misbehaviourWindow: 60_000 }, [0, 10_000], undefined],
    ["reports spread wider than the window do not add up", { banAfterMisbehaviours: 2, misbehaviourWindow: 60_000 }, [0, 60_000], undefined],
    ["the window restarts at the first report after it", { banAfterMisbehaviours: 2, misbehaviourWindow: 60_000, misbehaviourBanDuration: 1000 }, [0, 60_000, 119_999], 120_999],
    ["banAfterMisbehaviours 0 never bans", { banAfterMisbehaviours: 0 }, [0, 1, 2, 3, 4, 5, 6, 7], undefined]
  ]
  for (const [name, options, times, until] of cases) {
    it(name, () => {
      const { state, made } = reports(options, times)
      assert.strictEqual(made.at(-1)?.until, until)
      assert.deepStrictEqual(made.slice(0, -1), times.slice(0, -1).map(() => undefined))
      assert.strictEqual(Bans.nodeBan(state, a, times.at(-1)!) !== undefined, until !== undefined)
    })
  }

  it("the ban says why, clears the strikes and evicts the connected peer", () => {
    const { state, made } = reports({ banAfterMisbehaviours: 2, misbehaviourWindow: 60_000 }, [0, 1], (s) => admitAccepted(s, a))
    assert.match(made[1]!.reason, /repeated misbehaviour \(2 times within 60 s\)/)
    assert.strictEqual(state.strikes.size, 0)
    assert.strictEqual(letters(state.evict), "a")
  })

  it("strike records are bounded like the bans: the oldest is forgotten", () => {
    let state = stateWith({ banAfterMisbehaviours: 5, maxBans: 2 })
    for (const id of [a, b, c]) state = Connections.errored(state, id, false, 0).state
    assert.deepStrictEqual([...state.strikes.keys()], [b, c].map((id) => Ban.key(Ban.node(id))))
  })

  it("banAfterFailedHandshakes from one IP ban that address (/32 or /128), not its neighbours", () => {
    let state = stateWith({ banAfterFailedHandshakes: 2, failedHandshakeBanDuration: 600_000 })
    state = Connections.handshakeFailed(state, "10.0.0.9", 0).state
    const out = Connections.handshakeFailed(state, "10.0.0.9", 1)
    assert.deepStrictEqual([out.value && Ban.formatSubject(out.value.subject), out.value?.until], ["10.0.0.9/32", 600_001])
    assert.isUndefined(Bans.ipBan(out.state, "10.0.0.10", 2))
    const v6 = Connections.handshakeFailed(Connections.handshakeFailed(stateWith({ banAfterFailedHandshakes: 2 }), "2001:db8::1", 0).state, "2001:db8::1", 0)
    assert.strictEqual(v6.value && Ban.formatSubject(v6.value.subject), "2001:db8::1/128")
  })

  it("a failed handshake without an IP address counts against nothing", () => {
    for (const ip of ["", "example.com"]) {
      const out = Connections.handshakeFailed(stateWith({ banAfterFailedHandshakes: 1 }), ip, 0)
      assert.deepStrictEqual([out.value, out.state.strikes.size, out.state.bans.size], [undefined, 0, 0], ip)
    }
  })
})

describe("Bans.load", () => {
  it("a ban written while the clock was ahead starts now and keeps its length; others load as stored", () => {
    const now = 1_000
    const ahead: Ban.Ban = { subject: subject(a), since: now + HOUR, until: now + 2 * HOUR, reason: "test" }
    const forever: Ban.Ban = { subject: subject(b), since: now + HOUR, until: Number.POSITIVE_INFINITY, reason: "test" }
    const normal: Ban.Ban = { subject: subject(c), since: 0, until: HOUR, reason: "test" }
    const out = Bans.load(stateWith(), [ahead, forever, normal], now)
    assert.deepStrictEqual([out.state.bans.get(Ban.key(ahead.subject))?.until, out.state.bans.get(Ban.key(forever.subject))?.until, out.state.bans.get(Ban.key(normal.subject))?.until], [now + HOUR, Number.POSITIVE_INFINITY, HOUR])
    assert.deepStrictEqual(out.persistBans.map((x) => Ban.key(x.subject)).sort(), [Ban.key(ahead.subject), Ban.key(forever.subject)].sort())
  })
})

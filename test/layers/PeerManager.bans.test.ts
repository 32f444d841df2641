/**
 * Bans: node IDs and IP networks, made by an operator, a reactor or repeated misbehaviour, bounded,
 * expiring under the clock, persisted across restarts. Ban subjects here, and persistence and
 * expiry through the shell over a real SQLite file and TestClock; the decisions (what a ban
 * refuses, the bounded table, escalation) as plain functions in test/domain/peermanager/Bans.test.ts.
 */
import { assert, describe, it } from "@effect/vitest"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Layer, Result } from "effect"
import { TestClock } from "effect/testing"
import * as Ban from "../../src/domain/Ban.ts"
import * as PeerManagerLayer from "../../src/layers/PeerManager.ts"
import * as PeerStoreSqlite from "../../src/layers/PeerStoreSqlite.ts"
import { zero } from "../../src/services/PeerManager.ts"
import { a, self } from "./PeerManager.fixtures.ts"

const HOUR = 3_600_000
const subject = (text: string) => Result.getOrThrow(Ban.parseSubject(text))
const banOf = (text: string, until = HOUR, reason = "test"): Ban.Ban => ({ subject: subject(text), since: 0, until, reason })

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

// The probe reactor (channel 0x7f): its wire form, the receiver's exact accounting (in order,
// missing, duplicate or reordered, a new epoch), and two nodes running it on a memory network
// under TestClock, with its counters in the metric registry that /metrics formats.
import { create } from "@bufbuild/protobuf"
import { BytesValueSchema } from "@bufbuild/protobuf/wkt"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Metric } from "effect"
import * as PrometheusMetrics from "effect/observability/PrometheusMetrics"
import * as Probe from "../../src/cli/Probe.ts"
import * as Envelope from "../../src/domain/Envelope.ts"
import * as Assertions from "../../src/testing/Assertions.ts"
import * as TestNetwork from "../../src/testing/TestNetwork.ts"
import { eventually, settle, within } from "../../src/testing/Within.ts"

/** A fresh metric registry, so counts are this test's alone. */
const isolated = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.provideService(effect, Metric.MetricRegistry, new Map())

const count = (metric: Metric.Metric<number, { readonly count: number | bigint }>) => Effect.map(Metric.value(metric), (s) => Number(s.count))
const totals = Effect.all({
  sent: count(Probe.sentTotal),
  received: count(Probe.receivedTotal),
  missing: count(Probe.missingTotal),
  duplicateOrReordered: count(Probe.duplicateOrReorderedTotal)
})

const bytes = (value: Uint8Array) => create(BytesValueSchema, { value })

describe("probe wire form", () => {
  it("round-trips every kind, at the bounds of its fields", () => {
    for (const probe of [
      { kind: "ping", epoch: 0, seq: 1n, time: 0n },
      { kind: "pong", epoch: 2 ** 32 - 1, seq: 2n ** 64n - 1n, time: 2n ** 63n + 5n },
      { kind: "tick", epoch: 123456789, seq: 42n, time: 1_700_000_000_000_000_000n }
    ] as const) {
      assert.deepStrictEqual(Probe.decode(Probe.encode(probe)), probe)
    }
  })

  it("is 21 big-endian bytes: kind, epoch u32, seq u64, time u64", () => {
    const value = Probe.encode({ kind: "tick", epoch: 0x01020304, seq: 0x05n, time: 0x0607n }).value
    assert.deepStrictEqual([...value], [3, 1, 2, 3, 4, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 6, 7])
    assert.strictEqual(Probe.MESSAGE_SIZE, 21)
  })

  it("a too-short value or an unknown kind is ignored; a longer value is read by its first 21 bytes", () => {
    const good = Probe.encode({ kind: "ping", epoch: 9, seq: 3n, time: 7n }).value
    assert.isUndefined(Probe.decode(bytes(good.slice(0, 20))))
    assert.isUndefined(Probe.decode(bytes(new Uint8Array(0))))
    assert.isUndefined(Probe.decode(bytes(new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0, 9])))) // the old 9-byte ping
    for (const kind of [0, 4, 255]) assert.isUndefined(Probe.decode(bytes(Uint8Array.from(good, (b, i) => (i === 0 ? kind : b)))))
    const longer = new Uint8Array(25)
    longer.set(good)
    assert.deepStrictEqual(Probe.decode(bytes(longer)), { kind: "ping", epoch: 9, seq: 3n, time: 7n })
  })
})

describe("probe accounting", () => {
  /** Feeds (epoch, seq) pairs from one sender and tallies the verdicts. */
  const feed = (messages: ReadonlyArray<readonly [number, bigint]>, accounting = new Probe.Accounting()) => {
    const tally = { baseline: 0, inOrder: 0, missing: 0, duplicateOrReordered: 0 }
    for (const [epoch, seq] of messages) {
      const v = accounting.record("sender", epoch, seq)
      if (v._tag === "Baseline") tally.baseline++
      else if (v._tag === "InOrder") tally.inOrder++
      else if (v._tag === "Gap") tally.missing += Number(v.missing)
      else tally.duplicateOrReordered++
    }
    return tally
  }
  const seqs = (epoch: number, ...list: Array<number>) => list.map((s) => [epoch, BigInt(s)] as const)

  it("an in-order stream counts nothing missing", () => {
    assert.deepStrictEqual(feed(seqs(1, ...Array.from({ length: 100 }, (_, i) => i + 1))), { baseline: 1, inOrder: 99, missing: 0, duplicateOrReordered: 0 })
  })

  it("a dropped message counts one missing; a run of drops counts each", () => {
    assert.deepStrictEqual(feed(seqs(1, 1, 2, 4, 5)), { baseline: 1, inOrder: 2, missing: 1, duplicateOrReordered: 0 })
    assert.deepStrictEqual(feed(seqs(1, 1, 10)), { baseline: 1, inOrder: 0, missing: 8, duplicateOrReordered: 0 })
  })

  it("a repeated seq counts a duplicate; an older one counts as reordered, and the last seq stays", () => {
    assert.deepStrictEqual(feed(seqs(1, 1, 2, 2, 3)), { baseline: 1, inOrder: 2, missing: 0, duplicateOrReordered: 1 })
    // 3 arrives after 4: 4 counted 3 missing, then 3 came late.
    const accounting = new Probe.Accounting()
    assert.deepStrictEqual(feed(seqs(1, 1, 2, 4, 3, 5), accounting), { baseline: 1, inOrder: 2, missing: 1, duplicateOrReordered: 1 })
    assert.deepStrictEqual(accounting.get("sender"), { epoch: 1, last: 5n })
  })

  it("a new epoch (a restarted sender) resets the baseline, whatever its seq", () => {
    assert.deepStrictEqual(feed([...seqs(1, 1, 2, 3, 50), ...seqs(2, 1, 2), ...seqs(3, 900, 901)]), { baseline: 3, inOrder: 4, missing: 46, duplicateOrReordered: 0 })
    assert.deepStrictEqual(Probe.account({ epoch: 1, last: 50n }, 2, 1n), { state: { epoch: 2, last: 1n }, verdict: { _tag: "Baseline" } })
  })

  it("senders are tracked separately, and the least recently heard is forgotten beyond the bound", () => {
    const accounting = new Probe.Accounting(2)
    accounting.record("a", 1, 1n)
    accounting.record("b", 1, 1n)
    assert.deepStrictEqual(accounting.record("a", 1, 2n), { _tag: "InOrder" })
    accounting.record("c", 1, 1n)
    assert.strictEqual(accounting.size, 2)
    assert.isUndefined(accounting.get("b"))
    assert.deepStrictEqual(accounting.record("b", 1, 5n), { _tag: "Baseline" })
  })
})

describe("probe reactor (memory network, TestClock)", () => {
  it.effect("two probes exchange numbered messages every 100 ms and pings once a second: nothing missing, round trips timed, counters on /metrics", () =>
    isolated(Effect.gen(function* () {
      const net = yield* TestNetwork.make({ nodes: 2, channels: [Probe.descriptor] })
      const [a, b] = net.nodes
      const pa = yield* Probe.run(a!.router, { epoch: 1 })
      const pb = yield* Probe.run(b!.router, { epoch: 2 })
      yield* settle("2 seconds")
      const [ca, cb] = [yield* pa.take, yield* pb.take]
      // 10 messages a second each way (2 of them pings, answered by 2 pongs), ±1 at the edges.
      for (const c of [ca, cb]) {
        assert.isAtLeast(c.sent, 21)
        assert.isAtMost(c.sent, 25)
        assert.strictEqual(c.missing, 0)
        assert.strictEqual(c.duplicateOrReordered, 0)
        assert.isAtLeast(c.rtts.length, 2)
      }
      // Nothing is in flight once time stops: what one sent, the other received.
      assert.strictEqual(ca.sent, cb.received)
      assert.strictEqual(cb.sent, ca.received)
      assert.deepStrictEqual(yield* totals, { sent: ca.sent + cb.sent, received: ca.received + cb.received, missing: 0, duplicateOrReordered: 0 })
      const text = yield* PrometheusMetrics.format({ prefix: "cometbft" })
      for (const name of ["sent", "received", "missing", "duplicate_or_reordered"]) assert.match(text, new RegExp(`^cometbft_p2p_probe_${name}_total \\d+$`, "m"))
    }).pipe(Effect.scoped)))

  it.effect("a peer's numbered messages are accounted exactly: a gap, a duplicate, a late one, a new epoch; malformed ones are ignored", () =>
    isolated(Effect.gen(function* () {
      const net = yield* TestNetwork.make({ nodes: 2, channels: [Probe.descriptor] })
      const [a, b] = net.nodes
      yield* Probe.run(a!.router, { epoch: 77 })
      // Node b speaks the probe's wire form by hand.
      const channel = yield* b!.router.openChannel(Probe.descriptor)
      const inbox = yield* Assertions.probe(channel.messages)
      const send = (value: Uint8Array) => channel.send(Envelope.to(a!.nodeId, bytes(value)))
      const message = (kind: Probe.Probe["kind"], epoch: number, seq: number) => Probe.encode({ kind, epoch, seq: BigInt(seq), time: 0n }).value
      for (const seq of [1, 2, 4, 4, 3]) yield* send(message("tick", 5, seq)) // 3 missing, 4 twice, 3 late
      yield* send(new Uint8Array(20)) // too short
      yield* send(Uint8Array.from(message("tick", 5, 6), (x, i) => (i === 0 ? 9 : x))) // unknown kind
      for (const seq of [100, 101]) yield* send(message("tick", 6, seq)) // restarted: a new baseline
      yield* send(Probe.encode({ kind: "ping", epoch: 6, seq: 102n, time: 123n }).value)
      yield* eventually("1 second", "a to take b's 8 messages", Effect.map(count(Probe.receivedTotal), (n) => n === 8))
      const t = yield* totals
      assert.deepStrictEqual([t.received, t.missing, t.duplicateOrReordered], [8, 1, 2])
      // What a sends b: its epoch, seqs from 1 up without a gap, and a pong echoing the ping's time.
      const seen: Array<Probe.Probe> = []
      yield* within("2 seconds", "a's pong", Effect.gen(function* () {
        while (!seen.some((p) => p.kind === "pong")) {
          const m = yield* inbox.take
          seen.push(Probe.decode(m.message)!)
        }
      }))
      assert.isTrue(seen.every((p) => p.epoch === 77))
      assert.deepStrictEqual(seen.map((p) => p.seq), seen.map((_, i) => BigInt(i + 1)))
      assert.strictEqual(seen.find((p) => p.kind === "pong")!.time, 123n)
    }).pipe(Effect.scoped)))

  it.effect("a sender keeps counting per peer across a reconnect, so its peer sees no duplicates", () =>
    isolated(Effect.gen(function* () {
      const net = yield* TestNetwork.make({ nodes: 2, channels: [Probe.descriptor] })
      const [a, b] = net.nodes
      const pa = yield* Probe.run(a!.router, { epoch: 1 })
      const pb = yield* Probe.run(b!.router, { epoch: 2 })
      yield* settle("1 second")
      const before = yield* totals
      assert.isAbove(before.received, 0)
      yield* a!.peerManager.ban(b!.nodeId, { duration: "1 second", reason: "test: drop the connection" })
      yield* eventually("5 seconds", "a and b to part", Effect.map(a!.router.peers, (p) => p.length === 0))
      yield* settle("500 millis") // both probes see the peer gone and close its outbox
      assert.deepStrictEqual([(yield* a!.router.peers).length, (yield* b!.router.peers).length], [0, 0])
      yield* eventually("30 seconds", "a and b to reconnect", Effect.map(Effect.all([a!.router.peers, b!.router.peers]), ([x, y]) => x.length === 1 && y.length === 1))
      yield* settle("1 second")
      const after = yield* totals
      assert.isAbove(after.received, before.received + 10)
      assert.strictEqual(after.duplicateOrReordered, 0)
      const [ca, cb] = [yield* pa.take, yield* pb.take]
      // Lost with the connection (handed to the router as it closed) and counted missing; no more.
      assert.strictEqual(ca.sent + cb.sent, ca.received + cb.received + ca.missing + cb.missing)
    }).pipe(Effect.scoped)))
})

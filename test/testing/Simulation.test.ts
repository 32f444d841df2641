/**
 * Scenarios on the simulator (docs/SIMULATION.md): full nodes (PEX, CometBFT limits, the production
 * retry schedule) under partitions, pauses, crashes and shaped links, all in virtual time. Each
 * test states the bound it checks and where the bound comes from.
 */
import { assert, describe, it } from "@effect/vitest"
import { Clock, Effect, Fiber, Stream } from "effect"
import { TestClock } from "effect/testing"
import * as Envelope from "../../src/domain/Envelope.ts"
import * as Simulation from "../../src/testing/Simulation.ts"
import { str, stringChannel } from "../layers/Router.fixtures.ts"

// Keepalive of the simulated connections: a cut connection closes 15 to 25 s after the cut.
const network = { pingInterval: "10 seconds", pongTimeout: "5 seconds" } as const
const KEEPALIVE_MAX = 10_000 + 5_000
// A dial across a cut waits for the router's dial timeout; the retry schedule of a non-persistent
// address is 250 ms × 2^(failures-1) + up to 5 s of jitter, capped at 30 min (5 min if persistent).
const DIAL_TIMEOUT = 3_000
const JITTER = 5_000

/** The longest a node can wait after a cut of `cutMillis` heals before it redials: the pending backoff. */
const healBound = (cutMillis: number, cap = 30 * 60_000) => Math.min(2 * cutMillis + 250, cap) + JITTER + DIAL_TIMEOUT + 1_000

const mesh = (sim: Simulation.Simulation, peers: number) => sim.everyNode((n) => n.peerCount === peers)

const now = Clock.currentTimeMillis

describe("Simulation", () => {
  it.effect("six nodes told of one ordinary node find each other within PEX's first rounds", () =>
    Effect.gen(function* () {
      const sim = yield* Simulation.make({ nodes: 6, network })
      // Each node asks the bootstrap node for addresses when it connects and dials what it learns.
      yield* sim.eventually("10 seconds", "a full mesh", mesh(sim, 5))
      const events = yield* sim.events(3)
      assert.isTrue(events.some((e) => /peer n0 up/.test(e)), events.join("\n"))
    }).pipe(Effect.scoped))

  it.effect("a partition closes the cut connections by keepalive, and healing re-meshes within the retry schedule", () =>
    Effect.gen(function* () {
      const sim = yield* Simulation.make({ nodes: 6, network })
      yield* sim.eventually("10 seconds", "a full mesh", mesh(sim, 5))
      const cutAt = yield* now
      yield* sim.partition([0, 1, 2], [3, 4, 5])
      yield* sim.eventually(KEEPALIVE_MAX + 1_000, "two islands of three", mesh(sim, 2))
      yield* sim.run("20 seconds")
      assert.isTrue(yield* mesh(sim, 2), "no connection crosses the partition while it lasts")
      const healedAt = yield* now
      yield* sim.heal
      yield* sim.eventually(healBound(healedAt - cutAt), "the full mesh again", mesh(sim, 5))
      const keepalive = (yield* sim.events(0)).filter((e) => e.includes("keepalive"))
      assert.strictEqual(keepalive.length, 3, keepalive.join("\n"))
    }).pipe(Effect.scoped))

  it.effect("a one-way cut ends the connections it crosses (no pongs come back) and heals", () =>
    Effect.gen(function* () {
      const sim = yield* Simulation.make({ nodes: 4, network })
      yield* sim.eventually("10 seconds", "a full mesh", mesh(sim, 3))
      const cutAt = yield* now
      yield* sim.cut([0], [1, 2, 3])
      // n0's messages go nowhere, the others' still reach it: a connection needs both ways.
      yield* sim.eventually(KEEPALIVE_MAX + 1_000, "n0 alone", Effect.map(sim.snapshot(0), (s) => s.peerCount === 0))
      assert.isTrue(yield* sim.everyNode((n) => n.peerCount === 2, (n) => n.index !== 0))
      yield* sim.run("10 seconds")
      assert.strictEqual((yield* sim.snapshot(0)).peerCount, 0, "no connection survives a one-way cut")
      const healedAt = yield* now
      yield* sim.heal
      yield* sim.eventually(healBound(healedAt - cutAt), "the full mesh again", mesh(sim, 3))
    }).pipe(Effect.scoped))

  it.effect("a paused node is dropped by keepalive and reconnects after it resumes", () =>
    Effect.gen(function* () {
      const sim = yield* Simulation.make({ nodes: 4, network })
      yield* sim.eventually("10 seconds", "a full mesh", mesh(sim, 3))
      const pausedAt = yield* now
      yield* sim.pause(2)
      // Its peers hear nothing from it: the next ping goes unanswered and the connection closes.
      yield* sim.eventually(KEEPALIVE_MAX + 1_000, "n2 dropped by everyone", sim.everyNode((n) => n.peerCount === 2))
      const dropped = (yield* now) - pausedAt
      assert.isAtLeast(dropped, 5_000, "not before the pong timeout")
      yield* sim.run("30 seconds")
      const resumedAt = yield* now
      yield* sim.resume(2)
      yield* sim.eventually(healBound(resumedAt - pausedAt), "n2 back with its three peers", mesh(sim, 3))
      const log = (yield* sim.events(2)).join("\n")
      assert.match(log, /paused/)
      assert.match(log, /resumed/)
      assert.match(log, /keepalive: no pong/)
    }).pipe(Effect.scoped))

  it.effect("a crashed node's peers see it go at once; restarted with its key and peer store it finds them again without its bootstrap node", () =>
    Effect.gen(function* () {
      const sim = yield* Simulation.make({ nodes: 5, network })
      yield* sim.eventually("10 seconds", "a full mesh", mesh(sim, 4))
      // The bootstrap node goes for good: only the peer store can bring n4 back to the others.
      yield* sim.crash(0)
      yield* sim.crash(4)
      assert.isTrue(yield* sim.everyNode((n) => n.peerCount === 2), "the survivors lose both peers at once, no keepalive wait")
      const stored = yield* sim.node(4).peerStore.load
      assert.isAtLeast(stored.length, 3, "the crashed node's store still holds its peers")
      yield* sim.run("5 seconds")
      yield* sim.restart(4)
      assert.strictEqual(sim.node(4).restarts, 1)
      yield* sim.eventually("30 seconds", "n4 back with n1, n2, n3", Effect.map(sim.snapshot(4), (s) => s.peerCount === 3))
      const failed = yield* Effect.flip(sim.node(0).router)
      assert.match(failed.message, /n0 is crashed/)
    }).pipe(Effect.scoped))

  it.effect("persistent peers come back after a 30-minute partition within the persistent retry cap", () =>
    Effect.gen(function* () {
      const sim = yield* Simulation.make({
        nodes: 4,
        network,
        node: (i) => (i === 0 ? { persistentPeers: [1] } : i === 1 ? { persistentPeers: [0] } : {})
      })
      yield* sim.eventually("10 seconds", "a full mesh", mesh(sim, 3))
      yield* sim.isolate(0)
      yield* sim.run("30 minutes")
      assert.strictEqual((yield* sim.snapshot(0)).peerCount, 0)
      yield* sim.heal
      // Persistent addresses back off to maxRetryTimePersistent (5 min) at most, plus jitter and a dial.
      yield* sim.eventually(5 * 60_000 + JITTER + DIAL_TIMEOUT + 1_000, "n0 and n1 connected again", sim.connected(0, 1), "1 second")
    }).pipe(Effect.scoped), 60_000)

  it.effect("an address that keeps refusing is retried with growing back-off while the other addresses are dialed", () =>
    Effect.gen(function* () {
      // n0 admits no inbound peer at all (CometBFT's max_num_inbound_peers = 0). n4 knows n0 first.
      const sim = yield* Simulation.make({
        nodes: 5,
        network,
        node: (i) => (i === 0 ? { maxInboundPeers: 0 } : i === 4 ? { bootstrapPeers: [0, 1, 2, 3] } : { bootstrapPeers: [1] })
      })
      yield* sim.eventually("10 seconds", "n4 connected to n1, n2 and n3", Effect.map(sim.snapshot(4), (s) => s.outbound === 3))
      yield* sim.run("10 minutes")
      const dials = (yield* sim.events(4)).filter((e) => e.includes("connection to n0 opened")).length
      // Each refusal ends an outbound connection within minConnectionDuration (10 s), which counts as a
      // failed dial: 250 ms × 2^(k-1) + jitter apart, so at most about log2(10 min / 250 ms) + 1 tries.
      assert.isAtLeast(dials, 2, "n0 is retried")
      assert.isAtMost(dials, 13, `n0 was dialed ${dials} times in 10 minutes`)
      assert.strictEqual((yield* sim.snapshot(4)).outbound, 3)
    }).pipe(Effect.scoped))

  it.effect("a stalled or lossy link to one peer does not hold back broadcasts to the others", () =>
    Effect.gen(function* () {
      const channel = stringChannel(0x30)
      const sim = yield* Simulation.make({ nodes: 4, network, node: () => ({ channels: [channel] }) })
      const channels = yield* Effect.forEach(sim.nodes, (n) => Effect.flatMap(n.router, (r) => r.openChannel(channel)))
      yield* sim.eventually("10 seconds", "a full mesh", mesh(sim, 3))
      const texts = (from: number) => Array.from({ length: 200 }, (_, i) => `m${from + i}`)
      /** Broadcasts 200 messages from n0 while n2 and n3 collect them; the virtual time the sends took. */
      const round = (from: number) =>
        Effect.gen(function* () {
          const collect = (i: number) => Effect.forkChild(Stream.runCollect(Stream.take(channels[i]!.messages, 200)))
          const at2 = yield* collect(2)
          const at3 = yield* collect(3)
          const start = yield* now
          const sender = yield* Effect.forkChild(Effect.gen(function* () {
            for (const text of texts(from)) yield* channels[0]!.send(Envelope.broadcast(str(text)))
            return (yield* now) - start
          }))
          const done = (f: Fiber.Fiber<unknown, unknown>) => Effect.sync(() => f.pollUnsafe() !== undefined)
          yield* sim.eventually("30 seconds", "the broadcasts out and received by n2 and n3", Effect.map(Effect.all([done(sender), done(at2), done(at3)]), (d) => d.every(Boolean)), "10 millis")
          const values = (f: Fiber.Fiber<ReadonlyArray<Envelope.Inbound<{ value: string }>>, unknown>) => Effect.map(Fiber.join(f), (got) => got.map((e) => e.message.value))
          return { sent: yield* Fiber.join(sender), at2: yield* values(at2), at3: yield* values(at3) }
        })

      // n1 receives nothing. Its queue fills, the broadcaster waits for it once (broadcastTimeout,
      // 1 s) and then skips it: 200 broadcasts cost one timeout, not one per message.
      yield* sim.link(0, 1).set({ stalled: true })
      const first = yield* round(0)
      assert.isAtMost(first.sent, 1_100, `broadcasting past a stalled peer took ${first.sent} ms of virtual time`)
      assert.deepStrictEqual(first.at3, texts(0))
      assert.deepStrictEqual(first.at2, texts(0))

      // n2's link now delays and loses messages: lost ones are retransmitted (TCP), so n2 gets all of
      // them, in order, at its link's pace; n1 stays skipped.
      yield* sim.link(0, 2).set({ latency: "20 millis", jitter: "10 millis", loss: 0.05 })
      const second = yield* round(200)
      assert.deepStrictEqual(second.at3, texts(200))
      assert.deepStrictEqual(second.at2, texts(200), "loss delays, it never reorders or drops")
      assert.isAtMost(second.sent, 5_000, `broadcasting over a lossy link took ${second.sent} ms of virtual time`)
    }).pipe(Effect.scoped))

  it.effect("the same seed replays the same run, event for event (each run on a fresh TestClock)", () =>
    Effect.gen(function* () {
      const scenario = (seed: number) =>
        Effect.gen(function* () {
          const sim = yield* Simulation.make({ nodes: 5, seed, network })
          yield* sim.links(1, 2).set({ latency: "30 millis", jitter: "40 millis", loss: 0.1 })
          yield* sim.run("5 seconds")
          yield* sim.partition([0, 1], [2, 3, 4])
          yield* sim.run("40 seconds")
          yield* sim.heal
          yield* sim.run("20 seconds")
          return yield* sim.events()
        }).pipe(Effect.scoped, Effect.provide(TestClock.layer()))
      // The first simulation in a process can differ at start-up (see docs/SIMULATION.md, "Replays").
      yield* scenario(7)
      const first = yield* scenario(7)
      const again = yield* scenario(7)
      assert.isAbove(first.length, 30)
      assert.deepStrictEqual(again, first)
    }))

  it.effect("closing the simulation's scope stops every node, delivery and keepalive timer", () =>
    Effect.gen(function* () {
      const channel = stringChannel(0x30)
      const network$ = yield* Effect.scoped(Effect.gen(function* () {
        const sim = yield* Simulation.make({ nodes: 3, network, node: () => ({ channels: [channel] }) })
        const channels = yield* Effect.forEach(sim.nodes, (n) => Effect.flatMap(n.router, (r) => r.openChannel(channel)))
        // n1 and n2 learn of each other at their second PEX request to n0 (11 s apart at least).
        yield* sim.eventually("30 seconds", "a full mesh", mesh(sim, 2))
        // A keepalive timer pending on a stalled link, and messages in flight on a slow one.
        yield* sim.link(0, 1).set({ stalled: true })
        yield* sim.link(0, 2).set({ latency: "5 seconds" })
        for (let i = 0; i < 5; i++) yield* channels[0]!.send(Envelope.broadcast(str(`m${i}`)))
        yield* sim.run("1 second")
        assert.isAbove(yield* sim.network.connections, 0)
        return sim.network
      }))
      const events = (yield* network$.events()).length
      yield* TestClock.adjust("1 hour")
      assert.strictEqual(yield* network$.connections, 0, "every connection closed with its node")
      assert.strictEqual((yield* network$.events()).length, events, "nothing ran after the scope closed (no node dialed, nothing delivered)")
    }))

  it.effect("a wait that runs out reports every node", () =>
    Effect.gen(function* () {
      const sim = yield* Simulation.make({ nodes: 3, network })
      yield* sim.isolate(2)
      const error = yield* Effect.flip(sim.eventually("5 seconds", "n2 to have a peer", Effect.map(sim.snapshot(2), (s) => s.peerCount > 0)))
      assert.strictEqual(error._tag, "SimulationTimedOut")
      assert.match(error.message, /timed out after 5000 ms \(virtual\) waiting for n2 to have a peer/)
      assert.match(error.report, /n2 +up +0 peers/)
      assert.match(error.report, /n0 +up +1 peers \(\d out, \d in\): n1/)
    }).pipe(Effect.scoped))

  it.effect("misuse fails with a message naming the node and what to do", () =>
    Effect.gen(function* () {
      const sim = yield* Simulation.make({ nodes: 2, network })
      assert.match((yield* Effect.flip(sim.restart(1))).message, /n1 is running; crash it before restarting it/)
      assert.match((yield* Effect.flip(sim.resume(1))).message, /n1 is up, not paused/)
      const bad = yield* Effect.flip(sim.link(0, 1).set({ loss: 1.5 }))
      assert.strictEqual(bad._tag, "InvalidNetworkOptions")
      assert.match(bad.message, /loss/)
    }).pipe(Effect.scoped))
})

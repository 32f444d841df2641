import { it } from "@effect/vitest"
import { Effect } from "effect"
import { Simulation } from "effect-p2p/testing"

// Full nodes (PEX, CometBFT limits) on a simulated network, in virtual time: a run replays exactly.
it.effect("a partitioned network heals into one mesh", () =>
  Effect.gen(function* () {
    // Six nodes, each told only of n0. Cut connections close by keepalive within 10 + 5 s.
    const sim = yield* Simulation.make({ nodes: 6, network: { pingInterval: "10 seconds", pongTimeout: "5 seconds" } })
    const mesh = sim.everyNode((n) => n.peerCount === 5)
    yield* sim.eventually("10 seconds", "a full mesh", mesh)
    yield* sim.partition([0, 1, 2], [3, 4, 5])
    yield* sim.link(0, 1).set({ latency: "50 millis", jitter: "10 millis", loss: 0.1 })
    yield* sim.eventually("20 seconds", "two islands", sim.everyNode((n) => n.peerCount === 2))
    yield* sim.crash(4)
    yield* sim.run("1 minute")
    yield* sim.heal
    yield* sim.restart(4)
    // Back-off after a 75 s cut is at most 2 × 75 s + 5 s jitter; a failing wait prints every node.
    yield* sim.eventually("3 minutes", "the full mesh again", mesh)
  }).pipe(Effect.scoped))

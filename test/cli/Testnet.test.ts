import { assert, describe, it } from "@effect/vitest"
import { readdirSync } from "node:fs"
import { tmpdir } from "node:os"
import { Cause, Effect, Exit, Fiber, Result } from "effect"
import { Command } from "effect/cli"
import * as Probe from "../../src/cli/Probe.ts"
import * as Testnet from "../../src/cli/Testnet.ts"
import { settle, within } from "../../src/testing/Within.ts"
import { cliLayer } from "./helpers.ts"

/** Runs a testnet with no output, collecting its samples. */
const collect = (options: Omit<Testnet.TestnetOptions, "onSample" | "output">) =>
  Effect.gen(function* () {
    const samples: Array<Testnet.Sample> = []
    const result = yield* Testnet.runTestnet({ ...options, output: "none", onSample: (s) => Effect.sync(() => void samples.push(s)) })
    return { result, samples }
  })

const testnetDirs = () => readdirSync(tmpdir()).filter((d) => d.startsWith("effect-p2p-testnet-"))


describe("testnet", () => {
  it.effect("memory: 6 nodes told only of node 0 form a full mesh, and the probes report messages and round trips", () =>
    Effect.gen(function* () {
      const { result, samples } = yield* within("30 seconds", "the testnet to finish", collect({ nodes: 6, transport: "memory", duration: 8, network: "tn-test" }))
      assert.strictEqual(result.nodes.length, 6)
      assert.strictEqual(new Set(result.nodes.map((n) => n.nodeId)).size, 6)
      for (const n of result.nodes) assert.strictEqual(n.address, `memory:${n.nodeId}`)
      assert.strictEqual(result.samples, 8)
      assert.deepStrictEqual(samples.map((s) => Math.round(s.elapsed)), [1, 2, 3, 4, 5, 6, 7, 8])
      const last = result.last!
      assert.deepStrictEqual(last.nodes.map((n) => n.peers), [5, 5, 5, 5, 5, 5])
      assert.deepStrictEqual(last.peers, { min: 5, avg: 5, max: 5 })
      // Every node pings its 5 peers once a second and answers their 5 pings: 60 messages a second.
      assert.strictEqual(Math.round(last.messagesPerSecond), 60)
      for (const n of last.nodes) {
        assert.strictEqual(Math.round(n.messagesIn), 10)
        assert.strictEqual(Math.round(n.messagesOut), 10)
        assert.strictEqual(n.roundTrips, 5)
        assert.isAtLeast(n.rttMean!, 0)
        assert.isAtLeast(n.rttMax!, n.rttMean!)
      }
      assert.strictEqual(last.rtt.count, 30)
      assert.isDefined(last.rtt.p50)
      assert.match(Testnet.formatLine(last), /^t=8s nodes=6 peers min\/avg\/max=5\/5\.0\/5 msgs\/s=60 rtt_ms p50=\d+\.\d\d max=\d+\.\d\d$/)
      const view = Testnet.renderView(last, { nodes: 6, transport: "memory", duration: 8, network: "tn-test", output: "live" })
      assert.match(view, /6 nodes over memory, network tn-test/)
      assert.match(view, /NODE\s+ID\s+MONIKER\s+PEERS\s+IN\/S\s+OUT\/S\s+RTT MEAN\s+RTT MAX/)
      assert.strictEqual(view.split("\n").length, 4 + 6)
      assert.match(Testnet.renderView(last, { nodes: 6, transport: "memory", duration: 8, network: "tn-test", output: "live" }, 4), /\.\.\. and 3 more$/)
    }))

  it.live("tcp: 3 nodes on loopback mesh within a few seconds, and their temporary homes are removed", () =>
    Effect.gen(function* () {
      const before = new Set(testnetDirs())
      const { result, samples } = yield* collect({ nodes: 3, transport: "tcp", duration: 2.5 })
      for (const n of result.nodes) assert.match(n.address, new RegExp(`^mconn://${n.nodeId}@127\\.0\\.0\\.1:\\d+$`))
      assert.deepStrictEqual(samples.map((s) => Math.round(s.elapsed * 2) / 2), [1, 2, 2.5])
      assert.deepStrictEqual(result.last!.nodes.map((n) => n.peers), [2, 2, 2])
      assert.isAbove(samples.reduce((a, s) => a + s.rtt.count, 0), 0)
      assert.isAbove(result.last!.messagesPerSecond, 0)
      assert.deepStrictEqual(testnetDirs().filter((d) => !before.has(d)), [])
    }))

  it.effect("without a duration it runs until interrupted, then stops sampling", () =>
    Effect.gen(function* () {
      const samples: Array<Testnet.Sample> = []
      const fiber = yield* Effect.forkChild(Testnet.runTestnet({ nodes: 2, transport: "memory", output: "none", onSample: (s) => Effect.sync(() => void samples.push(s)) }))
      yield* within("3500 millis", "three samples", Effect.gen(function* () {
        while (samples.length < 3) yield* Effect.sleep(100)
      }))
      const exit = yield* Fiber.interrupt(fiber).pipe(Effect.andThen(Fiber.await(fiber)))
      assert.isTrue(Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause))
      const count = samples.length
      yield* settle("3 seconds")
      assert.strictEqual(samples.length, count)
    }))

  it("a bad option fails with a ConfigError naming the flag", () => {
    const messageOf = (options: Testnet.TestnetOptions) => {
      const r = Testnet.validateOptions(options)
      return Result.isFailure(r) ? `${r.failure.key}|${r.failure.message}` : undefined
    }
    assert.match(messageOf({ nodes: 0 })!, /^--nodes\|--nodes: must be an integer from 1 to 200, got 0$/)
    assert.match(messageOf({ nodes: 201 })!, /^--nodes\|--nodes: /)
    assert.match(messageOf({ nodes: 2.5 })!, /^--nodes\|/)
    assert.match(messageOf({ nodes: 3, duration: 0 })!, /^--duration\|--duration: must be a positive number/)
    assert.match(messageOf({ nodes: 3, duration: Number.NaN })!, /^--duration\|/)
    assert.match(messageOf({ nodes: 3, network: "" })!, /^--network\|--network: /)
    assert.match(messageOf({ nodes: 3, network: "has space" })!, /^--network\|/)
    assert.match(messageOf({ nodes: 3, transport: "udp" as Testnet.TestnetTransport })!, /^--transport\|/)
    assert.isUndefined(messageOf({ nodes: 200, transport: "memory", duration: 0.5, network: "x" }))
  })

  it.effect("the command fails with the ConfigError for a bad flag value", () =>
    Effect.gen(function* () {
      const run = (args: ReadonlyArray<string>) =>
        Command.runWith(Testnet.testnetCommand, { version: "test" })(args).pipe(Effect.provide(cliLayer), Effect.exit)
      for (const [args, flag] of [[["--nodes", "0"], "--nodes"], [["--nodes", "500"], "--nodes"], [["--nodes", "3", "--duration", "0"], "--duration"]] as const) {
        const exit = yield* run(args)
        assert.isTrue(Exit.isFailure(exit))
        if (Exit.isFailure(exit)) {
          const error = Cause.squash(exit.cause) as { readonly _tag: string; readonly key: string; readonly message: string }
          assert.strictEqual(error._tag, "ConfigError")
          assert.strictEqual(error.key, flag)
          assert.isTrue(error.message.startsWith(`${flag}: `))
        }
      }
    }))

  it("probe messages round-trip through their wire form (more in Probe.test.ts)", () => {
    const ping = { kind: "ping", epoch: 7, seq: 1n, time: 0n } as const
    assert.deepStrictEqual(Probe.decode(Probe.encode(ping)), ping)
    assert.isUndefined(Probe.decode({ ...Probe.encode(ping), value: new Uint8Array(9) }))
  })
})

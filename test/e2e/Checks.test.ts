// The e2e checks' pure logic: the heal bound, "whole again", probe accounting, flatness, logs.
import { describe, expect, it } from "vitest"
import * as Checks from "../../src/e2e/Checks.ts"
import { nftRules } from "../../src/e2e/Fabric.ts"
import { parse } from "../../src/e2e/Manifest.ts"
import { parseMetrics, metricSum, netInfoPeers } from "../../src/e2e/Nodes.ts"

const checks = parse(`[nodes]\ncount = 2\n`).checks

const view = (peers: number, names: ReadonlyArray<string> = [], up = true): Checks.NodeView => ({ up, peers, peerNames: new Set(names) })

describe("heal bound", () => {
  it("is K + min(2P + 250 ms, cap) + 5 s + 3 s + 1 s (+ startup) + slack", () => {
    const b = Checks.healBound(checks, "partition", 10_000)
    expect(b.keepalive).toBe(105_000)
    expect(b.backoff).toBe(20_250)
    expect(b.total).toBe(105_000 + 20_250 + 5_000 + 3_000 + 1_000 + 0 + 2_000)
  })

  it("has no keepalive term and adds the start for a killed node", () => {
    const b = Checks.healBound(checks, "kill", 5_000)
    expect(b.keepalive).toBe(0)
    expect(b.startup).toBe(10_000)
    expect(b.total).toBe(10_250 + 5_000 + 3_000 + 1_000 + 10_000 + 2_000)
  })

  it("caps the back-off at maxRetryTime, or maxRetryTimePersistent for persistent peers", () => {
    expect(Checks.healBound(checks, "isolate", 3_600_000).backoff).toBe(30 * 60_000)
    expect(Checks.healBound(checks, "isolate", 3_600_000, true).backoff).toBe(5 * 60_000)
  })

  it("check.heal_bound replaces the total", () => {
    const fixed = parse(`[nodes]\ncount = 2\n[check]\nheal_bound = "45s"\n`).checks
    expect(Checks.healBound(fixed, "partition", 10_000).total).toBe(45_000)
  })

  it("follows a shorter keepalive when the manifest gives it", () => {
    const short = parse(`[nodes]\ncount = 2\n[check]\nping_interval = "2s"\npong_timeout = "1s"\n`).checks
    expect(Checks.healBound(short, "pause", 0).keepalive).toBe(3_000)
  })
})

describe("whole again", () => {
  const baseline = new Map([["n0", 2], ["n1", 2], ["n2", 2]])

  it("is whole when every node is up with at least its baseline", () => {
    const w = Checks.wholeAgain(baseline, new Map([["n0", view(2)], ["n1", view(3)], ["n2", view(2)]]))
    expect(w).toEqual({ whole: true, lacking: [] })
  })

  it("names nodes down or short of peers", () => {
    const w = Checks.wholeAgain(baseline, new Map([["n0", view(1)], ["n1", view(0, [], false)]]))
    expect(w.whole).toBe(false)
    expect(w.lacking).toEqual(["n0 1/2 peers", "n1 down", "n2 down"])
  })

  it("requires persistent peers that are up", () => {
    const views = new Map([["n0", view(2, ["n2", "n3"])], ["n1", view(2, ["n0", "n2"])], ["n2", view(2, ["n0", "n1"])], ["n3", view(0, [], false)]])
    const persistent = new Map([["n0", ["n1", "n3"]]])
    const w = Checks.wholeAgain(baseline, views, persistent)
    // n3 is down, so only n1 is required
    expect(w.lacking).toEqual(["n0 lacks persistent n1"])
  })

  it("settled: the same non-zero counts over the last n samples", () => {
    const s = (a: number, b: number) => new Map([["n0", a], ["n1", b]])
    expect(Checks.settled([s(1, 1), s(2, 2), s(2, 2)], 3)).toBe(false)
    expect(Checks.settled([s(1, 1), s(2, 2), s(2, 2), s(2, 2)], 3)).toBe(true)
    expect(Checks.settled([s(0, 0), s(0, 0), s(0, 0)], 3)).toBe(false)
    expect(Checks.settled([s(2, 2), s(2, 2)], 3)).toBe(false)
  })
})

describe("probe accounting", () => {
  const sample = (t: number, node: string, incarnation: number, sent: number, received: number, missing: number, duplicates = 0): Checks.ProbeSample => ({ t, node, incarnation, sent, received, missing, duplicates })

  it("adds increments and attributes missing messages to fault windows", () => {
    const samples = [
      sample(1_000, "n0", 1, 10, 10, 0),
      sample(2_000, "n0", 1, 20, 20, 0),
      sample(11_000, "n0", 1, 110, 105, 3), // counted between 2 s and 11 s: touches the window 5-9 s
      sample(20_000, "n0", 1, 200, 190, 5) // +2 between 11 s and 20 s: outside
    ]
    const p = Checks.accountProbe(samples, [{ start: 5_000, end: 9_000 }])
    expect(p.sent).toBe(200)
    expect(p.received).toBe(190)
    expect(p.missingDuringFaults).toBe(3)
    expect(p.missingOutside).toBe(2)
    expect(p.outside).toEqual([{ t: 20_000, node: "n0", missing: 2 }])
  })

  it("a restarted node's counters start again from zero", () => {
    const samples = [
      sample(1_000, "n1", 1, 50, 50, 0, 0),
      sample(2_000, "n1", 1, 60, 60, 0, 0),
      sample(4_000, "n1", 2, 5, 5, 0, 1) // new process: 5 more sent, 1 duplicate
    ]
    const p = Checks.accountProbe(samples, [])
    expect(p.sent).toBe(65)
    expect(p.duplicates).toBe(1)
    expect(p.missingOutside).toBe(0)
  })

  it("fault windows run from the start to whole again (or the bound) plus grace", () => {
    expect(Checks.faultWindow(10_000, 20_000, 22_000, 60_000, 5_000)).toEqual({ start: 10_000, end: 27_000 })
    expect(Checks.faultWindow(10_000, 20_000, undefined, 60_000, 5_000)).toEqual({ start: 10_000, end: 85_000 })
  })
})

describe("resources and logs", () => {
  const series = (values: ReadonlyArray<number>, step = 60_000) => values.map((value, i) => ({ t: i * step, value }))

  it("flatness compares the peaks of the middle and last thirds after warm-up", () => {
    const flat = Checks.flatness(series(Array.from({ length: 30 }, () => 100)), 0, 0.1, 10 * 60_000)
    expect(flat).toMatchObject({ judged: true, ok: true, growth: 0 })
    const growing = Checks.flatness(series(Array.from({ length: 30 }, (_, i) => 100 + i * 2)), 0, 0.1, 10 * 60_000)
    expect(growing.judged).toBe(true)
    expect(growing.ok).toBe(false)
    // A heap climbing to a plateau in the first third, then a GC sawtooth: flat.
    const sawtooth = Checks.flatness(series(Array.from({ length: 30 }, (_, i) => (i < 10 ? 150 + i * 12 : i % 3 === 0 ? 180 : 280))), 0, 0.1, 10 * 60_000)
    expect(sawtooth.ok).toBe(true)
    const short = Checks.flatness(series([100, 200, 300]), 0, 0.1, 10 * 60_000)
    expect(short.judged).toBe(false)
  })

  it("fds get an absolute allowance", () => {
    const fds = Checks.flatness(series([...Array.from({ length: 15 }, () => 20), ...Array.from({ length: 15 }, () => 23)]), 0, 0.1, 60_000, 2)
    expect(fds.ok).toBe(true)
  })

  it("ERROR lines unless allowed", () => {
    const allow = [/expected thing/]
    expect(Checks.unexpectedError(`timestamp=x level=ERROR message="boom"`, allow)).toBe(true)
    expect(Checks.unexpectedError(`timestamp=x level=ERROR message="expected thing"`, allow)).toBe(false)
    expect(Checks.unexpectedError(`timestamp=x level=INFO message="ERROR in text"`, allow)).toBe(false)
    expect(Checks.unexpectedError(`{"level":"ERROR","message":"x"}`, [])).toBe(true)
  })
})

describe("node answers and rules", () => {
  it("reads metrics and net_info", () => {
    const m = parseMetrics(`# HELP x\ncometbft_p2p_peers 4\ncometbft_p2p_probe_missing_total{peer="a"} 2\ncometbft_p2p_probe_missing_total{peer="b"} 3\n`)
    expect(metricSum(m, "cometbft_p2p_peers")).toBe(4)
    expect(metricSum(m, "cometbft_p2p_probe_missing_total")).toBe(5)
    expect(metricSum(m, "cometbft_p2p_nope")).toBeUndefined()
    expect(netInfoPeers(JSON.stringify({ result: { peers: [{ node_info: { id: "ab" } }, { node_info: { id: "cd" } }] } }))).toEqual(["ab", "cd"])
  })

  it("nft rules for partitions, one-way cuts, isolation and loss", () => {
    const m = parse(`[nodes]\ncount = 3\n[[perturbation]]\nat = "1s"\nkind = "partition"\ngroups = [["n0"], ["n1", "n2"]]\n[[perturbation]]\nat = "2s"\nkind = "one_way"\nfrom = ["n0"]\nto = ["n2"]\n[[perturbation]]\nat = "3s"\nkind = "isolate"\nnodes = ["n1"]\n[[perturbation]]\nat = "4s"\nkind = "loss"\npercent = 25\n`)
    const ip = (n: string) => `10.77.0.${10 + Number(n.slice(1))}`
    const all = ["10.77.0.10", "10.77.0.11", "10.77.0.12"]
    expect(nftRules(m.faults[0]!, ip, all)).toEqual([
      "ip saddr { 10.77.0.10 } ip daddr { 10.77.0.11, 10.77.0.12 } drop",
      "ip saddr { 10.77.0.11, 10.77.0.12 } ip daddr { 10.77.0.10 } drop"
    ])
    expect(nftRules(m.faults[1]!, ip, all)).toEqual(["ip saddr { 10.77.0.10 } ip daddr { 10.77.0.12 } drop"])
    expect(nftRules(m.faults[2]!, ip, all)).toEqual(["ip saddr { 10.77.0.11 } drop", "ip daddr { 10.77.0.11 } drop"])
    expect(nftRules(m.faults[3]!, ip, all)).toEqual(["ip saddr { 10.77.0.10, 10.77.0.11, 10.77.0.12 } numgen random mod 100 < 25 drop"])
  })
})

// The e2e manifest: parsing, defaults, and errors that name the key. No root, no namespaces.
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { drawFault, ManifestError, parse, parseDuration, rng } from "../../src/e2e/Manifest.ts"

const keyOf = (text: string): string => {
  try {
    parse(text)
  } catch (e) {
    expect(e).toBeInstanceOf(ManifestError)
    return (e as ManifestError).key
  }
  throw new Error("parsed")
}

describe("e2e manifest", () => {
  it("parses durations", () => {
    expect(parseDuration("k", "500ms")).toBe(500)
    expect(parseDuration("k", "20s")).toBe(20_000)
    expect(parseDuration("k", "1m30s")).toBe(90_000)
    expect(parseDuration("k", "2h")).toBe(7_200_000)
    expect(parseDuration("k", 3)).toBe(3_000)
    expect(() => parseDuration("k", "3 seconds")).toThrow(/k: must be a duration/)
    expect(() => parseDuration("k", "")).toThrow(ManifestError)
  })

  it("a count of nodes gets names, bootstrap n0 and CometBFT's limits", () => {
    const m = parse(`duration = "60s"\n[nodes]\ncount = 3\n`)
    expect(m.nodes.map((n) => n.name)).toEqual(["n0", "n1", "n2"])
    expect(m.nodes[1]!.bootstrap).toEqual(["n0"])
    expect(m.nodes[2]!.maxInbound).toBe(40)
    expect(m.nodes[2]!.maxOutbound).toBe(10)
    expect(m.duration).toBe(60_000)
    expect(m.faults).toEqual([])
    expect(m.random).toBeUndefined()
    expect(m.checks.pingInterval).toBe(60_000)
  })

  it("[[node]] entries override the defaults; faults are sorted by time", () => {
    const m = parse(`
duration = "2m"
[nodes]
count = 3
max_outbound = 4
[[node]]
name = "seed"
seed_mode = true
[[node]]
name = "a"
persistent_peers = ["seed"]
start_at = "10s"
[[perturbation]]
at = "40s"
kind = "kill"
nodes = ["a"]
duration = "5s"
[[perturbation]]
at = "20s"
kind = "partition"
groups = [["seed"], ["a", "n2"]]
`)
    expect(m.nodes.map((n) => n.name)).toEqual(["seed", "a", "n2"])
    expect(m.nodes[0]!.seedMode).toBe(true)
    expect(m.nodes[1]!.persistentPeers).toEqual(["seed"])
    expect(m.nodes[1]!.startAt).toBe(10_000)
    expect(m.nodes[2]!.maxOutbound).toBe(4)
    expect(m.faults.map((f) => f.kind)).toEqual(["partition", "kill"])
    expect(m.faults[0]!.groups).toEqual([["seed"], ["a", "n2"]])
    expect(m.faults[0]!.duration).toBe(10_000)
  })

  it("[nodes.config] keys are kept flat, quoted or as tables", () => {
    const m = parse(`[nodes]\ncount = 1\n[nodes.config]\n"p2p.dial_timeout" = "2s"\nlog_level = "debug"\n[nodes.config.p2p]\nsend_rate = 1000000\n`)
    expect(m.nodeConfig).toEqual({ "p2p.dial_timeout": "2s", log_level: "debug", "p2p.send_rate": 1000000 })
  })

  it("accepts kind aliases", () => {
    const m = parse(`[nodes]\ncount = 2\n[[perturbation]]\nat = "1s"\nkind = "one-way-partition"\nfrom = ["n0"]\nto = ["n1"]\n[[perturbation]]\nat = "2s"\nkind = "kill-9"\nnodes = ["n1"]\n`)
    expect(m.faults.map((f) => f.kind)).toEqual(["one_way", "kill"])
  })

  it("errors name the key", () => {
    expect(keyOf(`[nodes]\ncount = 0\n`)).toBe("nodes.count")
    expect(keyOf(`[nodes]\ncount = 2\nmax_inbound = -1\n`)).toBe("nodes.max_inbound")
    expect(keyOf(`[nodes]\ncount = 2\ncolour = "red"\n`)).toBe("nodes.colour")
    expect(keyOf(`durration = "1m"\n[nodes]\ncount = 2\n`)).toBe("durration")
    expect(keyOf(`[nodes]\ncount = 2\n[[perturbation]]\nkind = "kill"\nnodes = ["n1"]\n`)).toBe("perturbation[0].at")
    expect(keyOf(`[nodes]\ncount = 2\n[[perturbation]]\nat = "1s"\nkind = "flood"\n`)).toBe("perturbation[0].kind")
    expect(keyOf(`[nodes]\ncount = 2\n[[perturbation]]\nat = "1s"\nkind = "kill"\nnodes = ["n7"]\n`)).toBe("perturbation[0].nodes")
    expect(keyOf(`[nodes]\ncount = 2\n[[perturbation]]\nat = "1s"\nkind = "partition"\ngroups = [["n0"]]\n`)).toBe("perturbation[0].groups")
    expect(keyOf(`[nodes]\ncount = 2\n[[perturbation]]\nat = "1s"\nkind = "partition"\ngroups = [["n0"], ["n0", "n1"]]\n`)).toBe("perturbation[0].groups")
    expect(keyOf(`[nodes]\ncount = 2\n[[perturbation]]\nat = "1s"\nkind = "bandwidth"\nrate = "fast"\n`)).toBe("perturbation[0].rate")
    expect(keyOf(`[nodes]\ncount = 2\n[[perturbation]]\nat = "1s"\nkind = "loss"\npercent = 150\n`)).toBe("perturbation[0].percent")
    expect(keyOf(`duration = "10s"\n[nodes]\ncount = 2\n[[perturbation]]\nat = "11s"\nkind = "kill"\nnodes = ["n1"]\n`)).toBe("perturbation[0].at")
    expect(keyOf(`[nodes]\ncount = 2\n[[node]]\npersistent_peers = ["zz"]\n`)).toBe("node[0].persistent_peers")
    expect(keyOf(`[nodes]\ncount = 2\n[random]\nkinds = ["kill", "nap"]\n`)).toBe("random.kinds[1]")
    expect(keyOf(`[nodes]\ncount = 2\n[check]\nallow_errors = ["("]\n`)).toBe("check.allow_errors[0]")
    expect(keyOf(`[nodes\n`)).toBe("manifest")
    expect(() => parse(`[nodes]\ncount = 0\n`)).toThrow(/^nodes\.count: /)
  })

  it("random faults are drawn from the seed, the same each time", () => {
    const m = parse(`duration = "10m"\n[nodes]\ncount = 10\n[random]\nfault_every = "10s"\nkinds = ["partition", "kill", "loss"]\nseed = 42\n`)
    const names = m.nodes.map((n) => n.name)
    const draw = () => {
      const next = rng(m.random!.seed)
      return Array.from({ length: 20 }, (_, i) => drawFault(m.random!, names, i * 10_000, next))
    }
    const a = draw()
    expect(draw()).toEqual(a)
    expect(new Set(a.map((f) => f.kind))).toEqual(new Set(["partition", "kill", "loss"]))
    for (const f of a) {
      expect(f.duration).toBeGreaterThanOrEqual(m.random!.minDuration)
      expect(f.duration).toBeLessThanOrEqual(m.random!.maxDuration)
      if (f.kind === "partition") {
        expect(f.groups.flat().sort()).toEqual([...names].sort())
        expect(f.groups[0]!.length).toBeLessThanOrEqual(m.random!.maxNodes)
      } else expect(f.nodes.length).toBeGreaterThan(0)
    }
  })

  it("spare nodes are never killed or restarted", () => {
    const m = parse(`[nodes]\ncount = 4\n[random]\nkinds = ["kill", "wipe", "restart", "pause"]\nspare = ["n0", "n1"]\nmax_nodes = 3\n`)
    const next = rng(3)
    const names = m.nodes.map((n) => n.name)
    const faults = Array.from({ length: 50 }, (_, i) => drawFault(m.random!, names, i, next))
    for (const f of faults) if (f.kind !== "pause") expect(f.nodes.filter((n) => n === "n0" || n === "n1")).toEqual([])
    expect(faults.some((f) => f.kind === "pause" && f.nodes.includes("n0"))).toBe(true)
    expect(() => parse(`[nodes]\ncount = 2\n[random]\nspare = ["x"]\n`)).toThrow(/^random\.spare: unknown node/)
  })

  it("a skew fault moves the clock by a signed offset (ahead by default); a bad offset names its key", () => {
    const m = parse(`duration = "60s"\n[nodes]\ncount = 3\n[[perturbation]]\nat = "10s"\nkind = "skew"\nnodes = ["n1"]\noffset = "-30m"\n[[perturbation]]\nat = "30s"\nkind = "skew"\nnodes = ["n2"]\n`)
    expect(m.faults.map((f) => [f.kind, f.skew])).toEqual([["skew", -1_800_000], ["skew", 3_600_000]])
    expect(keyOf(`duration = "60s"\n[nodes]\ncount = 2\n[[perturbation]]\nat = "10s"\nkind = "skew"\nnodes = ["n1"]\noffset = "soon"\n`)).toBe("perturbation[0].offset")
    expect(keyOf(`duration = "60s"\n[nodes]\ncount = 2\n[[perturbation]]\nat = "10s"\nkind = "skew"\nnodes = ["n1"]\noffset = "+400d"\n`)).toBe("perturbation[0].offset")
    expect(keyOf(`duration = "60s"\n[nodes]\ncount = 2\n[[perturbation]]\nat = "10s"\nkind = "skew"\n`)).toBe("perturbation[0].nodes")
    const random = parse(`duration = "10m"\n[nodes]\ncount = 4\n[random]\nkinds = ["skew"]\nskew = "2h"\n`).random!
    const next = rng(3)
    const drawn = Array.from({ length: 20 }, (_, i) => drawFault(random, ["n0", "n1", "n2", "n3"], i * 10_000, next))
    expect(new Set(drawn.map((f) => f.skew))).toEqual(new Set([7_200_000, -7_200_000]))
  })

  it("the shipped manifests parse", () => {
    for (const name of ["ci", "soak", "churn"]) {
      const path = join(import.meta.dirname, "..", "..", "e2e", "manifests", `${name}.toml`)
      const m = parse(readFileSync(path, "utf8"), path)
      expect(m.name).toBe(name)
    }
    const ci = parse(readFileSync(join(import.meta.dirname, "..", "..", "e2e", "manifests", "ci.toml"), "utf8"))
    expect(ci.nodes.length).toBe(5)
    expect(ci.duration).toBeLessThan(180_000)
    expect(new Set(ci.faults.map((f) => f.kind))).toEqual(new Set(["partition", "one_way", "isolate", "loss", "latency", "bandwidth", "pause", "kill", "wipe", "skew"]))
  })
})

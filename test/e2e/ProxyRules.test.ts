// The loopback link proxy's rules for each network fault, and tc rates in bytes per second. Pure.
import { describe, expect, it } from "vitest"
import { bytesPerSecond, makeProxied, proxyRules } from "../../src/e2e/Fabric.ts"
import { parse } from "../../src/e2e/Manifest.ts"
import type * as Proxy from "../../src/e2e/Proxy.ts"

const manifest = parse(
  `[nodes]\ncount = 3\n` +
    `[[perturbation]]\nat = "1s"\nkind = "partition"\ngroups = [["n0"], ["n1", "n2"]]\n` +
    `[[perturbation]]\nat = "2s"\nkind = "one_way"\nfrom = ["n0"]\nto = ["n2"]\n` +
    `[[perturbation]]\nat = "3s"\nkind = "isolate"\nnodes = ["n1"]\n` +
    `[[perturbation]]\nat = "4s"\nkind = "loss"\npercent = 25\n` +
    `[[perturbation]]\nat = "5s"\nkind = "latency"\nnodes = ["n1"]\ndelay = "80ms"\njitter = "40ms"\n` +
    `[[perturbation]]\nat = "6s"\nkind = "bandwidth"\nnodes = ["n0"]\nrate = "1mbit"\n` +
    `[[perturbation]]\nat = "7s"\nkind = "pause"\nnodes = ["n0"]\n`
)
const all = ["n0", "n1", "n2"]

describe("link proxy rules", () => {
  it("cut the same directed links as the nft rules; loss, latency and bandwidth name their nodes (or all)", () => {
    const [partition, oneWay, isolate, loss, latency, bandwidth, pause] = manifest.faults.map((f) => proxyRules(f, all))
    expect(partition).toEqual([{ kind: "cut", pairs: [["n0", "n1"], ["n0", "n2"], ["n1", "n0"], ["n2", "n0"]] }])
    expect(oneWay).toEqual([{ kind: "cut", pairs: [["n0", "n2"]] }])
    expect(isolate).toEqual([{ kind: "cut", pairs: [["n1", "n0"], ["n0", "n1"], ["n1", "n2"], ["n2", "n1"]] }])
    expect(loss).toEqual([{ kind: "loss", nodes: "all", percent: 25 }])
    expect(latency).toEqual([{ kind: "latency", nodes: ["n1"], delay: 80, jitter: 40 }])
    expect(bandwidth).toEqual([{ kind: "bandwidth", nodes: ["n0"], bytesPerSecond: 125_000 }])
    expect(pause).toEqual([])
  })

  it("tc rates: bits or bytes per second", () => {
    expect(bytesPerSecond("1mbit")).toBe(125_000)
    expect(bytesPerSecond("500kbit")).toBe(62_500)
    expect(bytesPerSecond("2mbps")).toBe(2_000_000)
    expect(bytesPerSecond("8bit")).toBe(1)
    expect(() => bytesPerSecond("fast")).toThrow(/not a rate/)
  })

  it("without a proxy every network fault is unsupported with the reason; process faults are not", () => {
    const fabric = makeProxied(undefined, all, "no network namespaces (not root) and no link proxy")
    expect(fabric.unsupported("partition")).toMatch(/no link proxy/)
    expect(fabric.unsupported("kill")).toBeUndefined()
  })

  it("with a proxy a fault is applied under its id and healed once", () => {
    const calls: Array<string> = []
    const proxy = { apply: (id: number, rules: ReadonlyArray<Proxy.Rule>) => calls.push(`apply ${id} ${rules[0]!.kind}`), heal: (id: number) => calls.push(`heal ${id}`), healAll: () => calls.push("healAll") } as unknown as Proxy.Proxy
    const fabric = makeProxied(proxy, all, "")
    expect(fabric.unsupported("loss")).toBeUndefined()
    const applied = fabric.apply(manifest.faults[0]!, 4)
    applied.heal()
    applied.heal()
    fabric.healAll()
    expect(calls).toEqual(["apply 4 cut", "heal 4", "healAll"])
  })
})

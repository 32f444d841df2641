/**
 * The loopback fault verification through the link proxy: three "nodes" on 127.0.1.210-212, each
 * with a probe port on the proxy leading to the runner's echo server. A fault in force passes its
 * verification; the same verification with no fault in force fails (it really looks).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { proxyRules } from "../../src/e2e/Fabric.ts"
import { type Fault, parse } from "../../src/e2e/Manifest.ts"
import * as Proxy from "../../src/e2e/Proxy.ts"
import * as Verify from "../../src/e2e/Verify.ts"

const names = ["n0", "n1", "n2"]
const ipOf = (name: string) => `127.0.1.${210 + Number(name.slice(1))}`
const PORT = 46667

const faults = parse(
  `[nodes]\ncount = 3\n` +
    `[[perturbation]]\nat = "1s"\nkind = "partition"\ngroups = [["n0", "n1"], ["n2"]]\n` +
    `[[perturbation]]\nat = "2s"\nkind = "one_way"\nfrom = ["n0"]\nto = ["n2"]\n` +
    `[[perturbation]]\nat = "3s"\nkind = "isolate"\nnodes = ["n1"]\n` +
    `[[perturbation]]\nat = "4s"\nkind = "latency"\nnodes = ["n1"]\ndelay = "120ms"\n` +
    `[[perturbation]]\nat = "5s"\nkind = "bandwidth"\nnodes = ["n0"]\nrate = "2mbit"\n` +
    `[[perturbation]]\nat = "6s"\nkind = "loss"\nnodes = ["n2"]\npercent = 50\n`
).faults

const withProxy = (body: (p: Proxy.Proxy) => Promise<void>) =>
  Effect.promise(async () => {
    const echo = await Verify.startEcho()
    const p = await Proxy.start({
      targets: names.map((n) => ({ name: n, listen: { host: ipOf(n), port: PORT }, upstream: { host: "127.0.0.1", port: echo.port } })),
      sourceOf: (ip) => names.find((n) => ipOf(n) === ip)
    })
    try {
      await body(p)
    } finally {
      await p.close()
      echo.close()
    }
  })

const check = (p: Proxy.Proxy, fault: Fault) => Verify.verifyProxied(fault, ipOf, PORT, names)

describe.skipIf(process.platform !== "linux")("fault verification through the link proxy", () => {
  for (const fault of faults) {
    it.live(`${fault.kind}: passes while in force, fails without it`, () =>
      withProxy(async (p) => {
        const without = await check(p, fault)
        assert.isFalse(without!.ok, `no fault: ${without!.detail}`)
        p.apply(1, proxyRules(fault, names))
        const v = await check(p, fault)
        assert.isTrue(v!.ok, v!.detail)
      }), 15_000)
  }

  it.live("a process fault has no network verification", () =>
    withProxy(async (p) => {
      assert.isUndefined(await check(p, { ...faults[0]!, kind: "pause", nodes: ["n0"] }))
    }))
})

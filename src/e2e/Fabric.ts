/**
 * Network faults between the namespaces (docs/E2E.md "Faults"):
 * - partition, one_way, isolate, loss: one nftables bridge-family table per fault in the switch
 *   namespace (`ip saddr {..} ip daddr {..} drop`, `numgen random mod 100 < P drop`); heal deletes
 *   the table;
 * - latency (+ jitter): in each affected host, `iptables -t mangle -I OUTPUT -d 10.77.0.0/24 -j
 *   NFQUEUE --queue-num N --queue-bypass` and `e2e/nfqdelay.c` (compiled here with gcc) holding
 *   each packet for delay + U(0, jitter); heal removes the rule and stops the program;
 * - bandwidth: `tc qdisc replace dev eth0 root tbf rate R burst 32kb latency 400ms` in each
 *   affected host; heal deletes the qdisc.
 * Everything lives inside the run's namespaces, so deleting them removes any leftover.
 *
 * On loopback ({@link makeProxied}) the same faults are rules of the userspace link proxy
 * (Proxy.ts), applied per directed link in the runner's process.
 */
import { spawn, type ChildProcess } from "node:child_process"
import { createHash } from "node:crypto"
import { existsSync, mkdirSync, readFileSync } from "node:fs"
import { homedir } from "node:os"
import { join } from "node:path"
import type { Fault, FaultKind } from "./Manifest.ts"
import { type Host, inHost, SUBNET, type Topology } from "./Netns.ts"
import type * as Proxy from "./Proxy.ts"
import { E2eError, run, which } from "./Sh.ts"

/** A fault in force; `heal` undoes it. */
export interface Applied {
  readonly heal: () => void
}

export interface Fabric {
  /** Why this kind cannot be injected here, or undefined when it can. */
  readonly unsupported: (kind: FaultKind) => string | undefined
  readonly apply: (fault: Fault, id: number) => Applied
  /** Undoes everything still in force. */
  readonly healAll: () => void
}

const NFQ_HEADER = "/usr/include/libnetfilter_queue/libnetfilter_queue.h"

/** Installs nftables, iptables and libnetfilter-queue-dev with apt when missing; returns what is still missing. */
export const ensureTools = (log: (line: string) => void): ReadonlyArray<string> => {
  const missing = () => [
    ...(which("nft") ? [] : ["nftables"]),
    ...(which("iptables") ? [] : ["iptables"]),
    ...(existsSync(NFQ_HEADER) ? [] : ["libnetfilter-queue-dev"]),
    ...(which("gcc") ? [] : ["gcc"])
  ]
  let need = missing()
  if (need.length === 0 || !which("apt-get")) return need
  log(`installing ${need.join(" ")} with apt-get`)
  const install = () => run("apt-get", ["install", "-y", "--no-install-recommends", ...need], { allowFail: true, timeout: 300_000 })
  if (install().code !== 0) {
    run("apt-get", ["update"], { allowFail: true, timeout: 300_000 })
    install()
  }
  need = missing()
  return need
}

/** Compiles e2e/nfqdelay.c into a cache directory (once per source version); returns the binary. */
export const buildNfqdelay = (source: string): string => {
  const text = readFileSync(source)
  const hash = createHash("sha256").update(text).digest("hex").slice(0, 12)
  const dir = join(process.env["XDG_CACHE_HOME"] ?? join(homedir(), ".cache"), "effect-p2p-e2e")
  const bin = join(dir, `nfqdelay-${hash}`)
  if (existsSync(bin)) return bin
  mkdirSync(dir, { recursive: true })
  run("gcc", ["-O2", "-Wall", "-o", bin, source, "-lnetfilter_queue", "-lnfnetlink"])
  return bin
}

const set = (ips: ReadonlyArray<string>) => `{ ${ips.join(", ")} }`

/** The nft rules of a fault (bridge family, forward hook), one per line. */
export const nftRules = (fault: Fault, ipOf: (name: string) => string, allIps: ReadonlyArray<string>): ReadonlyArray<string> => {
  const ips = (names: ReadonlyArray<string>) => names.map(ipOf)
  switch (fault.kind) {
    case "partition": {
      const rules: Array<string> = []
      fault.groups.forEach((a, i) =>
        fault.groups.forEach((b, j) => {
          if (i !== j) rules.push(`ip saddr ${set(ips(a))} ip daddr ${set(ips(b))} drop`)
        }))
      return rules
    }
    case "one_way":
      return [`ip saddr ${set(ips(fault.from))} ip daddr ${set(ips(fault.to))} drop`]
    case "isolate":
      return [`ip saddr ${set(ips(fault.nodes))} drop`, `ip daddr ${set(ips(fault.nodes))} drop`]
    case "loss": {
      const who = fault.nodes.length === 0 ? allIps : ips(fault.nodes)
      const p = Math.round(fault.percent)
      return [`ip saddr ${set(who)} numgen random mod 100 < ${p} drop`, ...(fault.nodes.length === 0 ? [] : [`ip daddr ${set(who)} numgen random mod 100 < ${p} drop`])]
    }
    default:
      return []
  }
}

export const make = (topology: Topology, nameToHost: (name: string) => Host, nfqdelay: string | undefined, missingTools: ReadonlyArray<string>, seed: number): Fabric => {
  const pending = new Map<number, Applied>()
  const allIps = topology.hosts.map((h) => h.ip)
  const ipOf = (name: string) => nameToHost(name).ip

  const unsupported = (kind: FaultKind): string | undefined => {
    const network = kind === "partition" || kind === "one_way" || kind === "isolate" || kind === "loss" || kind === "latency" || kind === "bandwidth"
    if (!network) return undefined
    if (topology.mode !== "netns") return `no network namespaces (${topology.reason})`
    if (kind === "latency" && nfqdelay === undefined) return `nfqdelay not built (missing ${missingTools.join(", ") || "gcc/libnetfilter-queue"})`
    if (kind !== "latency" && kind !== "bandwidth" && !which("nft")) return "nft (nftables) is missing"
    return undefined
  }

  const nft = (fault: Fault, id: number): Applied => {
    const table = `p2pe2e_f${id}`
    const rules = nftRules(fault, ipOf, allIps)
    const script = `table bridge ${table} {\n  chain forward {\n    type filter hook forward priority 0; policy accept;\n${rules.map((r) => `    ${r}\n`).join("")}  }\n}\n`
    run("ip", ["netns", "exec", topology.switchNs!, "nft", "-f", "-"], { input: script })
    return { heal: () => void run("ip", ["netns", "exec", topology.switchNs!, "nft", "delete", "table", "bridge", table], { allowFail: true }) }
  }

  const hostsOf = (fault: Fault): ReadonlyArray<Host> => (fault.nodes.length === 0 ? topology.hosts : fault.nodes.map(nameToHost))

  const latency = (fault: Fault, id: number): Applied => {
    const queue = String(id % 65535)
    const rule = ["-t", "mangle", "OUTPUT", "-d", SUBNET, "-j", "NFQUEUE", "--queue-num", queue, "--queue-bypass"]
    const procs: Array<ChildProcess> = []
    const hosts = hostsOf(fault)
    for (const h of hosts) {
      const c = inHost(h, nfqdelay!, [queue, String(fault.delay), String(fault.jitter), String(seed + id)])
      const p = spawn(c.cmd, [...c.args], { stdio: ["ignore", "ignore", "pipe"], detached: true })
      p.stderr?.resume()
      procs.push(p)
    }
    // The program binds the queue before the rule sends packets to it (--queue-bypass covers the gap).
    for (const h of hosts) run("ip", ["netns", "exec", h.ns!, "iptables", "-t", "mangle", "-I", "OUTPUT", ...rule.slice(3)])
    return {
      heal: () => {
        for (const h of hosts) run("ip", ["netns", "exec", h.ns!, "iptables", "-t", "mangle", "-D", "OUTPUT", ...rule.slice(3)], { allowFail: true })
        for (const p of procs) {
          try {
            p.kill("SIGTERM")
          } catch {
            // gone
          }
        }
      }
    }
  }

  const bandwidth = (fault: Fault): Applied => {
    const hosts = hostsOf(fault)
    for (const h of hosts) run("ip", ["netns", "exec", h.ns!, "tc", "qdisc", "replace", "dev", "eth0", "root", "tbf", "rate", fault.rate, "burst", "32kb", "latency", "400ms"])
    return { heal: () => hosts.forEach((h) => void run("ip", ["netns", "exec", h.ns!, "tc", "qdisc", "del", "dev", "eth0", "root"], { allowFail: true })) }
  }

  const apply = (fault: Fault, id: number): Applied => {
    const why = unsupported(fault.kind)
    if (why !== undefined) throw new E2eError(`${fault.kind}: ${why}`)
    const applied = fault.kind === "latency" ? latency(fault, id) : fault.kind === "bandwidth" ? bandwidth(fault) : nft(fault, id)
    pending.set(id, applied)
    return {
      heal: () => {
        if (pending.delete(id)) applied.heal()
      }
    }
  }

  return {
    unsupported,
    apply,
    healAll: () => {
      for (const [id, a] of [...pending]) {
        pending.delete(id)
        try {
          a.heal()
        } catch {
          // the namespaces are deleted next anyway
        }
      }
    }
  }
}

const RATE_UNITS: Record<string, number> = { bit: 1 / 8, kbit: 1e3 / 8, mbit: 1e6 / 8, gbit: 1e9 / 8, bps: 1, kbps: 1e3, mbps: 1e6, gbps: 1e9 }

/** A tc rate ("1mbit", "500kbit", "2mbps": bits or bytes per second) in bytes per second. */
export const bytesPerSecond = (rate: string): number => {
  const m = /^(\d+(?:\.\d+)?)([a-z]+)$/.exec(rate)
  const unit = m === null ? undefined : RATE_UNITS[m[2]!]
  if (m === null || unit === undefined) throw new E2eError(`${JSON.stringify(rate)} is not a rate like "1mbit"`)
  return Number(m[1]) * unit
}

/** The link proxy's rules for a network fault (the same links the nft rules of namespace mode cut). */
export const proxyRules = (fault: Fault, allNames: ReadonlyArray<string>): ReadonlyArray<Proxy.Rule> => {
  const nodes = fault.nodes.length === 0 ? "all" as const : fault.nodes
  const pairs: Array<readonly [string, string]> = []
  switch (fault.kind) {
    case "partition":
      fault.groups.forEach((a, i) =>
        fault.groups.forEach((b, j) => {
          if (i !== j) for (const x of a) for (const y of b) pairs.push([x, y])
        }))
      return [{ kind: "cut", pairs }]
    case "one_way":
      for (const x of fault.from) for (const y of fault.to) pairs.push([x, y])
      return [{ kind: "cut", pairs }]
    case "isolate":
      for (const x of fault.nodes) {
        for (const y of allNames) {
          if (x === y) continue
          pairs.push([x, y], [y, x])
        }
      }
      return [{ kind: "cut", pairs }]
    case "loss":
      return [{ kind: "loss", nodes, percent: fault.percent }]
    case "latency":
      return [{ kind: "latency", nodes, delay: fault.delay, jitter: fault.jitter }]
    case "bandwidth":
      return [{ kind: "bandwidth", nodes, bytesPerSecond: bytesPerSecond(fault.rate) }]
    default:
      return []
  }
}

/** Network faults as rules of the loopback link proxy; `why` says why there is none (faults skipped). */
export const makeProxied = (proxy: Proxy.Proxy | undefined, allNames: ReadonlyArray<string>, why: string): Fabric => {
  const network = (kind: FaultKind) => kind === "partition" || kind === "one_way" || kind === "isolate" || kind === "loss" || kind === "latency" || kind === "bandwidth"
  const pending = new Set<number>()
  return {
    unsupported: (kind) => (network(kind) && proxy === undefined ? why : undefined),
    apply: (fault, id) => {
      if (proxy === undefined) throw new E2eError(`${fault.kind}: ${why}`)
      proxy.apply(id, proxyRules(fault, allNames))
      pending.add(id)
      return {
        heal: () => {
          if (pending.delete(id)) proxy.heal(id)
        }
      }
    },
    healAll: () => {
      pending.clear()
      proxy?.healAll()
    }
  }
}

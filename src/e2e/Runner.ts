/**
 * The e2e run: sets up the namespaces, starts the nodes, waits for the mesh to form, injects the
 * manifest's faults one after another (each waits until the previous one has healed and the mesh is
 * whole again, or its bound ran out), samples every node every second (/metrics and /net_info
 * through its unix socket, /proc/PID for fds and RSS), and ends with the checks, a table and a JSON
 * report. Everything it created is removed at the end, on SIGINT/SIGTERM (see main.ts) and after a
 * failed check; leftovers of a crashed run are removed at the next start.
 *
 * Without namespaces the nodes run on 127.0.1.x and the network faults go through the userspace
 * link proxy (Proxy.ts), which runs in this process: its sockets and timers share the event loop
 * with the sampling (a few connections per node, so this costs little).
 */
import { cpSync, existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { readFileSync } from "node:fs"
import * as Checks from "./Checks.ts"
import * as Fabric from "./Fabric.ts"
import { drawFault, type Fault, type Manifest, ManifestError, NETWORK_KINDS, parse, rng } from "./Manifest.ts"
import * as Netns from "./Netns.ts"
import * as Nodes from "./Nodes.ts"
import * as Proxy from "./Proxy.ts"
import type { CheckRecord, FaultRecord, NodeRecord, Report } from "./Report.ts"
import { E2eError, which } from "./Sh.ts"
import * as Verify from "./Verify.ts"
import * as View from "./View.ts"

export interface RunOptions {
  readonly manifestPath: string
  /** The `effect-p2p` command's main script each node runs (`node CLI_MAIN start`). */
  readonly cliMain: string
  /** e2e/nfqdelay.c, compiled when a manifest asks for latency. */
  readonly nfqdelaySource: string
  /** Run on loopback even where namespaces work. */
  readonly loopback?: boolean
  /** Live view (default: when stdout is a terminal). */
  readonly live?: boolean
  /** Where the JSON report goes (default: in the run's report directory). */
  readonly reportPath?: string
}

interface Sample {
  readonly up: boolean
  readonly peers: number
  readonly peerNames: ReadonlySet<string>
  readonly fds: number | undefined
  readonly rssKb: number | undefined
}

interface Current {
  readonly record: FaultRecord
  readonly fault: Fault
  phase: "active" | "healing"
  heal: () => Promise<void>
  readonly baseline: ReadonlyMap<string, number>
  healAt: number
}

const describeFault = (f: Fault): string => {
  switch (f.kind) {
    case "partition":
      return f.groups.map((g) => g.join(",")).join(" | ")
    case "one_way":
      return `${f.from.join(",")} -> ${f.to.join(",")} dropped`
    case "loss":
      return `${f.percent}%${f.nodes.length === 0 ? " all" : ""}`
    case "latency":
      return `${f.delay}ms +U(0,${f.jitter}ms)`
    case "bandwidth":
      return f.rate
    case "kill":
      return "kill -9, restart"
    case "wipe":
      return "kill -9, wipe peer store, restart"
    case "restart":
      return "SIGTERM, restart"
    case "skew":
      return `clock ${f.skew < 0 ? "-" : "+"}${Math.round(Math.abs(f.skew) / 1000)}s: SIGTERM, restart under libfaketime, and back at heal`
    default:
      return ""
  }
}

/** The active abort hook (SIGINT/SIGTERM) and the synchronous last-resort cleanup. */
export interface Control {
  aborted: boolean
  reason: string
  emergency: () => void
}

export const control: Control = { aborted: false, reason: "", emergency: () => {} }

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/** Said of every loss fault on loopback. */
const LOSS_NOTE = " (modeled as stall bursts: a userspace proxy cannot drop packets)"

export const runE2e = async (options: RunOptions): Promise<Report> => {
  const manifestText = (() => {
    try {
      return readFileSync(options.manifestPath, "utf8")
    } catch (e) {
      throw new ManifestError(options.manifestPath, `cannot read it: ${(e as Error).message}`)
    }
  })()
  const manifest: Manifest = parse(manifestText, options.manifestPath)
  const live = options.live ?? process.stdout.isTTY === true
  const view = View.make(live)
  // Times are from the moment the nodes start (setup lines before it have negative times).
  let t0 = Date.now()
  const startedAt = t0
  const now = () => Date.now() - t0
  const event = (text: string) => view.event(now(), text)

  const runId = Math.random().toString(16).slice(2, 6)
  for (const line of Netns.cleanupLeftovers()) event(line)
  const dir = join(Netns.stateRoot(), `${Netns.PREFIX}${runId}`)
  mkdirSync(dir, { recursive: true })
  // Marks this run as alive, so a run started meanwhile does not take it for a leftover.
  writeFileSync(join(dir, Netns.RUNNER_FILE), `${process.pid}\n`)
  const reportDir = join(tmpdir(), `effect-p2p-e2e-${manifest.name}-${runId}`)

  const support = options.loopback === true ? "--loopback given" : Netns.namespaceSupport()
  // On loopback the link proxy needs a distinct address per node (Linux routes all of 127/8 to lo)
  // and nodes that bind their dials to it.
  const proxyWhy = support === undefined
    ? undefined
    : process.platform !== "linux"
    ? "the link proxy needs an address per node (127.0.1.x), which only Linux's loopback has"
    : !Nodes.nodeSupportsDialFrom(options.cliMain)
    ? "the node has no p2p.dial_from, so the link proxy cannot tell its links apart"
    : undefined
  const proxied = support !== undefined && proxyWhy === undefined
  if (support !== undefined) {
    event(`no network namespaces (${support}): running on loopback 127.0.1.x; ${proxied ? `network faults through the userspace link proxy, loss modeled as stall bursts (a userspace proxy cannot drop packets)` : `process faults only, network faults are skipped (${proxyWhy})`}`)
  }

  // Everything below is undone by teardown(), also on a signal; emergency() is the synchronous
  // part for process exit.
  let topology: Netns.Topology | undefined
  let prepared: Nodes.Prepared | undefined
  let fabric: Fabric.Fabric | undefined
  let proxy: Proxy.Proxy | undefined
  let echo: { readonly close: () => void } | undefined
  const emergency = () => {
    proxy?.closeNow()
    echo?.close()
    for (const n of prepared?.nodes ?? []) {
      Nodes.signal(n, "SIGKILL")
      try {
        n.bridge?.kill("SIGKILL")
      } catch {
        // gone
      }
    }
    if (topology !== undefined) Netns.destroy(topology)
    rmSync(dir, { recursive: true, force: true })
  }
  control.emergency = emergency

  const checks: Array<CheckRecord> = []
  const check = (name: string, ok: boolean, detail = "") => {
    checks.push({ name, ok, detail })
    event(`check ${ok ? "PASS" : "FAIL"} ${name}${detail === "" ? "" : `: ${detail}`}`)
  }
  const faults: Array<FaultRecord> = []
  const report: Report = {
    manifest: resolve(options.manifestPath),
    name: manifest.name,
    run: runId,
    mode: support === undefined ? "netns" : "loopback",
    modeReason: support,
    startedAt: new Date(startedAt).toISOString(),
    durationMs: 0,
    boundFormula: Checks.BOUND_FORMULA,
    faults,
    nodes: [],
    checks,
    probe: undefined,
    peersLostOutsideFaults: [],
    passed: false,
    logs: reportDir
  }

  try {
    // --- tools and network
    let nfqdelay: string | undefined
    let missing: ReadonlyArray<string> = []
    if (support === undefined) {
      missing = Fabric.ensureTools(event)
      if (missing.length > 0) event(`still missing after apt-get: ${missing.join(", ")}; faults needing them are skipped`)
      try {
        if (which("gcc") && existsSync("/usr/include/libnetfilter_queue/libnetfilter_queue.h")) nfqdelay = Fabric.buildNfqdelay(options.nfqdelaySource)
      } catch (e) {
        event(`cannot build nfqdelay: ${(e as Error).message}`)
      }
    }
    const unixRpc = Nodes.nodeSupportsUnixRpc(options.cliMain)
    if (support === undefined && !unixRpc && !which("socat")) {
      Fabric.ensureTools(event)
      const { run } = await import("./Sh.ts")
      run("apt-get", ["install", "-y", "--no-install-recommends", "socat"], { allowFail: true, timeout: 300_000 })
      if (!which("socat")) throw new E2eError("the node has no unix-socket rpc.laddr yet and socat is missing (apt-get install socat): the runner cannot reach the nodes' HTTP from the root namespace")
    }
    const probe = manifest.probe && (await Nodes.nodeSupportsProbe(options.cliMain))
    const wantsSkew = manifest.faults.some((f) => f.kind === "skew") || (manifest.random?.kinds.includes("skew") ?? false)
    let faketime = wantsSkew ? Nodes.findFaketime() : undefined
    if (wantsSkew && faketime === undefined && which("apt-get")) {
      event("installing faketime with apt-get (for skew faults)")
      const { run } = await import("./Sh.ts")
      if (run("apt-get", ["install", "-y", "--no-install-recommends", "faketime"], { allowFail: true, timeout: 300_000 }).code !== 0) {
        run("apt-get", ["update"], { allowFail: true, timeout: 300_000 })
        run("apt-get", ["install", "-y", "--no-install-recommends", "faketime"], { allowFail: true, timeout: 300_000 })
      }
      faketime = Nodes.findFaketime()
    }
    topology = Netns.create(runId, manifest.nodes.length, support)
    if (topology.mode === "netns") event(`namespaces ${Netns.PREFIX}${runId}-n0..n${manifest.nodes.length - 1} and switch ${topology.switchNs} (bridge br0), ${Netns.SUBNET}`)
    prepared = await Nodes.prepare(manifest, topology.hosts, options.cliMain, dir, unixRpc, proxied)
    const { nodes, byName } = prepared
    const topo = topology
    const names = nodes.map((n) => n.spec.name)
    if (proxied) {
      const e = await Verify.startEcho()
      echo = e
      const ipToName = new Map(nodes.map((n) => [n.host.ip, n.spec.name]))
      proxy = await Proxy.start({
        targets: nodes.flatMap((n) => [
          { name: n.spec.name, listen: { host: n.host.ip, port: Nodes.PROXY_PORT }, upstream: { host: n.host.ip, port: Nodes.P2P_PORT } },
          { name: n.spec.name, listen: { host: n.host.ip, port: Nodes.PROBE_PORT }, upstream: { host: "127.0.0.1", port: e.port } }
        ]),
        sourceOf: (ip) => ipToName.get(ip)
      })
      event(`link proxy: each node listens on its address :${Nodes.P2P_PORT}, advertises :${Nodes.PROXY_PORT} (the proxy) and dials from its address; fault checks connect to :${Nodes.PROBE_PORT} (an echo)`)
    }
    fabric = topo.mode === "netns"
      ? Fabric.make(topo, (name) => byName.get(name)!.host, nfqdelay, missing, manifest.seed)
      : Fabric.makeProxied(proxy, names, `no network namespaces (${topo.reason}) and ${proxyWhy ?? "no link proxy"}`)
    const idToName = new Map(nodes.map((n) => [n.nodeId, n.spec.name]))
    const seeds = new Set(nodes.filter((n) => n.spec.seedMode).map((n) => n.spec.name))
    event(`${nodes.length} nodes: ${nodes.map((n) => `${n.spec.name}=${n.host.ip}`).join(" ")}; http via ${topo.mode === "loopback" ? "tcp" : unixRpc ? "the node's unix socket" : "socat bridges to unix sockets"}; probe ${probe ? "on" : "not supported by the node (skipped)"}`)

    // --- records
    const nodeRecords: Array<NodeRecord> = nodes.map((n) => ({ name: n.spec.name, nodeId: n.nodeId, ip: n.host.ip, restarts: 0, maxFds: 0, rssStartMb: undefined, rssEndMb: undefined, maxRssMb: 0, peersEnd: undefined, unexpectedExits: 0, errorLines: 0, series: [] }))
    report.nodes.push(...nodeRecords)
    const allow = [...Checks.DEFAULT_ALLOWED_ERRORS, ...manifest.checks.allowErrors].map((s) => new RegExp(s))
    const resources = new Map<string, Array<{ t: number; rss: number; fds: number }>>() // by name#incarnation
    const probeSamples: Array<Checks.ProbeSample> = []
    const windows: Array<Checks.Window> = []
    const limitFailures = new Set<string>()

    const onExit = (n: Nodes.NodeProc, code: number | null, sig: string | null, expected: boolean) => {
      if (expected) return
      n.unexpectedExits.push({ t: now(), code, signal: sig })
      event(`node ${n.spec.name} exited unexpectedly (code ${code}, signal ${sig}); see ${join(n.home, "node.log")}`)
    }
    const startNode = (n: Nodes.NodeProc, env: Readonly<Record<string, string>> = {}) => {
      Nodes.start(n, options.cliMain, probe, allow, onExit, Checks.unexpectedError, env)
      Nodes.recordPid(dir, n.pid)
      event(`node ${n.spec.name} started (pid ${n.pid}${n.incarnation > 1 ? `, start #${n.incarnation}` : ""})`)
    }
    if (topo.mode === "netns" && !unixRpc) {
      for (const n of nodes) {
        Nodes.startBridge(n)
        Nodes.recordPid(dir, n.bridge?.pid)
      }
    }
    const setupMs = Date.now() - startedAt
    t0 = Date.now()
    event(`setup took ${(setupMs / 1000).toFixed(1)}s; t=0 is now`)
    for (const n of nodes) if (n.spec.startAt === 0) startNode(n)

    // Conditions for the whole run (network_conditions): faults that never heal.
    const c = manifest.conditions
    const base: Array<Fault> = [
      ...(c.loss > 0 ? [{ kind: "loss" as const, percent: c.loss }] : []),
      ...(c.delay > 0 || c.jitter > 0 ? [{ kind: "latency" as const, delay: c.delay, jitter: c.jitter }] : []),
      ...(c.rate !== "" ? [{ kind: "bandwidth" as const, rate: c.rate }] : [])
    ].map((p) => ({ at: 0, duration: manifest.duration, nodes: [], groups: [], from: [], to: [], percent: 0, delay: 0, jitter: 0, rate: "", skew: 0, ...p }))
    base.forEach((f, i) => {
      const why = fabric!.unsupported(f.kind)
      if (why !== undefined) event(`network condition ${f.kind} skipped: ${why}`)
      else {
        fabric!.apply(f, 60_000 + i)
        event(`network condition for the whole run: ${f.kind} ${describeFault(f)}${proxied && f.kind === "loss" ? LOSS_NOTE : ""}`)
      }
    })

    // --- sampling
    let samples = new Map<string, Sample>()
    const history: Array<ReadonlyMap<string, number>> = []
    const lastPeers = new Map<string, number>()
    const sampleNode = async (n: Nodes.NodeProc): Promise<Sample> => {
      const stats = n.pid !== undefined && n.state !== "down" && n.state !== "not_started" ? Nodes.procStats(n.pid) : undefined
      if (n.state !== "running") return { up: false, peers: 0, peerNames: new Set(), fds: stats?.fds, rssKb: stats?.rssKb }
      try {
        const [metricsText, netInfo] = await Promise.all([Nodes.get(n.http, "/metrics", 1500), Nodes.get(n.http, "/net_info", 1500)])
        const m = Nodes.parseMetrics(metricsText)
        const ids = Nodes.netInfoPeers(netInfo)
        if (probe) {
          const v = (k: string) => Nodes.metricSum(m, `cometbft_p2p_probe_${k}_total`) ?? 0
          probeSamples.push({ t: now(), node: n.spec.name, incarnation: n.incarnation, sent: v("sent"), received: v("received"), missing: v("missing"), duplicates: v("duplicate_or_reordered") })
        }
        const names = ids.map((id) => idToName.get(id) ?? id.slice(0, 8))
        // A seed's connections come and go by design: they are not counted when there are seeds.
        const peers = seeds.size > 0 ? names.filter((x) => !seeds.has(x)).length : Nodes.metricSum(m, "cometbft_p2p_peers") ?? ids.length
        return { up: true, peers, peerNames: new Set(names), fds: stats?.fds, rssKb: stats?.rssKb }
      } catch {
        return { up: false, peers: 0, peerNames: new Set(), fds: stats?.fds, rssKb: stats?.rssKb }
      }
    }
    const sampleAll = async () => {
      const list = await Promise.all(nodes.map(async (n) => [n.spec.name, await sampleNode(n)] as const))
      samples = new Map(list)
      const counts = new Map<string, number>()
      for (const [name, s] of list) {
        const n = byName.get(name)!
        const rec = nodeRecords[n.spec.index]!
        if (s.up) counts.set(name, s.peers)
        const before = lastPeers.get(name)
        const nowPeers = s.up ? s.peers : -1
        if (before !== nowPeers && n.state !== "not_started") {
          event(`${name} ${nowPeers < 0 ? "not answering" : `peers ${before === undefined || before < 0 ? "-" : before} -> ${nowPeers}`}${s.up ? ` [${[...s.peerNames].sort().join(",")}]` : ""}`)
          lastPeers.set(name, nowPeers)
        }
        if (s.fds !== undefined && s.rssKb !== undefined && n.state === "running") {
          const rssMb = s.rssKb / 1024
          rec.maxFds = Math.max(rec.maxFds, s.fds)
          rec.maxRssMb = Math.max(rec.maxRssMb, rssMb)
          // RSS after warm-up, of a process that has run at least 10 s (not one just starting).
          if (rec.rssStartMb === undefined && now() >= manifest.checks.warmup && Date.now() - n.startedAt >= 10_000) rec.rssStartMb = rssMb
          rec.rssEndMb = rssMb
          const key = `${name}#${n.incarnation}`
          if (!resources.has(key)) resources.set(key, [])
          resources.get(key)!.push({ t: now(), rss: rssMb, fds: s.fds })
          const last = rec.series[rec.series.length - 1]
          if (last === undefined || now() - last[0] >= 30_000) rec.series.push([Math.round(now()), Math.round(rssMb), s.fds])
          if (s.fds > manifest.checks.fdsMax && !limitFailures.has(`fds ${name}`)) {
            limitFailures.add(`fds ${name}`)
            event(`${name} has ${s.fds} open fds, over check.fds_max ${manifest.checks.fdsMax}`)
          }
          if (rssMb > manifest.checks.rssMaxMb && !limitFailures.has(`rss ${name}`)) {
            limitFailures.add(`rss ${name}`)
            event(`${name} RSS ${rssMb.toFixed(0)} MB, over check.rss_max_mb ${manifest.checks.rssMaxMb}`)
          }
        }
      }
      history.push(counts)
      if (history.length > 30) history.shift()
    }
    const views = (): ReadonlyMap<string, Checks.NodeView> => new Map([...samples].map(([k, s]) => [k, { up: s.up, peers: s.peers, peerNames: s.peerNames }]))
    const persistent = new Map(nodes.map((n) => [n.spec.name, n.spec.persistentPeers.filter((p) => p !== n.spec.name)]))
    /** Peer counts now, of the nodes that run and are not seeds (a seed's count is transient). */
    const baselineNow = () => new Map(nodes.filter((n) => n.state === "running" && !n.spec.seedMode && samples.get(n.spec.name)?.up === true).map((n) => [n.spec.name, samples.get(n.spec.name)!.peers]))

    // --- faults
    let current: Current | undefined
    let nextId = 1
    let formed = false
    let formedCounts = new Map<string, number>()
    let formCheckDone = false
    const explicit = [...manifest.faults]
    const random = manifest.random
    const next = rng(random?.seed ?? manifest.seed)
    let nextRandomAt = random?.start ?? Infinity
    const downNodes = () => nodes.filter((n) => n.state !== "running" && n.state !== "paused").map((n) => n.spec.name)

    const startFault = async (fault: Fault, delayedBy: number) => {
      const id = nextId++
      const nodesOf = Checks.faultNodes(fault)
      const why = fault.kind === "skew" ? (faketime === undefined ? "libfaketime not found (Debian: apt-get install faketime)" : undefined) : fabric!.unsupported(fault.kind)
      const bound = Checks.healBound(manifest.checks, fault.kind, fault.duration)
      const baseline = baselineNow()
      const record: FaultRecord = {
        id, kind: fault.kind, nodes: nodesOf, detail: `${describeFault(fault)}${proxied && fault.kind === "loss" ? " as stalls" : ""}`, start: now(), heal: undefined, timeToHeal: undefined,
        bound: bound.total, boundTerms: { ...bound }, result: "pending", note: delayedBy > 1000 ? `started ${(delayedBy / 1000).toFixed(0)}s late: waited for the mesh to form or the previous fault to heal` : "",
        baseline: Object.fromEntries(baseline), peersLost: 0, effect: undefined
      }
      faults.push(record)
      if (why !== undefined) {
        record.result = "skipped"
        record.note = why
        event(`fault #${id} ${fault.kind} skipped: ${why}`)
        return
      }
      event(`fault #${id} ${fault.kind} start: ${nodesOf.join(",")} ${describeFault(fault)}${proxied && fault.kind === "loss" ? LOSS_NOTE : ""} for ${(fault.duration / 1000).toFixed(1)}s (heal bound ${(bound.total / 1000).toFixed(1)}s)`)
      let heal: () => Promise<void>
      if (NETWORK_KINDS.has(fault.kind)) {
        const applied = fabric!.apply(fault, id)
        heal = async () => applied.heal()
        const v = topo.mode === "netns"
          ? await Verify.verify(fault, (name) => byName.get(name)!.host, nodes[0]!.spec.name)
          : await Verify.verifyProxied(fault, (name) => byName.get(name)!.host.ip, Nodes.PROBE_PORT, names)
        if (v !== undefined) {
          record.effect = v.detail
          check(`fault #${id} ${fault.kind} in effect`, v.ok, v.detail)
        }
      } else if (fault.kind === "pause") {
        const targets = fault.nodes.map((x) => byName.get(x)!)
        for (const n of targets) {
          Nodes.signal(n, "SIGSTOP")
          n.state = "paused"
        }
        await sleep(100)
        const notStopped = targets.filter((n) => !Verify.stopped(n.pid)).map((n) => n.spec.name)
        check(`fault #${id} pause in effect`, notStopped.length === 0, notStopped.length === 0 ? `${targets.map((n) => n.spec.name).join(",")} stopped (state T)` : `not stopped: ${notStopped.join(",")}`)
        heal = async () => {
          for (const n of targets) {
            if (n.state === "paused") {
              Nodes.signal(n, "SIGCONT")
              n.state = "running"
            }
          }
        }
      } else if (fault.kind === "skew") {
        const targets = fault.nodes.map((x) => byName.get(x)!).filter((n) => n.state === "running")
        const restartWith = async (n: Nodes.NodeProc, env: Readonly<Record<string, string>>) => {
          await Nodes.stop(n, "SIGTERM")
          n.restarts++
          nodeRecords[n.spec.index]!.restarts = n.restarts
          startNode(n, env)
        }
        for (const n of targets) await restartWith(n, Nodes.skewedEnv(faketime!, fault.skew))
        // In effect when each node's HTTP Date header is off by the skew (to within 5 s), read once it serves.
        const offsets: Array<string> = []
        let ok = targets.length > 0
        for (const n of targets) {
          let offset: number | undefined
          for (let i = 0; i < 40 && offset === undefined; i++) {
            offset = await Nodes.clockOf(n.http).then((t) => t - Date.now(), () => undefined)
            if (offset === undefined) await sleep(250)
          }
          offsets.push(`${n.spec.name} ${offset === undefined ? "no answer" : `${(offset / 1000).toFixed(0)}s`}`)
          if (offset === undefined || Math.abs(offset - fault.skew) > 5_000) ok = false
        }
        check(`fault #${id} skew in effect`, ok, `clock off by ${offsets.join(", ")} (want ${(fault.skew / 1000).toFixed(0)}s)`)
        heal = async () => {
          for (const n of targets) if (n.state === "running" || n.state === "paused") await restartWith(n, {})
        }
      } else {
        const targets = fault.nodes.map((x) => byName.get(x)!).filter((n) => n.state === "running" || n.state === "paused")
        for (const n of targets) {
          await Nodes.stop(n, fault.kind === "restart" ? "SIGTERM" : "SIGKILL")
          if (fault.kind !== "restart") {
            const store = Nodes.checkPeerStore(n)
            check(`peer store of ${n.spec.name} after kill -9 (fault #${id}) opens cleanly and holds peers`, store.ok, `integrity_check ${store.integrity}, ${store.peers} peers${store.error === undefined ? "" : `, ${store.error}`}`)
          }
          if (fault.kind === "wipe") event(`wiped ${n.spec.name}: ${Nodes.wipePeerStore(n).join(", ") || "nothing to wipe"}`)
        }
        heal = async () => {
          for (const n of targets) {
            n.restarts++
            nodeRecords[n.spec.index]!.restarts = n.restarts
            startNode(n)
          }
        }
      }
      current = { record, fault, phase: "active", heal, baseline, healAt: 0 }
    }

    const dropsOutside: Array<string> = []
    let lastCounts = new Map<string, number>()
    /** Peers lost against the fault's baseline (worst moment), and drops while no fault is in force. */
    const trackDrops = () => {
      const counts = new Map([...samples].map(([k, v]) => [k, v.up ? v.peers : 0]))
      if (current !== undefined) {
        let lost = 0
        for (const [name, want] of current.baseline) lost += Math.max(0, want - (counts.get(name) ?? 0))
        current.record.peersLost = Math.max(current.record.peersLost, lost)
      } else if (formed) {
        for (const [name, c] of counts) {
          const before = lastCounts.get(name)
          const n = byName.get(name)!
          if (before !== undefined && c < before && n.state === "running" && !n.spec.seedMode && now() > quietUntil) dropsOutside.push(`${name} ${before}->${c} at ${(now() / 1000).toFixed(0)}s`)
        }
      }
      lastCounts = counts
    }
    let quietUntil = 0

    const stepFault = async (draining: boolean) => {
      if (current === undefined) return
      const c = current
      const t = now()
      if (c.phase === "active" && (t >= c.record.start + c.fault.duration || draining && control.aborted)) {
        await c.heal()
        c.phase = "healing"
        c.healAt = now()
        c.record.heal = c.healAt
        event(`fault #${c.record.id} ${c.fault.kind} healed`)
        return
      }
      if (c.phase === "healing") {
        const w = Checks.wholeAgain(c.baseline, views(), persistent)
        if (w.whole) {
          c.record.timeToHeal = t - c.healAt
          c.record.result = "healed"
          windows.push(Checks.faultWindow(c.record.start, c.healAt, t, c.record.bound, 5_000))
          quietUntil = t + 5_000
          event(`fault #${c.record.id} ${c.fault.kind}: mesh whole again ${(c.record.timeToHeal / 1000).toFixed(1)}s after heal (bound ${(c.record.bound / 1000).toFixed(1)}s)`)
          current = undefined
        } else if (t - c.healAt > c.record.bound) {
          c.record.result = "failed"
          c.record.note = w.lacking.slice(0, 6).join("; ")
          windows.push(Checks.faultWindow(c.record.start, c.healAt, undefined, c.record.bound, 5_000))
          quietUntil = t + 5_000
          event(`fault #${c.record.id} ${c.fault.kind}: mesh NOT whole ${(c.record.bound / 1000).toFixed(1)}s after heal: ${c.record.note}`)
          current = undefined
        }
      }
    }

    const maybeStartFault = async () => {
      if (current !== undefined || !formed) return
      const t = now()
      const head = explicit[0]
      if (head !== undefined && head.at <= t) {
        explicit.shift()
        await startFault(head, t - head.at)
        return
      }
      if (random !== undefined && t >= nextRandomAt && t <= random.stop) {
        const names = nodes.filter((n) => n.state === "running").map((n) => n.spec.name)
        const kinds = random.kinds.filter((k) => fabric!.unsupported(k) === undefined)
        if (kinds.length === 0 || names.length < 2) return
        const f = drawFault(random, names, t, next, kinds)
        nextRandomAt = t + random.every
        await startFault(f, 0)
      }
    }

    // --- main loop
    const lateStarts = nodes.filter((n) => n.spec.startAt > 0)
    let tick = now()
    while (!control.aborted) {
      const t = now()
      for (const n of lateStarts) if (n.state === "not_started" && t >= n.spec.startAt) startNode(n)
      await sampleAll()
      if (!formed) {
        const started = nodes.filter((n) => n.state !== "not_started")
        if (started.length > 0 && Checks.settled(history, 3) && started.every((n) => samples.get(n.spec.name)?.up === true)) {
          formed = true
          formedCounts = baselineNow()
          if (!formCheckDone) {
            formCheckDone = true
            check("mesh formed", true, `${(t / 1000).toFixed(1)}s after start, peers ${started.map((n) => `${n.spec.name}=${samples.get(n.spec.name)?.peers}`).join(" ")}`)
          }
        } else if (t > manifest.checks.formBound && !formCheckDone) {
          formCheckDone = true
          formed = true // go on, so the run still reports the faults
          check("mesh formed", false, `not settled within check.form_bound ${(manifest.checks.formBound / 1000).toFixed(0)}s: peers ${[...samples].map(([k, s]) => `${k}=${s.up ? s.peers : "down"}`).join(" ")}`)
        }
      }
      const over = t >= manifest.duration
      trackDrops()
      await stepFault(over)
      if (!over) await maybeStartFault()
      if (over && current === undefined) break
      if (live) {
        view.frame(
          t,
          nodes.map((n) => {
            const s = samples.get(n.spec.name)
            return { name: n.spec.name, state: n.state, peers: s?.up === true ? s.peers : undefined, fds: s?.fds, rssMb: s?.rssKb === undefined ? undefined : s.rssKb / 1024, restarts: n.restarts }
          }),
          current === undefined ? [] : [{ id: current.record.id, kind: current.fault.kind, nodes: current.record.nodes.join(","), since: current.record.start, healedFor: current.phase === "healing" ? t - current.healAt : undefined, bound: current.record.bound }],
          `e2e ${manifest.name}: ${nodes.length} nodes (${topo.mode}), ${(manifest.duration / 1000).toFixed(0)}s, faults so far ${faults.length}, downs ${downNodes().join(",") || "none"}`
        )
      }
      tick += 1000
      const wait = tick - now()
      if (wait > 0) await sleep(wait)
      else tick = now()
    }
    if (control.aborted) {
      check("run completed", false, `stopped by ${control.reason} at ${(now() / 1000).toFixed(1)}s`)
      if (current !== undefined) {
        current.record.result = "failed"
        current.record.note = `run stopped (${control.reason})`
      }
    }
    for (const f of explicit) {
      faults.push({ id: nextId++, kind: f.kind, nodes: Checks.faultNodes(f), detail: describeFault(f), start: f.at, heal: undefined, timeToHeal: undefined, bound: 0, boundTerms: {}, result: "skipped", note: "not reached before the end (previous faults healed late)", baseline: {}, peersLost: 0, effect: undefined })
    }

    // --- final checks
    for (const f of faults) {
      if (f.result === "skipped") continue
      check(`fault #${f.id} ${f.kind} (${f.nodes.join(",")}): mesh whole again within ${(f.bound / 1000).toFixed(1)}s of heal`, f.result === "healed", f.result === "healed" ? `${((f.timeToHeal ?? 0) / 1000).toFixed(1)}s` : f.note)
    }
    const skipped = faults.filter((f) => f.result === "skipped")
    if (skipped.length > 0) event(`skipped faults: ${skipped.map((f) => `#${f.id} ${f.kind} (${f.note})`).join("; ")}`)
    await sampleAll()
    const endViews = views()
    const lackingPersistent: Array<string> = []
    for (const n of nodes) {
      const s = endViews.get(n.spec.name)
      nodeRecords[n.spec.index]!.peersEnd = s?.up === true ? s.peers : undefined
      for (const p of persistent.get(n.spec.name) ?? []) if (s?.up === true && endViews.get(p)?.up === true && !s.peerNames.has(p)) lackingPersistent.push(`${n.spec.name} lacks ${p}`)
    }
    if ([...persistent.values()].some((l) => l.length > 0)) check("persistent peers connected at the end", lackingPersistent.length === 0, lackingPersistent.join("; "))
    report.peersLostOutsideFaults = dropsOutside
    if (manifest.checks.stableOutsideFaults) {
      check("no peer lost outside fault windows (fault start to whole again + 5 s)", dropsOutside.length === 0, dropsOutside.length === 0 ? "" : `${dropsOutside.length}: ${dropsOutside.slice(0, 8).join(", ")}`)
    } else if (dropsOutside.length > 0) event(`peers lost outside fault windows (not checked): ${dropsOutside.join(", ")}`)
    if (nodes.every((n) => n.state === "running") && formedCounts.size > 0) {
      const w = Checks.wholeAgain(formedCounts, endViews, persistent)
      check("mesh at the end as formed (every node at least its peer count when the mesh formed)", w.whole, w.lacking.join("; "))
    }
    const died = nodes.filter((n) => n.unexpectedExits.length > 0)
    nodes.forEach((n) => (nodeRecords[n.spec.index]!.unexpectedExits = n.unexpectedExits.length))
    check("no node process died unexpectedly", died.length === 0, died.map((n) => `${n.spec.name}: ${n.unexpectedExits.map((e) => `code ${e.code} signal ${e.signal} at ${(e.t / 1000).toFixed(1)}s`).join(", ")}`).join("; "))
    const notUp = nodes.filter((n) => n.state !== "not_started" && samples.get(n.spec.name)?.up !== true)
    check("every node answers at the end", notUp.length === 0, notUp.map((n) => n.spec.name).join(", "))
    nodes.forEach((n) => (nodeRecords[n.spec.index]!.errorLines = n.errorLines.length))
    const errors = nodes.flatMap((n) => n.errorLines.map((l) => `${n.spec.name}: ${l}`))
    check("no unexpected ERROR log lines", errors.length === 0, errors.length === 0 ? "" : `${errors.length} lines, first: ${errors.slice(0, 3).join(" || ")}`)
    check(`open fds at most check.fds_max ${manifest.checks.fdsMax}`, ![...limitFailures].some((k) => k.startsWith("fds")), `max ${Math.max(...nodeRecords.map((r) => r.maxFds))}`)
    check(`RSS at most check.rss_max_mb ${manifest.checks.rssMaxMb} MB`, ![...limitFailures].some((k) => k.startsWith("rss")), `max ${Math.max(...nodeRecords.map((r) => r.maxRssMb)).toFixed(0)} MB`)
    const flat = { rss: [] as Array<string>, fds: [] as Array<string>, judged: 0 }
    for (const [key, list] of resources) {
      const start = list[0]?.t ?? 0
      const warm = Math.max(manifest.checks.warmup, start + manifest.checks.warmup)
      const r = Checks.flatness(list.map((x) => ({ t: x.t, value: x.rss })), warm, manifest.checks.flatTolerance, manifest.checks.flatMinSpan)
      const f = Checks.flatness(list.map((x) => ({ t: x.t, value: x.fds })), warm, manifest.checks.flatTolerance, manifest.checks.flatMinSpan, 2)
      if (r.judged) flat.judged++
      if (!r.ok) flat.rss.push(`${key} ${r.first.toFixed(0)} -> ${r.last.toFixed(0)} MB (+${(r.growth * 100).toFixed(0)}%)`)
      if (!f.ok) flat.fds.push(`${key} ${f.first} -> ${f.last} fds`)
    }
    if (flat.judged === 0) {
      event(`RSS/fd flatness not judged: no process ran check.flat_min_span ${(manifest.checks.flatMinSpan / 1000).toFixed(0)}s after warm-up`)
    } else {
      check(`RSS flat within ${(manifest.checks.flatTolerance * 100).toFixed(0)}% after warm-up`, flat.rss.length === 0, flat.rss.join("; ") || `${flat.judged} process lifetimes judged`)
      check(`open fds flat within ${(manifest.checks.flatTolerance * 100).toFixed(0)}% (+2) after warm-up`, flat.fds.length === 0, flat.fds.join("; ") || `${flat.judged} process lifetimes judged`)
    }
    if (probe) {
      const p = Checks.accountProbe(probeSamples, windows)
      report.probe = { enabled: true, sent: p.sent, received: p.received, missingDuringFaults: p.missingDuringFaults, missingOutside: p.missingOutside, duplicates: p.duplicates }
      check("probe: no missing messages outside fault windows", p.missingOutside <= manifest.checks.probeMissingOutside, p.outside.slice(0, 5).map((o) => `${o.node} ${o.missing} at ${(o.t / 1000).toFixed(0)}s`).join(", ") || `${p.missingDuringFaults} missing during faults`)
      check("probe: no duplicated or reordered messages", p.duplicates === 0, p.duplicates === 0 ? "" : `${p.duplicates}`)
    }
  } finally {
    // --- teardown (also after an error or a signal)
    const nodes = prepared?.nodes ?? []
    await Promise.all(nodes.map((n) => Nodes.stop(n, "SIGTERM", 10_000)))
    for (const n of nodes) {
      try {
        n.bridge?.kill("SIGKILL")
      } catch {
        // gone
      }
      n.log?.end()
    }
    fabric?.healAll()
    if (proxy !== undefined) {
      const st = proxy.stats()
      report.linkProxy = st
      event(`link proxy: ${st.accepted} connections (${st.refused} refused, ${st.unknownSource} from no node's address), at most ${(st.maxPipeHeld / 1024).toFixed(0)} KiB held in one direction, readers paused ${st.pausedReads} times; closing`)
      await proxy.close()
    }
    echo?.close()
    try {
      mkdirSync(reportDir, { recursive: true })
      for (const n of nodes) if (existsSync(join(n.home, "node.log"))) cpSync(join(n.home, "node.log"), join(reportDir, `${n.spec.name}.log`))
    } catch {
      // logs are a convenience
    }
    if (topology !== undefined) Netns.destroy(topology)
    rmSync(dir, { recursive: true, force: true })
    control.emergency = () => {}
    view.close()
  }
  if (topology?.mode === "netns") {
    const left = Netns.leftoverNamespaces().filter((n) => n.includes(runId))
    check("namespaces removed at the end", left.length === 0, left.join(", "))
  }
  report.durationMs = now()
  report.passed = checks.every((c) => c.ok)
  return report
}

/**
 * The run's report: per fault (kind, nodes, start, heal, time to heal, bound), per node (fds,
 * RSS, restarts), the checks passed and failed; printed as tables at the end and written as JSON.
 */
import { writeFileSync } from "node:fs"
import type { FaultKind } from "./Manifest.ts"
import type { Stats } from "./Proxy.ts"

export interface FaultRecord {
  readonly id: number
  readonly kind: FaultKind
  readonly nodes: ReadonlyArray<string>
  /** Human description: groups, percent, delay. */
  readonly detail: string
  /** ms since the run started. */
  readonly start: number
  heal: number | undefined
  /** ms from heal until the mesh was whole again. */
  timeToHeal: number | undefined
  /** The bound on timeToHeal, ms, and its terms. */
  readonly bound: number
  readonly boundTerms: Readonly<Record<string, number>>
  /** "pending" while in force or waiting to re-mesh. */
  result: "pending" | "healed" | "failed" | "skipped"
  note: string
  /** Peer counts before the fault. */
  readonly baseline: Readonly<Record<string, number>>
  /** Connections lost against the baseline at the worst moment (summed over nodes). */
  peersLost: number
  /** What the in-effect verification saw (network faults). */
  effect: string | undefined
}

export interface NodeRecord {
  readonly name: string
  readonly nodeId: string
  readonly ip: string
  restarts: number
  maxFds: number
  rssStartMb: number | undefined
  rssEndMb: number | undefined
  maxRssMb: number
  peersEnd: number | undefined
  unexpectedExits: number
  errorLines: number
  /** [ms, RSS MB, open fds] every 30 s. */
  readonly series: Array<[number, number, number]>
}

export interface CheckRecord {
  readonly name: string
  readonly ok: boolean
  readonly detail: string
}

export interface Report {
  readonly manifest: string
  readonly name: string
  readonly run: string
  readonly mode: "netns" | "loopback"
  readonly modeReason: string | undefined
  readonly startedAt: string
  durationMs: number
  readonly boundFormula: string
  readonly faults: Array<FaultRecord>
  readonly nodes: Array<NodeRecord>
  readonly checks: Array<CheckRecord>
  probe: { readonly enabled: boolean; sent: number; received: number; missingDuringFaults: number; missingOutside: number; duplicates: number } | undefined
  /** Drops of a node's peer count while no fault was in force ("n0 4->3 at 26s"). */
  peersLostOutsideFaults: ReadonlyArray<string>
  /** Loopback mode: the link proxy's counts at the end (undefined in namespace mode, or without the proxy). */
  linkProxy?: Stats
  passed: boolean
  logs: string
}

export const secs = (ms: number | undefined, digits = 1) => (ms === undefined ? "-" : `${(ms / 1000).toFixed(digits)}s`)

const table = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)))
  const line = (cells: ReadonlyArray<string>) => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join("  ").trimEnd()
  return [line(header), ...rows.map(line)].join("\n")
}

/** The final tables and summary as text. */
export const render = (r: Report): string => {
  const faults = table(
    ["#", "KIND", "NODES", "DETAIL", "START", "HEAL", "TO HEAL", "BOUND", "LOST", "RESULT"],
    r.faults.map((f) => [String(f.id), f.kind, f.nodes.join(","), f.detail, secs(f.start), secs(f.heal), secs(f.timeToHeal), secs(f.bound, 0), String(f.peersLost), f.result + (f.note === "" ? "" : ` (${f.note})`)])
  )
  const nodes = table(
    ["NODE", "ID", "IP", "RESTARTS", "MAX FDS", "RSS START", "RSS END", "RSS MAX", "PEERS END", "DIED", "ERRORS"],
    r.nodes.map((n) => [n.name, n.nodeId.slice(0, 12), n.ip, String(n.restarts), String(n.maxFds), mb(n.rssStartMb), mb(n.rssEndMb), mb(n.maxRssMb), n.peersEnd === undefined ? "-" : String(n.peersEnd), String(n.unexpectedExits), String(n.errorLines)])
  )
  const checks = r.checks.map((c) => `${c.ok ? "PASS" : "FAIL"}  ${c.name}${c.detail === "" ? "" : `: ${c.detail}`}`).join("\n")
  const probe = r.probe === undefined
    ? "probe: not run (the node has no `start --probe`)"
    : `probe: sent ${r.probe.sent}, received ${r.probe.received}, missing during faults ${r.probe.missingDuringFaults}, missing outside faults ${r.probe.missingOutside}, duplicates/reordered ${r.probe.duplicates}`
  const failed = r.checks.filter((c) => !c.ok).length
  return [
    `e2e ${r.name} (run ${r.run}, ${r.mode}${r.modeReason === undefined ? "" : `: ${r.modeReason}`}) took ${secs(r.durationMs)}`,
    "",
    faults,
    "",
    nodes,
    "",
    probe,
    ...(r.linkProxy === undefined ? [] : [`link proxy: ${r.linkProxy.accepted} connections, ${r.linkProxy.refused} refused, ${r.linkProxy.unknownSource} from no node's address, at most ${(r.linkProxy.maxPipeHeld / 1024).toFixed(0)} KiB held in one direction, readers paused ${r.linkProxy.pausedReads} times`]),
    `peers lost outside fault windows: ${r.peersLostOutsideFaults.length === 0 ? "none" : r.peersLostOutsideFaults.join(", ")}`,
    `heal bound: ${r.boundFormula}`,
    "",
    checks,
    "",
    `${r.passed ? "PASSED" : "FAILED"}: ${r.checks.length - failed}/${r.checks.length} checks passed; node logs in ${r.logs}`
  ].join("\n")
}

const mb = (v: number | undefined) => (v === undefined ? "-" : `${v.toFixed(0)}MB`)

export const writeJson = (path: string, r: Report) => writeFileSync(path, JSON.stringify(r, null, 2) + "\n")

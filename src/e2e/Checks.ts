/**
 * The pure logic of the e2e checks: the heal bound, whether the mesh is whole again, probe
 * accounting against fault windows, resource flatness, and the log allow-list. No processes or
 * sockets here, so `test/e2e/Checks.test.ts` runs it without root.
 */
import type { Checks, Fault, FaultKind } from "./Manifest.ts"
import { PROCESS_DOWN_KINDS } from "./Manifest.ts"

// ---------------------------------------------------------------------------------------------
// The heal bound

/** The terms of a heal bound, in ms, so a report can show where the time goes. */
export interface Bound {
  /** Time for a connection left half-open by the fault to be noticed: pingInterval + pongTimeout, or 0 when the kernel signals the end (process death). */
  readonly keepalive: number
  /** Pending back-off of an address that failed for the whole fault: min(2P + minRetryTime, cap). */
  readonly backoff: number
  readonly jitter: number
  readonly dial: number
  readonly handshake: number
  /** A restarted node's own start (process, peer store). */
  readonly startup: number
  readonly slack: number
  readonly total: number
}

/**
 * The bound on the time from a fault's heal until the mesh is whole again, derived as in
 * docs/SIMULATION.md "Bounds" for real TCP:
 *
 *   bound = K + min(2P + minRetryTime, cap) + retryJitter + dialTimeout + handshake + startup + slack
 *
 * - P: the fault's duration (addresses may have failed for all of it; the back-off pending at the
 *   heal is at most about twice the time spent failing: 250 ms × 2^(n−1) doubling);
 * - cap: `maxRetryTime` (30 min), or `maxRetryTimePersistent` (5 min) for persistent peers;
 * - K: keepalive detection, `pingInterval + pongTimeout` (60 s + 45 s by default), for faults that
 *   leave both processes alive (a connection one side gave up on during the fault is noticed by the
 *   other only when it next sends, at worst its next ping); 0 for kill/restart/wipe/skew (the kernel
 *   closes the dead process's sockets, peers see it at once);
 * - startup: only for kill/restart/wipe/skew (the node is started again at heal);
 * - retryJitter 5 s, dialTimeout 3 s, handshake 1 s (LAN), slack 2 s (1 s sampling and scheduling).
 *
 * `check.heal_bound` in the manifest replaces the derived total.
 */
export const healBound = (checks: Checks, kind: FaultKind, durationMs: number, persistent = false): Bound => {
  const down = PROCESS_DOWN_KINDS.has(kind)
  const keepalive = down ? 0 : checks.pingInterval + checks.pongTimeout
  const cap = persistent ? checks.maxRetryTimePersistent : checks.maxRetryTime
  const backoff = Math.min(2 * durationMs + checks.minRetryTime, cap > 0 ? cap : Infinity)
  const startup = down ? checks.startup : 0
  const terms = { keepalive, backoff, jitter: checks.retryJitter, dial: checks.dialTimeout, handshake: checks.handshake, startup, slack: checks.slack }
  const derived = terms.keepalive + terms.backoff + terms.jitter + terms.dial + terms.handshake + terms.startup + terms.slack
  return { ...terms, total: checks.healBound ?? derived }
}

/** The bound formula as text (the report and docs/E2E.md print it). */
export const BOUND_FORMULA = "K + min(2P + minRetryTime, maxRetryTime|maxRetryTimePersistent) + retryJitter + dialTimeout + handshake + startup + slack; K = pingInterval + pongTimeout (0 for kill/restart/wipe/skew), startup only for kill/restart/wipe/skew"

// ---------------------------------------------------------------------------------------------
// Whole again

/** What one node looks like in a sample. */
export interface NodeView {
  /** The node process is running and answered. */
  readonly up: boolean
  readonly peers: number
  /** Node names of its peers (from /net_info, mapped through node IDs). */
  readonly peerNames: ReadonlySet<string>
}

export interface Whole {
  readonly whole: boolean
  /** Why not, one entry per node: "n2 2/4 peers", "n3 down", "n1 lacks persistent n0". */
  readonly lacking: ReadonlyArray<string>
}

/**
 * The mesh is whole when every node that should run is up, has at least as many peers as it had
 * before the fault (`baseline`), and has each of its persistent peers that is up.
 */
export const wholeAgain = (
  baseline: ReadonlyMap<string, number>,
  views: ReadonlyMap<string, NodeView>,
  persistent: ReadonlyMap<string, ReadonlyArray<string>> = new Map()
): Whole => {
  const lacking: Array<string> = []
  for (const [name, want] of baseline) {
    const v = views.get(name)
    if (v === undefined || !v.up) {
      lacking.push(`${name} down`)
      continue
    }
    if (v.peers < want) lacking.push(`${name} ${v.peers}/${want} peers`)
    for (const p of persistent.get(name) ?? []) {
      if (views.get(p)?.up === true && !v.peerNames.has(p)) lacking.push(`${name} lacks persistent ${p}`)
    }
  }
  return { whole: lacking.length === 0, lacking }
}

/**
 * Whether peer counts have settled: the same for every node over the last `n` samples (the mesh
 * has formed; used to take the baseline before the first fault).
 */
export const settled = (history: ReadonlyArray<ReadonlyMap<string, number>>, n: number): boolean => {
  if (history.length < n) return false
  const last = history.slice(-n)
  const first = last[0]!
  if ([...first.values()].some((c) => c === 0)) return false
  return last.every((h) => h.size === first.size && [...first].every(([k, v]) => h.get(k) === v))
}

// ---------------------------------------------------------------------------------------------
// Probe accounting

/** Cumulative probe counters of one node process at one time. */
export interface ProbeSample {
  readonly t: number
  readonly node: string
  /** Which start of the node (counters restart at 0 with the process). */
  readonly incarnation: number
  readonly sent: number
  readonly received: number
  readonly missing: number
  readonly duplicates: number
}

/** A time window in which losses are expected (a fault, until its mesh is whole again, plus grace). */
export interface Window {
  readonly start: number
  readonly end: number
}

export interface ProbeTotals {
  readonly sent: number
  readonly received: number
  readonly missingDuringFaults: number
  readonly missingOutside: number
  readonly duplicates: number
  /** Times (ms) and nodes of missing messages outside fault windows, for the report. */
  readonly outside: ReadonlyArray<{ readonly t: number; readonly node: string; readonly missing: number }>
}

/**
 * Adds up the increments of each node's counters between consecutive samples of the same process,
 * and attributes missing messages to a fault when the interval they were counted in touches one of
 * the windows. A new incarnation starts from 0 (its first sample's counts are its increments).
 */
export const accountProbe = (samples: ReadonlyArray<ProbeSample>, windows: ReadonlyArray<Window>): ProbeTotals => {
  const last = new Map<string, ProbeSample>()
  let sent = 0, received = 0, during = 0, outsideTotal = 0, duplicates = 0
  const outside: Array<{ t: number; node: string; missing: number }> = []
  const sorted = [...samples].sort((a, b) => a.t - b.t)
  for (const s of sorted) {
    const prev = last.get(s.node)
    const base = prev !== undefined && prev.incarnation === s.incarnation ? prev : undefined
    const d = (k: "sent" | "received" | "missing" | "duplicates") => Math.max(0, s[k] - (base?.[k] ?? 0))
    sent += d("sent")
    received += d("received")
    duplicates += d("duplicates")
    const m = d("missing")
    if (m > 0) {
      const from = prev?.t ?? s.t
      const inFault = windows.some((w) => from <= w.end && s.t >= w.start)
      if (inFault) during += m
      else {
        outsideTotal += m
        outside.push({ t: s.t, node: s.node, missing: m })
      }
    }
    last.set(s.node, s)
  }
  return { sent, received, missingDuringFaults: during, missingOutside: outsideTotal, duplicates, outside }
}

// ---------------------------------------------------------------------------------------------
// Resources

/** One resource sample of one node process. */
export interface ResourceSample {
  readonly t: number
  readonly value: number
}

export interface Flatness {
  /** Whether the lifetime after warm-up was long enough to judge. */
  readonly judged: boolean
  readonly ok: boolean
  /** Peak of the middle third and of the last third of the samples after warm-up. */
  readonly first: number
  readonly last: number
  readonly growth: number
}

/**
 * Whether a resource stayed flat over one process lifetime. The samples after `warmupEnd` are cut
 * in thirds; the peak of the last third must be at most `1 + tolerance` times the peak of the
 * middle third (plus `absolute`, for small counts such as fds where one connection is several
 * percent). Peaks, not medians: a Node process's RSS is a sawtooth (heap grows to a plateau, GC
 * brings it down), and a plateau reached after the warm-up is not a leak, while a leak raises
 * every peak. The first third is left out (the heap still growing to its plateau). Judged only
 * when the samples after warm-up span at least `minSpan` ms.
 */
export const flatness = (samples: ReadonlyArray<ResourceSample>, warmupEnd: number, tolerance: number, minSpan: number, absolute = 0): Flatness => {
  const after = samples.filter((s) => s.t >= warmupEnd)
  const span = after.length < 2 ? 0 : after[after.length - 1]!.t - after[0]!.t
  if (span < minSpan || after.length < 9) return { judged: false, ok: true, first: 0, last: 0, growth: 0 }
  const third = Math.floor(after.length / 3)
  const peak = (xs: ReadonlyArray<ResourceSample>) => Math.max(...xs.map((s) => s.value))
  const first = peak(after.slice(third, 2 * third))
  const last = peak(after.slice(2 * third))
  const growth = first === 0 ? 0 : (last - first) / first
  return { judged: true, ok: last <= first * (1 + tolerance) + absolute, first, last, growth }
}

// ---------------------------------------------------------------------------------------------
// Logs

/** ERROR lines every run may see: none yet; the manifest's `check.allow_errors` adds its own. */
export const DEFAULT_ALLOWED_ERRORS: ReadonlyArray<string> = []

/** Whether a node's output line is an ERROR (or FATAL) line not on the allow-list. */
export const unexpectedError = (line: string, allow: ReadonlyArray<RegExp>): boolean => {
  if (!/\blevel=(ERROR|FATAL)\b|"level":"(ERROR|FATAL)"/i.test(line)) return false
  return !allow.some((re) => re.test(line))
}

/** The time window of a fault for probe accounting: from its start to when it healed (or its bound), plus grace. */
export const faultWindow = (start: number, healAt: number, wholeAt: number | undefined, bound: number, grace: number): Window => ({
  start,
  end: (wholeAt ?? healAt + bound) + grace
})

/** Nodes a fault touches (for the report). */
export const faultNodes = (f: Fault): ReadonlyArray<string> =>
  f.kind === "partition" ? f.groups.flat() : f.kind === "one_way" ? [...f.from, ...f.to] : f.nodes

/**
 * The e2e manifest: which nodes run, for how long, under which network conditions, which faults
 * are injected when, and what the checks allow. TOML, parsed with `smol-toml`; every problem is one
 * {@link ManifestError} naming the key (`perturbation[2].groups: ...`). See docs/E2E.md.
 *
 * Pure: no file system, no processes, so it is unit-tested without root.
 */
import { parse as parseToml } from "smol-toml"
import * as Seeded from "../domain/Seeded.ts"

/** A manifest value is wrong; `key` names it (`nodes.count`, `perturbation[0].at`). */
export class ManifestError extends Error {
  readonly _tag = "ManifestError"
  readonly key: string
  constructor(key: string, message: string) {
    super(`${key}: ${message}`)
    this.key = key
  }
}

/** Fault kinds the runner injects. */
export const FAULT_KINDS = ["partition", "one_way", "isolate", "loss", "latency", "bandwidth", "pause", "kill", "restart", "wipe", "skew"] as const
export type FaultKind = (typeof FAULT_KINDS)[number]

/** Faults that need network namespaces (skipped on loopback). */
export const NETWORK_KINDS: ReadonlySet<FaultKind> = new Set(["partition", "one_way", "isolate", "loss", "latency", "bandwidth"])
/**
 * Faults that stop the node process (its peers see it down at once; it is restarted at heal). A
 * skew restarts it twice: with its clock moved (libfaketime) at the start, and as it was at heal.
 */
export const PROCESS_DOWN_KINDS: ReadonlySet<FaultKind> = new Set(["kill", "restart", "wipe", "skew"])

const ALIASES: Record<string, FaultKind> = {
  "one-way": "one_way",
  "one_way_partition": "one_way",
  "one-way-partition": "one_way",
  oneway: "one_way",
  jitter: "latency",
  delay: "latency",
  rate: "bandwidth",
  "kill-9": "kill",
  kill9: "kill",
  "wipe-restart": "wipe",
  wipe_restart: "wipe",
  stop: "pause"
}

export interface NodeSpec {
  readonly name: string
  readonly index: number
  readonly seedMode: boolean
  /** Names of persistent peers. */
  readonly persistentPeers: ReadonlyArray<string>
  /** Names of bootstrap peers. */
  readonly bootstrap: ReadonlyArray<string>
  readonly maxInbound: number
  readonly maxOutbound: number
  /** ms after the run starts at which this node is started (0: with the others). */
  readonly startAt: number
}

export interface Fault {
  readonly kind: FaultKind
  /** ms after the start (for explicit faults; random faults get theirs when drawn). */
  readonly at: number
  /** ms until heal. */
  readonly duration: number
  /** Nodes affected (isolate, loss, latency, bandwidth, pause, kill, restart, wipe); empty: all (loss/latency/bandwidth). */
  readonly nodes: ReadonlyArray<string>
  /** partition: the groups (traffic between groups dropped both ways). */
  readonly groups: ReadonlyArray<ReadonlyArray<string>>
  /** one_way: traffic from `from` to `to` dropped. */
  readonly from: ReadonlyArray<string>
  readonly to: ReadonlyArray<string>
  /** loss: percent 0-100. */
  readonly percent: number
  /** latency: one-way delay and uniform jitter in ms. */
  readonly delay: number
  readonly jitter: number
  /** bandwidth: tc tbf rate, e.g. "1mbit". */
  readonly rate: string
  /** skew: how far the nodes' wall clock is moved (ms, + ahead, - behind) while the fault lasts. */
  readonly skew: number
}

export interface RandomFaults {
  readonly every: number
  readonly kinds: ReadonlyArray<FaultKind>
  readonly seed: number
  /** ms of the first random fault. */
  readonly start: number
  /** No fault starts later than this (ms); default: duration - 30 s. */
  readonly stop: number
  readonly minDuration: number
  readonly maxDuration: number
  /** Nodes hit by one fault at most. */
  readonly maxNodes: number
  readonly lossPercent: number
  readonly delay: number
  readonly jitter: number
  readonly rate: string
  /** Nodes never killed or restarted (so their RSS and fds can be judged over the whole run). */
  readonly spare: ReadonlyArray<string>
  /** skew faults: the clock offset's size (ms); each draw picks ahead or behind. */
  readonly skew: number
}

export interface Checks {
  /** Fixed heal bound (ms) instead of the derived one. */
  readonly healBound: number | undefined
  /** Node keepalive the bound assumes: `[nodes.config]`'s p2p.ping_interval/pong_timeout, else the node's defaults (60 s, 45 s). */
  readonly pingInterval: number
  readonly pongTimeout: number
  readonly dialTimeout: number
  readonly handshake: number
  readonly minRetryTime: number
  readonly maxRetryTime: number
  readonly maxRetryTimePersistent: number
  readonly retryJitter: number
  /** Extra time allowed on every bound (sampling, scheduling). */
  readonly slack: number
  /** Time a restarted node may take to start (process start, peer store open) before it dials. */
  readonly startup: number
  /** How long the initial mesh may take to form. */
  readonly formBound: number
  /** Samples before this (ms) are not used for flatness. */
  readonly warmup: number
  readonly rssMaxMb: number
  readonly fdsMax: number
  /** Allowed growth of RSS and fds after warm-up (0.1 = 10%). */
  readonly flatTolerance: number
  /** Flatness is judged only for process lifetimes of at least this long after warm-up. */
  readonly flatMinSpan: number
  /** Regular expressions for ERROR log lines that are expected. */
  readonly allowErrors: ReadonlyArray<string>
  /** Missing probe messages allowed outside fault windows. */
  readonly probeMissingOutside: number
  /** Fail when a node loses a peer while no fault is in force (from whole again + 5 s to the next fault). */
  readonly stableOutsideFaults: boolean
}

export interface Manifest {
  readonly name: string
  readonly duration: number
  readonly network: string
  readonly seed: number
  readonly nodes: ReadonlyArray<NodeSpec>
  /** Extra config.toml keys (dotted) written into every node's config. */
  readonly nodeConfig: Readonly<Record<string, unknown>>
  /** Conditions for the whole run. */
  readonly conditions: { readonly loss: number; readonly delay: number; readonly jitter: number; readonly rate: string }
  readonly faults: ReadonlyArray<Fault>
  readonly random: RandomFaults | undefined
  readonly checks: Checks
  /** Run the nodes with `start --probe` when the node supports it. */
  readonly probe: boolean
}

// ---------------------------------------------------------------------------------------------

/** Parses "500ms", "20s", "1m30s", "2h", a number of seconds. */
export const parseDuration = (key: string, v: unknown): number => {
  if (typeof v === "number" && Number.isFinite(v) && v >= 0) return v * 1000
  if (typeof v !== "string") throw new ManifestError(key, `must be a duration like "500ms", "20s" or "1m", got ${JSON.stringify(v)}`)
  const s = v.trim()
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy
  let total = 0
  let matched = 0
  let m: RegExpExecArray | null
  while ((m = re.exec(s)) !== null) {
    const n = Number(m[1])
    total += m[2] === "ms" ? n : m[2] === "s" ? n * 1000 : m[2] === "m" ? n * 60_000 : n * 3_600_000
    matched = re.lastIndex
  }
  if (s === "" || matched !== s.length) throw new ManifestError(key, `must be a duration like "500ms", "20s" or "1m", got ${JSON.stringify(v)}`)
  return total
}

/** "1mbit", "500kbit", "2mbps": what tc tbf accepts. */
const RATE = /^\d+(\.\d+)?(bit|kbit|mbit|gbit|bps|kbps|mbps|gbps)$/

type Table = Record<string, unknown>

const isTable = (v: unknown): v is Table => typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Date)

class Reader {
  readonly table: Table
  readonly prefix: string
  readonly used = new Set<string>()
  constructor(table: Table, prefix: string) {
    this.table = table
    this.prefix = prefix
  }
  key(k: string) {
    return this.prefix === "" ? k : `${this.prefix}.${k}`
  }
  has(k: string) {
    return this.table[k] !== undefined
  }
  raw(k: string): unknown {
    this.used.add(k)
    return this.table[k]
  }
  duration(k: string, d: number): number {
    const v = this.raw(k)
    return v === undefined ? d : parseDuration(this.key(k), v)
  }
  int(k: string, d: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
    const v = this.raw(k)
    if (v === undefined) return d
    if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) throw new ManifestError(this.key(k), `must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`)
    return v
  }
  num(k: string, d: number, min: number, max: number): number {
    const v = this.raw(k)
    if (v === undefined) return d
    if (typeof v !== "number" || !Number.isFinite(v) || v < min || v > max) throw new ManifestError(this.key(k), `must be a number from ${min} to ${max}, got ${JSON.stringify(v)}`)
    return v
  }
  bool(k: string, d: boolean): boolean {
    const v = this.raw(k)
    if (v === undefined) return d
    if (typeof v !== "boolean") throw new ManifestError(this.key(k), `must be true or false, got ${JSON.stringify(v)}`)
    return v
  }
  str(k: string, d: string): string {
    const v = this.raw(k)
    if (v === undefined) return d
    if (typeof v !== "string") throw new ManifestError(this.key(k), `must be a string, got ${JSON.stringify(v)}`)
    return v
  }
  rate(k: string, d: string): string {
    const v = this.str(k, d)
    if (v !== "" && !RATE.test(v)) throw new ManifestError(this.key(k), `must be a rate like "1mbit" or "500kbit", got ${JSON.stringify(v)}`)
    return v
  }
  strings(k: string, d: ReadonlyArray<string>): ReadonlyArray<string> {
    const v = this.raw(k)
    if (v === undefined) return d
    if (typeof v === "string") return v.split(",").map((s) => s.trim()).filter((s) => s !== "")
    if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) throw new ManifestError(this.key(k), `must be a list of strings, got ${JSON.stringify(v)}`)
    return v as Array<string>
  }
  /** Fails on keys nobody read: a typo should not be silently ignored. */
  done(): void {
    for (const k of Object.keys(this.table)) {
      if (!this.used.has(k)) throw new ManifestError(this.key(k), "unknown key")
    }
  }
}

export const normalizeKind = (key: string, v: unknown): FaultKind => {
  if (typeof v !== "string") throw new ManifestError(key, `must be one of ${FAULT_KINDS.join(", ")}, got ${JSON.stringify(v)}`)
  const k = v.trim().toLowerCase()
  const kind = (FAULT_KINDS as ReadonlyArray<string>).includes(k.replace(/-/g, "_")) ? (k.replace(/-/g, "_") as FaultKind) : ALIASES[k]
  if (kind === undefined) throw new ManifestError(key, `must be one of ${FAULT_KINDS.join(", ")}, got ${JSON.stringify(v)}`)
  return kind
}

const checkNames = (key: string, names: ReadonlyArray<string>, known: ReadonlySet<string>) => {
  for (const n of names) if (!known.has(n)) throw new ManifestError(key, `unknown node ${JSON.stringify(n)} (nodes are ${[...known].join(", ")})`)
}

const parseNodes = (doc: Table): { nodes: Array<NodeSpec>; config: Record<string, unknown> } => {
  const nodesTable = doc["nodes"]
  const list = doc["node"]
  if (nodesTable !== undefined && !isTable(nodesTable)) throw new ManifestError("nodes", "must be a table ([nodes] with count = N)")
  const defaults = new Reader(isTable(nodesTable) ? nodesTable : {}, "nodes")
  const count = defaults.int("count", Array.isArray(list) ? list.length : 0, 0, 200)
  const maxInbound = defaults.int("max_inbound", 40, 0, 10_000)
  const maxOutbound = defaults.int("max_outbound", 10, 0, 10_000)
  // Default: every node bootstraps from the first one.
  const firstName = Array.isArray(list) && isTable(list[0]) && typeof list[0]["name"] === "string" ? list[0]["name"] : "n0"
  const defaultBootstrap = defaults.strings("bootstrap", [firstName])
  const defaultPersistent = defaults.strings("persistent_peers", [])
  const rawConfig = defaults.raw("config")
  if (rawConfig !== undefined && !isTable(rawConfig)) throw new ManifestError("nodes.config", "must be a table of config.toml keys")
  const config: Record<string, unknown> = {}
  const flat = (t: Table, p: string) => {
    for (const [k, v] of Object.entries(t)) {
      if (isTable(v)) flat(v, `${p}${k}.`)
      else config[`${p}${k}`] = v
    }
  }
  if (isTable(rawConfig)) flat(rawConfig, "")
  defaults.done()
  if (list !== undefined && (!Array.isArray(list) || list.some((x) => !isTable(x)))) throw new ManifestError("node", "must be an array of tables ([[node]])")
  const entries = (list ?? []) as Array<Table>
  if (entries.length > count) throw new ManifestError("nodes.count", `is ${count} but ${entries.length} [[node]] entries are listed`)
  if (count < 1) throw new ManifestError("nodes.count", "at least one node is needed ([nodes] count = N, or [[node]] entries)")
  const nodes: Array<NodeSpec> = []
  for (let i = 0; i < count; i++) {
    const r = new Reader(entries[i] ?? {}, `node[${i}]`)
    const name = r.str("name", `n${i}`)
    if (!/^[a-z0-9_-]{1,16}$/i.test(name)) throw new ManifestError(r.key("name"), `must be 1-16 letters, digits, - or _, got ${JSON.stringify(name)}`)
    nodes.push({
      name,
      index: i,
      seedMode: r.bool("seed_mode", false),
      persistentPeers: r.strings("persistent_peers", defaultPersistent),
      bootstrap: r.strings("bootstrap", defaultBootstrap),
      maxInbound: r.int("max_inbound", maxInbound, 0, 10_000),
      maxOutbound: r.int("max_outbound", maxOutbound, 0, 10_000),
      startAt: r.duration("start_at", 0)
    })
    r.done()
  }
  const names = new Set(nodes.map((n) => n.name))
  if (names.size !== nodes.length) throw new ManifestError("node", "node names must be unique")
  nodes.forEach((n, i) => {
    checkNames(`node[${i}].persistent_peers`, n.persistentPeers, names)
    checkNames(`node[${i}].bootstrap`, n.bootstrap, names)
  })
  return { nodes, config }
}

const parseFault = (r: Reader, names: ReadonlySet<string>, at: number): Fault => {
  const kind = normalizeKind(r.key("kind"), r.raw("kind"))
  const fault: Fault = {
    kind,
    at,
    duration: r.duration("duration", 10_000),
    nodes: r.strings("nodes", []),
    groups: [],
    from: r.strings("from", []),
    to: r.strings("to", []),
    percent: r.num("percent", 30, 0, 100),
    delay: r.duration("delay", 100),
    jitter: r.duration("jitter", 0),
    rate: r.rate("rate", "1mbit"),
    skew: parseOffset(r.key("offset"), r.raw("offset") ?? "+1h")
  }
  const g = r.raw("groups")
  let groups: Array<Array<string>> = []
  if (g !== undefined) {
    if (!Array.isArray(g) || g.some((x) => !Array.isArray(x) || x.some((y: unknown) => typeof y !== "string"))) {
      throw new ManifestError(r.key("groups"), `must be a list of lists of node names, e.g. [["n0","n1"],["n2"]], got ${JSON.stringify(g)}`)
    }
    groups = g as Array<Array<string>>
  }
  checkNames(r.key("nodes"), fault.nodes, names)
  checkNames(r.key("from"), fault.from, names)
  checkNames(r.key("to"), fault.to, names)
  groups.forEach((grp, i) => checkNames(`${r.key("groups")}[${i}]`, grp, names))
  if (kind === "partition") {
    if (groups.length < 2) throw new ManifestError(r.key("groups"), "a partition needs at least two groups")
    const all = groups.flat()
    if (new Set(all).size !== all.length) throw new ManifestError(r.key("groups"), "a node is in two groups")
  }
  if (kind === "one_way" && (fault.from.length === 0 || fault.to.length === 0)) throw new ManifestError(r.key("from"), "a one-way partition needs from = [...] and to = [...]")
  if ((kind === "isolate" || kind === "pause" || PROCESS_DOWN_KINDS.has(kind)) && fault.nodes.length === 0) {
    throw new ManifestError(r.key("nodes"), `a ${kind} fault needs nodes = [...]`)
  }
  return { ...fault, groups }
}

const parseRandom = (doc: Table, duration: number, names: ReadonlySet<string>): RandomFaults | undefined => {
  const t = doc["random"]
  if (t === undefined) return undefined
  if (!isTable(t)) throw new ManifestError("random", "must be a table ([random] fault_every = \"10s\")")
  const r = new Reader(t, "random")
  const every = r.duration("fault_every", 10_000)
  if (every <= 0) throw new ManifestError("random.fault_every", "must be more than 0s")
  const kinds = r.strings("kinds", FAULT_KINDS).map((k, i) => normalizeKind(`random.kinds[${i}]`, k))
  if (kinds.length === 0) throw new ManifestError("random.kinds", "must name at least one kind")
  const minDuration = r.duration("min_duration", 3_000)
  const maxDuration = r.duration("max_duration", 8_000)
  if (maxDuration < minDuration) throw new ManifestError("random.max_duration", "must be at least random.min_duration")
  const out: RandomFaults = {
    every,
    kinds,
    seed: r.int("seed", 1),
    start: r.duration("start", 30_000),
    stop: r.duration("stop", Math.max(0, duration - 30_000)),
    minDuration,
    maxDuration,
    maxNodes: r.int("max_nodes", 2, 1, 200),
    lossPercent: r.num("loss_percent", 30, 0, 100),
    delay: r.duration("delay", 100),
    jitter: r.duration("jitter", 50),
    rate: r.rate("rate", "1mbit"),
    skew: parseOffset("random.skew", r.raw("skew") ?? "+1h"),
    spare: r.strings("spare", [])
  }
  checkNames("random.spare", out.spare, names)
  r.done()
  return out
}

/** A duration key of `[nodes.config]`, so the checks assume what the nodes are told. */
const configDuration = (config: Readonly<Record<string, unknown>>, key: string, d: number): number =>
  config[key] === undefined ? d : parseDuration(`nodes.config.${key}`, config[key])

const parseChecks = (doc: Table, config: Readonly<Record<string, unknown>>): Checks => {
  const t = doc["check"] ?? {}
  if (!isTable(t)) throw new ManifestError("check", "must be a table")
  const r = new Reader(t, "check")
  const heal = r.raw("heal_bound")
  const out: Checks = {
    healBound: heal === undefined ? undefined : parseDuration("check.heal_bound", heal),
    pingInterval: r.duration("ping_interval", configDuration(config, "p2p.ping_interval", 60_000)),
    pongTimeout: r.duration("pong_timeout", configDuration(config, "p2p.pong_timeout", 45_000)),
    dialTimeout: r.duration("dial_timeout", configDuration(config, "p2p.dial_timeout", 3_000)),
    handshake: r.duration("handshake", 1_000),
    minRetryTime: r.duration("min_retry_time", 250),
    maxRetryTime: r.duration("max_retry_time", 30 * 60_000),
    maxRetryTimePersistent: r.duration("max_retry_time_persistent", 5 * 60_000),
    retryJitter: r.duration("retry_jitter", 5_000),
    slack: r.duration("slack", 2_000),
    startup: r.duration("startup", 10_000),
    formBound: r.duration("form_bound", 30_000),
    warmup: r.duration("warmup", 30_000),
    rssMaxMb: r.num("rss_max_mb", 400, 1, 1e6),
    fdsMax: r.int("fds_max", 256, 1),
    flatTolerance: r.num("flat_tolerance", 0.1, 0, 10),
    flatMinSpan: r.duration("flat_min_span", 5 * 60_000),
    allowErrors: r.strings("allow_errors", []),
    probeMissingOutside: r.int("probe_missing_outside", 0),
    stableOutsideFaults: r.bool("stable_outside_faults", true)
  }
  out.allowErrors.forEach((re, i) => {
    try {
      new RegExp(re)
    } catch (e) {
      throw new ManifestError(`check.allow_errors[${i}]`, `not a regular expression: ${(e as Error).message}`)
    }
  })
  r.done()
  return out
}

/** Parses a manifest's text; `source` names it in errors about the TOML itself. */
export const parse = (text: string, source = "manifest"): Manifest => {
  let doc: Table
  try {
    doc = parseToml(text) as Table
  } catch (e) {
    throw new ManifestError(source, `not valid TOML: ${(e as Error).message.split("\n")[0]}`)
  }
  const top = new Reader(doc, "")
  for (const k of ["nodes", "node", "network_conditions", "perturbation", "random", "check"]) top.used.add(k)
  const duration = top.duration("duration", 120_000)
  if (duration <= 0) throw new ManifestError("duration", "must be more than 0s")
  const name = top.str("name", source.replace(/^.*\//, "").replace(/\.toml$/, ""))
  const network = top.str("network", "e2e")
  if (!/^[\x21-\x7e]{1,50}$/.test(network)) throw new ManifestError("network", "must be 1-50 printable characters without spaces")
  const seed = top.int("seed", 1)
  const probe = top.bool("probe", true)
  top.done()

  const { nodes, config } = parseNodes(doc)
  const names = new Set(nodes.map((n) => n.name))

  const nc = doc["network_conditions"] ?? {}
  if (!isTable(nc)) throw new ManifestError("network_conditions", "must be a table")
  const cr = new Reader(nc, "network_conditions")
  const conditions = { loss: cr.num("loss", 0, 0, 100), delay: cr.duration("delay", 0), jitter: cr.duration("jitter", 0), rate: cr.rate("rate", "") }
  cr.done()

  const rawFaults = doc["perturbation"] ?? []
  if (!Array.isArray(rawFaults) || rawFaults.some((x) => !isTable(x))) throw new ManifestError("perturbation", "must be an array of tables ([[perturbation]])")
  const faults = (rawFaults as Array<Table>).map((t, i) => {
    const r = new Reader(t, `perturbation[${i}]`)
    if (!r.has("at")) throw new ManifestError(r.key("at"), "missing (when the fault starts, e.g. \"20s\")")
    if (!r.has("kind")) throw new ManifestError(r.key("kind"), `missing (one of ${FAULT_KINDS.join(", ")})`)
    const at = r.duration("at", 0)
    const f = parseFault(r, names, at)
    r.done()
    if (f.at >= duration) throw new ManifestError(r.key("at"), `is after the end of the run (duration ${duration / 1000}s)`)
    return f
  }).sort((a, b) => a.at - b.at)

  return { name, duration, network, seed, nodes, nodeConfig: config, conditions, faults, random: parseRandom(doc, duration, names), checks: parseChecks(doc, config), probe }
}

// ---------------------------------------------------------------------------------------------
// Random faults

/** Longest clock offset a skew fault takes: a year either way. */
export const MAX_SKEW = 366 * 24 * 3_600_000

/** A signed clock offset: "+1h", "-30m", "+90s" (no sign: ahead). */
export const parseOffset = (key: string, v: unknown): number => {
  if (typeof v !== "string" || !/^[+-]?\s*\S/.test(v)) throw new ManifestError(key, `must be a clock offset like "+1h" or "-30m", got ${JSON.stringify(v)}`)
  const text = v.trim()
  const sign = text.startsWith("-") ? -1 : 1
  const ms = parseDuration(key, text.replace(/^[+-]\s*/, ""))
  if (ms < 1_000 || ms > MAX_SKEW) throw new ManifestError(key, `must be from 1s to 366 days either way, got ${JSON.stringify(v)}`)
  return sign * ms
}

/** A small seeded generator (mulberry32): the same seed draws the same faults. */
export const rng = Seeded.generator

/** Draws one random fault of the manifest's kinds at `at` (ms), affecting up to `maxNodes` of `names`. */
export const drawFault = (random: RandomFaults, names: ReadonlyArray<string>, at: number, next: () => number, allowed: ReadonlyArray<FaultKind> = random.kinds): Fault => {
  const pick = <A>(xs: ReadonlyArray<A>): A => xs[Math.floor(next() * xs.length)]!
  const kind = pick(allowed.length > 0 ? allowed : random.kinds)
  const candidates = PROCESS_DOWN_KINDS.has(kind) ? names.filter((n) => !random.spare.includes(n)) : names
  const shuffled = [...(candidates.length > 0 ? candidates : names)].sort(() => next() - 0.5)
  const count = Math.max(1, Math.min(random.maxNodes, shuffled.length, names.length - 1, 1 + Math.floor(next() * random.maxNodes)))
  const chosen = shuffled.slice(0, count)
  const rest = names.filter((n) => !chosen.includes(n))
  const duration = Math.round(random.minDuration + next() * (random.maxDuration - random.minDuration))
  const skew = Math.abs(random.skew) * (next() < 0.5 ? -1 : 1)
  const base: Fault = { kind, at, duration, nodes: chosen, groups: [], from: [], to: [], percent: random.lossPercent, delay: random.delay, jitter: random.jitter, rate: random.rate, skew }
  if (kind === "partition") return { ...base, nodes: [], groups: [chosen, rest] }
  if (kind === "one_way") return { ...base, nodes: [], from: chosen, to: rest }
  return base
}

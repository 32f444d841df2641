/**
 * The node's configuration: CometBFT's `config.toml` (`moniker`, `log_level`, `log_format`,
 * `[p2p]`, `[rpc] laddr`, `[instrumentation]`), command-line flags over it, defaults under both.
 * Every problem is one `ConfigError` naming the key and what is wrong, so the command can print
 * one line and exit 2. A CometBFT v0.34-v1.0 `config.toml` loads unchanged: the sections and
 * top-level keys of other subsystems are skipped, and the `[p2p]` keys this node does not use are
 * accepted and reported (one warning line). Keys no CometBFT version has are errors.
 *
 * @since 0.1.0
 */
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import { parse as parseToml, stringify } from "smol-toml"
import * as Ip from "../domain/Ip.ts"
import * as NodeAddress from "../domain/NodeAddress.ts"
import * as NodeId from "../domain/NodeId.ts"
import { formatGoDuration, parseGoDuration } from "../domain/GoDuration.ts"
import * as Opt from "../domain/Options.ts"
import * as NodeHttp from "../layers/NodeHttp.ts"
import * as MConnectionConfig from "../layers/tcp/MConnectionConfig.ts"
import { PeerCount } from "../services/PeerManager.ts"
import * as LogLevel from "./LogLevel.ts"

/** A configuration value is wrong. `key` is the TOML key or flag, e.g. `p2p.laddr` or `--laddr`. */
export class ConfigError extends Schema.TaggedError<ConfigError>()("ConfigError", {
  key: Schema.String,
  message: Schema.String
}) {}

/** The [p2p] section. */
export interface P2PConfig {
  /** Where to listen: `tcp://host:port`. */
  readonly laddr: { readonly host: string; readonly port: number }
  /** Address advertised to peers (`host:port`), if different from laddr. */
  readonly externalAddress: string
  /** Local IP outgoing connections are bound to; "" lets the kernel choose. */
  readonly dialFrom: string
  /** Peers to ask for addresses (PEX) when starting. CometBFT's `seeds`. */
  readonly seeds: ReadonlyArray<NodeAddress.NodeAddress>
  /** Peers added at start, dialed like any other (tendermint's `bootstrap-peers`). */
  readonly bootstrapPeers: ReadonlyArray<NodeAddress.NodeAddress>
  /** Peers always kept connected. */
  readonly persistentPeers: ReadonlyArray<NodeAddress.NodeAddress>
  /** Node IDs never advertised. */
  readonly privatePeerIds: ReadonlyArray<NodeId.NodeId>
  /** Node IDs outside every connection limit. */
  readonly unconditionalPeerIds: ReadonlyArray<NodeId.NodeId>
  readonly maxNumInboundPeers: number
  readonly maxNumOutboundPeers: number
  readonly maxPacketMsgPayloadSize: number
  readonly sendRate: number
  readonly recvRate: number
  readonly pex: boolean
  readonly seedMode: boolean
  readonly handshakeTimeout: number
  readonly dialTimeout: number
  /** Cap on the retry delay of persistent peers, ms; 0: the default backoff cap. */
  readonly persistentPeersMaxDialPeriod: number
  /** Keepalive: a ping every `pingInterval` ms; a connection silent `pongTimeout` ms after it is closed. */
  readonly pingInterval: number
  readonly pongTimeout: number
}

/** The whole configuration. */
export interface NodeConfig {
  readonly moniker: string
  /** The chain ID peers must share (CometBFT takes it from the genesis file). */
  readonly network: string
  /** `log_level` as written: a level, or `module:level` pairs (see `LogLevel`). */
  readonly logLevel: string
  readonly logFormat: "plain" | "json"
  readonly p2p: P2PConfig
  readonly rpc: {
    /**
     * `host:port` serving /net_info, /status, /health and JSON-RPC; "" serves them only beside
     * /metrics. Or `unix:///abs/path.sock`: a unix socket serving those and /metrics (when
     * `instrumentation.prometheus` is on) and the unsafe methods.
     */
    readonly laddr: string
    /** Serve `unsafe_ban` and `unsafe_unban` on any address (they are always on for loopback ones). */
    readonly unsafe: boolean
    /** Connections the RPC server serves at once; 0: no limit. */
    readonly maxOpenConnections: number
  }
  readonly instrumentation: {
    /** Serve /metrics (CometBFT's `prometheus`). */
    readonly prometheus: boolean
    /** `host:port` of the HTTP endpoint serving /metrics (and /net_info, /status); "" disables it. */
    readonly httpAddr: string
    /** Connections the metrics server serves at once; 0: no limit. */
    readonly maxOpenConnections: number
    /** Prefix of metric names. */
    readonly namespace: string
  }
}

/** Defaults: CometBFT's, but listening on loopback so a developer machine is not exposed. */
export const defaults: NodeConfig = {
  moniker: "effect-p2p-node",
  network: "effect-p2p",
  logLevel: "info",
  logFormat: "plain",
  p2p: {
    laddr: { host: "127.0.0.1", port: 26656 },
    externalAddress: "",
    dialFrom: "",
    seeds: [],
    bootstrapPeers: [],
    persistentPeers: [],
    privatePeerIds: [],
    unconditionalPeerIds: [],
    maxNumInboundPeers: 40,
    maxNumOutboundPeers: 10,
    maxPacketMsgPayloadSize: 1024,
    sendRate: 5_120_000,
    recvRate: 5_120_000,
    pex: true,
    seedMode: false,
    handshakeTimeout: 20_000,
    dialTimeout: 3_000,
    persistentPeersMaxDialPeriod: 0,
    pingInterval: 60_000,
    pongTimeout: 45_000
  },
  rpc: { laddr: "", unsafe: false, maxOpenConnections: 900 },
  instrumentation: { prometheus: true, httpAddr: "127.0.0.1:26660", maxOpenConnections: 3, namespace: "cometbft" }
}

/** Raw values as read from TOML or flags, by dotted key. */
export type Raw = Readonly<Record<string, unknown>>

const fail = (key: string, message: string) => Result.fail(new ConfigError({ key, message: `${key}: ${message}` }))

/** Parses `tcp://host:port` (the scheme optional; IPv6 in brackets). */
export const parseListenAddress = (key: string, value: unknown): Result.Result<{ host: string; port: number }, ConfigError> => {
  if (typeof value !== "string") return fail(key, `must be a string like "tcp://127.0.0.1:26656"`)
  const m = /^(?:tcp:\/\/)?(?:\[([^\]]+)\]|([^:/[\]]+)):(\d{1,5})$/.exec(value.trim())
  const port = m === null ? NaN : Number(m[3])
  if (m === null || port > 65535) return fail(key, `${JSON.stringify(value)} is not an address like "tcp://127.0.0.1:26656"`)
  return Result.succeed({ host: m[1] ?? m[2] ?? "", port })
}

/** Parses a comma-separated list of `id@host:port` peers. */
export const parsePeerList = (key: string, value: unknown): Result.Result<ReadonlyArray<NodeAddress.NodeAddress>, ConfigError> => {
  if (typeof value !== "string") return fail(key, "must be a comma-separated string of id@host:port")
  const out: Array<NodeAddress.NodeAddress> = []
  for (const part of value.split(",").map((s) => s.trim()).filter((s) => s !== "")) {
    const a = NodeAddress.parseResult(part)
    if (Result.isFailure(a)) return fail(key, a.failure.message)
    if (a.success.protocol !== NodeAddress.MEMORY_PROTOCOL) {
      // A peer's address in config.toml is CometBFT's id@host:port: with a port, and no path (a
      // path is a typo, such as "10.0.0/1:26656", that would otherwise be silently dropped).
      if (a.success.hostname === "") return fail(key, `peer ${JSON.stringify(part)} has no host: use id@host:port`)
      if (a.success.path !== "") return fail(key, `peer ${JSON.stringify(part)} has ${JSON.stringify(a.success.path)} after its host: use id@host:port`)
      if (a.success.port === 0) return fail(key, `peer ${JSON.stringify(part)} has no port: use id@host:port`)
    }
    out.push(a.success)
  }
  return Result.succeed(out)
}

const parseIdList = (key: string, value: unknown): Result.Result<ReadonlyArray<NodeId.NodeId>, ConfigError> => {
  if (typeof value !== "string") return fail(key, "must be a comma-separated string of node IDs")
  const out: Array<NodeId.NodeId> = []
  for (const part of value.split(",").map((s) => s.trim()).filter((s) => s !== "")) {
    const id = NodeId.decodeResult(part)
    if (Result.isFailure(id)) return fail(key, `${JSON.stringify(part)}: ${id.failure.message}`)
    out.push(id.success)
  }
  return Result.succeed(out)
}

/**
 * A key whose value is a library option: checked with that option's own schema (the same bounds
 * as `PeerManager.layer`, `TcpTransport.layer`, `NodeHttp.serve`), with its message.
 */
const option = <S extends Schema.Decoder<unknown>>(schema: S) => (key: string, value: unknown): Result.Result<S["Type"], ConfigError> => {
  const n = typeof value === "string" && /^\d+$/.test(value.trim()) ? Number(value) : value
  return Result.mapError(Opt.decodeValue(schema, n), (message) => new ConfigError({ key, message: `${key}: ${message}, got ${JSON.stringify(value)}` }))
}

const bool = (key: string, value: unknown): Result.Result<boolean, ConfigError> => {
  if (typeof value === "boolean") return Result.succeed(value)
  if (value === "true" || value === "false") return Result.succeed(value === "true")
  return fail(key, `must be true or false, got ${JSON.stringify(value)}`)
}

const duration = (key: string, value: unknown): Result.Result<number, ConfigError> => {
  const ms = typeof value === "string" ? parseGoDuration(value) : undefined
  if (ms === undefined) return fail(key, `must be a duration like "100ms", "20s" or "1m", got ${JSON.stringify(value)}`)
  return Result.succeed(ms)
}

/** The shortest `handshake_timeout` and `dial_timeout` that can work beyond one machine (a round trip or two). */
export const MIN_TIMEOUT = 100
/** The longest: beyond this a silent peer holds a slot for no purpose. */
export const MAX_TIMEOUT = 10 * 60_000

/** The shortest keepalive ping interval (a ping is a few bytes, but a ping a few ms apart is a flood). */
export const MIN_KEEPALIVE = 1_000

const durationBetween = (key: string, value: unknown, min: number, max: number): Result.Result<number, ConfigError> =>
  Result.flatMap(duration(key, value), (ms) =>
    ms >= min && ms <= max ? Result.succeed(ms) : fail(key, `must be from ${formatGoDuration(min)} to ${formatGoDuration(max)}, got ${JSON.stringify(value)}`))

const text = (key: string, value: unknown, options: { readonly nonEmpty?: boolean } = {}): Result.Result<string, ConfigError> => {
  if (typeof value !== "string") return fail(key, `must be a string, got ${JSON.stringify(value)}`)
  if (options.nonEmpty === true && value.trim() === "") return fail(key, "must not be empty")
  if (!/^[\x20-\x7e]*$/.test(value)) return fail(key, "must be printable ASCII")
  return Result.succeed(value)
}

/** `host:port` (an empty host: every interface), or "" for none; a `tcp://` prefix is dropped. */
const hostPort = (key: string, value: unknown): Result.Result<string, ConfigError> => {
  if (typeof value !== "string") return fail(key, `must be "host:port" or ""`)
  const address = value.trim().replace(/^tcp:\/\//, "")
  if (address === "") return Result.succeed(address)
  const m = /^(?:\[[^\]]+\]|[^:/[\]]*):(\d{1,5})$/.exec(address)
  if (m === null || Number(m[1]) > 65535) return fail(key, `${JSON.stringify(value)} is not "host:port"`)
  return Result.succeed(address)
}

/** `rpc.laddr`: `host:port` as {@link hostPort}, or a unix socket `unix:///abs/path.sock`. */
const rpcAddress = (key: string, value: unknown): Result.Result<string, ConfigError> => {
  if (typeof value === "string" && NodeHttp.isUnixAddress(value.trim())) {
    const parsed = NodeHttp.parseUnixAddress(value.trim())
    return "problem" in parsed ? fail(key, parsed.problem) : Result.succeed(value.trim())
  }
  const r = hostPort(key, value)
  return Result.isFailure(r) ? fail(key, `${JSON.stringify(value)} is not "host:port", "tcp://host:port" or "unix:///abs/path.sock"`) : r
}

/** The probe's sending interval (`--probe-interval`): a Go duration from 1ms to 1h, in ms. */
export const probeInterval = (key: string, value: unknown): Result.Result<number, ConfigError> => durationBetween(key, value, 1, 3_600_000)

const logLevel = (key: string, value: unknown): Result.Result<string, ConfigError> => {
  if (typeof value !== "string") return fail(key, `must be a string like "info" or "main:info,p2p:debug,*:error"`)
  const spec = LogLevel.parse(value)
  return Result.isFailure(spec) ? fail(key, spec.failure) : Result.succeed(value.trim())
}

/** The keys `config.toml` may hold (dotted), with their checks. Unknown keys are an error. */
const keys: Record<string, (key: string, value: unknown) => Result.Result<unknown, ConfigError>> = {
  moniker: (k, v) => text(k, v, { nonEmpty: true }),
  network: (k, v) => text(k, v, { nonEmpty: true }),
  log_level: logLevel,
  log_format: (k, v) => (v === "plain" || v === "json" ? Result.succeed(v) : fail(k, `must be "plain" or "json", got ${JSON.stringify(v)}`)),
  "p2p.laddr": parseListenAddress,
  "p2p.external_address": hostPort,
  "p2p.dial_from": (k, v) => (v === "" || (typeof v === "string" && Ip.isValid(v)) ? Result.succeed(v) : fail(k, `must be an IP address of this machine, or "", got ${JSON.stringify(v)}`)),
  "p2p.seeds": parsePeerList,
  "p2p.bootstrap_peers": parsePeerList,
  "p2p.persistent_peers": parsePeerList,
  "p2p.private_peer_ids": parseIdList,
  "p2p.unconditional_peer_ids": parseIdList,
  "p2p.max_num_inbound_peers": option(PeerCount),
  "p2p.max_num_outbound_peers": option(PeerCount),
  "p2p.max_packet_msg_payload_size": option(MConnectionConfig.PayloadSize),
  "p2p.send_rate": option(MConnectionConfig.Rate),
  "p2p.recv_rate": option(MConnectionConfig.Rate),
  "p2p.pex": bool,
  "p2p.seed_mode": bool,
  "p2p.handshake_timeout": (k, v) => durationBetween(k, v, MIN_TIMEOUT, MAX_TIMEOUT),
  "p2p.dial_timeout": (k, v) => durationBetween(k, v, MIN_TIMEOUT, MAX_TIMEOUT),
  "p2p.persistent_peers_max_dial_period": (k, v) =>
    Result.flatMap(duration(k, v), (ms) => (ms === 0 || ms >= 250 ? Result.succeed(ms) : fail(k, `must be 0s (exponential backoff) or at least 250ms (the first retry delay), got ${JSON.stringify(v)}`))),
  "p2p.ping_interval": (k, v) => durationBetween(k, v, MIN_KEEPALIVE, MAX_TIMEOUT),
  "p2p.pong_timeout": (k, v) => durationBetween(k, v, MIN_TIMEOUT, MAX_TIMEOUT),
  "rpc.laddr": rpcAddress,
  "rpc.max_open_connections": option(NodeHttp.OpenConnections),
  "rpc.unsafe": bool,
  "instrumentation.prometheus": bool,
  "instrumentation.prometheus_listen_addr": hostPort,
  "instrumentation.max_open_connections": option(NodeHttp.OpenConnections),
  "instrumentation.namespace": (k, v) => (typeof v === "string" && /^[a-zA-Z_][a-zA-Z0-9_]*$/.test(v) ? Result.succeed(v) : fail(k, `must be a metric-name prefix like "cometbft", got ${JSON.stringify(v)}`))
}

/**
 * `[p2p]` keys of CometBFT v0.34-v1.0 that this node accepts and does not use (the address book,
 * UPnP and test switches belong to CometBFT's own switch; flush and duplicate-IP handling are
 * this node's own, see the README). Reported once at start.
 */
export const IGNORED_KEYS: ReadonlySet<string> = new Set([
  "p2p.upnp",
  "p2p.addr_book_file",
  "p2p.addr_book_strict",
  "p2p.flush_throttle_timeout",
  "p2p.allow_duplicate_ip",
  "p2p.test_dial_fail",
  "p2p.test_fuzz"
])

/** Sections of `[p2p]` whose keys are all ignored (a table in CometBFT's file). */
const IGNORED_TABLES = ["p2p.test_fuzz_config."]

/** Sections this node reads; keys of other sections are skipped (other subsystems). */
const SECTIONS = new Set(["p2p", "rpc", "instrumentation"])

/** Keys of `[rpc]` that are the RPC server's own features, skipped like other subsystems. */
const isOtherRpcKey = (key: string) => key.startsWith("rpc.") && keys[key] === undefined

const flatten = (value: Record<string, unknown>, prefix = "", out: Record<string, unknown> = {}) => {
  for (const [k, v] of Object.entries(value)) {
    const key = prefix === "" ? k : `${prefix}.${k}`
    if (typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Date)) flatten(v as Record<string, unknown>, key, out)
    else out[key] = v
  }
  return out
}

/** What a `config.toml` holds: checked values by dotted key, and the keys accepted but not used. */
export interface FileConfig {
  readonly values: Raw
  readonly ignored: ReadonlyArray<string>
}

/**
 * Reads `config.toml` text into checked raw values by dotted key. Sections and top-level keys of
 * other subsystems are skipped; CometBFT's `[p2p]` keys this node does not use are listed in
 * `ignored`; an unknown key inside `[p2p]` or `[instrumentation]` is an error.
 */
export const fromToml = (source: string, content: string): Result.Result<FileConfig, ConfigError> => {
  let parsed: Record<string, unknown>
  try {
    parsed = parseToml(content) as Record<string, unknown>
  } catch (e) {
    return fail(source, `not valid TOML: ${(e as Error).message.split("\n")[0]}`)
  }
  const values: Record<string, unknown> = {}
  const ignored: Array<string> = []
  for (const [key, value] of Object.entries(flatten(parsed))) {
    const section = key.includes(".") ? key.slice(0, key.indexOf(".")) : ""
    if (section !== "" && !SECTIONS.has(section)) continue
    if (IGNORED_KEYS.has(key) || IGNORED_TABLES.some((t) => key.startsWith(t))) {
      const name = IGNORED_TABLES.find((t) => key.startsWith(t))?.slice(0, -1) ?? key
      if (!ignored.includes(name)) ignored.push(name)
      continue
    }
    if (isOtherRpcKey(key)) continue
    const check = keys[key]
    // CometBFT's top level has many keys of other subsystems (proxy_app, db_backend, ...): skip them.
    if (check === undefined && section === "") continue
    if (check === undefined) return fail(key, `unknown key in ${source}`)
    const r = check(key, value)
    if (Result.isFailure(r)) return Result.fail(r.failure)
    values[key] = r.success
  }
  return Result.succeed({ values, ignored })
}

/** Checks flag values (strings), mapping each flag to its config key. */
export const fromFlags = (flags: Readonly<Record<string, string | undefined>>): Result.Result<Raw, ConfigError> => {
  const map: Record<string, string> = {
    laddr: "p2p.laddr",
    "persistent-peers": "p2p.persistent_peers",
    "bootstrap-peers": "p2p.bootstrap_peers",
    seeds: "p2p.seeds",
    network: "network",
    moniker: "moniker",
    pex: "p2p.pex",
    "seed-mode": "p2p.seed_mode",
    "http-addr": "instrumentation.prometheus_listen_addr",
    "rpc-laddr": "rpc.laddr",
    "log-level": "log_level",
    "log-format": "log_format"
  }
  const out: Record<string, unknown> = {}
  for (const [flag, value] of Object.entries(flags)) {
    if (value === undefined) continue
    const key = map[flag]
    if (key === undefined) return fail(`--${flag}`, "unknown flag")
    const r = keys[key]!(`--${flag}`, value)
    if (Result.isFailure(r)) return Result.fail(r.failure)
    out[key] = r.success
    // Asking for a metrics address on the command line means serving it.
    if (flag === "http-addr") out["instrumentation.prometheus"] = true
  }
  return Result.succeed(out)
}

/** Defaults, then each layer of raw values in order (later wins). */
export const resolve = (...layers: ReadonlyArray<Raw>): NodeConfig => {
  const raw: Record<string, unknown> = Object.assign({}, ...layers)
  const get = <A>(key: string, fallback: A): A => (key in raw ? (raw[key] as A) : fallback)
  const d = defaults
  return {
    moniker: get("moniker", d.moniker),
    network: get("network", d.network),
    logLevel: get("log_level", d.logLevel),
    logFormat: get("log_format", d.logFormat),
    p2p: {
      laddr: get("p2p.laddr", d.p2p.laddr),
      externalAddress: get("p2p.external_address", d.p2p.externalAddress),
      dialFrom: get("p2p.dial_from", d.p2p.dialFrom),
      seeds: get("p2p.seeds", d.p2p.seeds),
      bootstrapPeers: get("p2p.bootstrap_peers", d.p2p.bootstrapPeers),
      persistentPeers: get("p2p.persistent_peers", d.p2p.persistentPeers),
      privatePeerIds: get("p2p.private_peer_ids", d.p2p.privatePeerIds),
      unconditionalPeerIds: get("p2p.unconditional_peer_ids", d.p2p.unconditionalPeerIds),
      maxNumInboundPeers: get("p2p.max_num_inbound_peers", d.p2p.maxNumInboundPeers),
      maxNumOutboundPeers: get("p2p.max_num_outbound_peers", d.p2p.maxNumOutboundPeers),
      maxPacketMsgPayloadSize: get("p2p.max_packet_msg_payload_size", d.p2p.maxPacketMsgPayloadSize),
      sendRate: get("p2p.send_rate", d.p2p.sendRate),
      recvRate: get("p2p.recv_rate", d.p2p.recvRate),
      pex: get("p2p.pex", d.p2p.pex),
      seedMode: get("p2p.seed_mode", d.p2p.seedMode),
      handshakeTimeout: get("p2p.handshake_timeout", d.p2p.handshakeTimeout),
      dialTimeout: get("p2p.dial_timeout", d.p2p.dialTimeout),
      persistentPeersMaxDialPeriod: get("p2p.persistent_peers_max_dial_period", d.p2p.persistentPeersMaxDialPeriod),
      pingInterval: get("p2p.ping_interval", d.p2p.pingInterval),
      pongTimeout: get("p2p.pong_timeout", d.p2p.pongTimeout)
    },
    rpc: {
      laddr: get("rpc.laddr", d.rpc.laddr),
      unsafe: get("rpc.unsafe", d.rpc.unsafe),
      maxOpenConnections: get("rpc.max_open_connections", d.rpc.maxOpenConnections)
    },
    instrumentation: {
      prometheus: get("instrumentation.prometheus", d.instrumentation.prometheus),
      httpAddr: get("instrumentation.prometheus_listen_addr", d.instrumentation.httpAddr),
      maxOpenConnections: get("instrumentation.max_open_connections", d.instrumentation.maxOpenConnections),
      namespace: get("instrumentation.namespace", d.instrumentation.namespace)
    }
  }
}

/** Bytes of one MConnection packet besides its payload (framing, varints, the packet fields). */
const PACKET_OVERHEAD = 16

/**
 * Rules between keys, checked once the values are resolved (flags over file over defaults): a
 * node must have some way to connect, and the rate limits must let a whole packet through each
 * second. The error names the key to change.
 */
export const validate = (c: NodeConfig): Result.Result<NodeConfig, ConfigError> => {
  const p = c.p2p
  if (p.maxNumInboundPeers === 0 && p.maxNumOutboundPeers === 0 && p.persistentPeers.length === 0 && p.unconditionalPeerIds.length === 0) {
    return fail("p2p.max_num_inbound_peers", "0 with p2p.max_num_outbound_peers = 0 and no persistent or unconditional peers leaves the node no way to connect; raise one of them or list persistent_peers")
  }
  if (p.pongTimeout >= p.pingInterval) return fail("p2p.pong_timeout", `${formatGoDuration(p.pongTimeout)} must be below p2p.ping_interval (${formatGoDuration(p.pingInterval)}): a pong must be due before the next ping`)
  const packet = p.maxPacketMsgPayloadSize + PACKET_OVERHEAD
  if (p.sendRate < packet) return fail("p2p.send_rate", `${p.sendRate} bytes/s cannot send one packet of max_packet_msg_payload_size ${p.maxPacketMsgPayloadSize} a second; use at least ${packet}`)
  if (p.recvRate < packet) return fail("p2p.recv_rate", `${p.recvRate} bytes/s cannot receive one packet of max_packet_msg_payload_size ${p.maxPacketMsgPayloadSize} a second; use at least ${packet}`)
  return Result.succeed(c)
}

const peers = (list: ReadonlyArray<NodeAddress.NodeAddress>) =>
  list.map((a) => (a.protocol === "mconn" ? `${a.nodeId}@${a.hostname.includes(":") ? `[${a.hostname}]` : a.hostname}:${a.port}` : NodeAddress.format(a))).join(",")

/** `config.toml` text for a configuration, with a comment on each key (what `init` writes). */
export const toToml = (c: NodeConfig): string => {
  const host = c.p2p.laddr.host.includes(":") ? `[${c.p2p.laddr.host}]` : c.p2p.laddr.host
  const doc = {
    moniker: c.moniker,
    network: c.network,
    log_level: c.logLevel,
    log_format: c.logFormat,
    p2p: {
      laddr: `tcp://${host}:${c.p2p.laddr.port}`,
      external_address: c.p2p.externalAddress,
      ...(c.p2p.dialFrom === "" ? {} : { dial_from: c.p2p.dialFrom }),
      seeds: peers(c.p2p.seeds),
      bootstrap_peers: peers(c.p2p.bootstrapPeers),
      persistent_peers: peers(c.p2p.persistentPeers),
      private_peer_ids: c.p2p.privatePeerIds.join(","),
      unconditional_peer_ids: c.p2p.unconditionalPeerIds.join(","),
      max_num_inbound_peers: c.p2p.maxNumInboundPeers,
      max_num_outbound_peers: c.p2p.maxNumOutboundPeers,
      max_packet_msg_payload_size: c.p2p.maxPacketMsgPayloadSize,
      send_rate: c.p2p.sendRate,
      recv_rate: c.p2p.recvRate,
      pex: c.p2p.pex,
      seed_mode: c.p2p.seedMode,
      handshake_timeout: formatGoDuration(c.p2p.handshakeTimeout),
      dial_timeout: formatGoDuration(c.p2p.dialTimeout),
      persistent_peers_max_dial_period: formatGoDuration(c.p2p.persistentPeersMaxDialPeriod),
      ping_interval: formatGoDuration(c.p2p.pingInterval),
      pong_timeout: formatGoDuration(c.p2p.pongTimeout)
    },
    rpc: { laddr: c.rpc.laddr === "" || NodeHttp.isUnixAddress(c.rpc.laddr) ? c.rpc.laddr : `tcp://${c.rpc.laddr}`, unsafe: c.rpc.unsafe, max_open_connections: c.rpc.maxOpenConnections },
    instrumentation: {
      prometheus: c.instrumentation.prometheus,
      prometheus_listen_addr: c.instrumentation.httpAddr,
      max_open_connections: c.instrumentation.maxOpenConnections,
      namespace: c.instrumentation.namespace
    }
  }
  return "# effect-p2p node configuration (CometBFT's config.toml keys).\n# Flags given to `effect-p2p start` override these values.\n\n" + stringify(doc) + "\n"
}

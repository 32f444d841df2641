/**
 * CometBFT's RPC JSON for what a P2P node knows: `DefaultNodeInfo`, `ConnectionStatus`, the results
 * of `net_info`, `status` and `health`, and JSON-RPC 2.0 envelopes. CometBFT encodes 64-bit and
 * `int` values as strings, durations as nanoseconds (strings), times as RFC 3339 with trailing
 * zeros of the fraction trimmed, and byte strings (`channels`) as upper-case hex; tools that read
 * CometBFT's RPC parse exactly that, so this module reproduces it. Pure functions, no I/O.
 *
 * @since 0.1.0
 */
import type { FlowStatus } from "./FlowMonitor.ts"
import type * as NodeInfo from "./NodeInfo.ts"

/** `DefaultNodeInfo` as CometBFT's RPC prints it. */
export interface NodeInfoJson {
  readonly protocol_version: { readonly p2p: string; readonly block: string; readonly app: string }
  readonly id: string
  readonly listen_addr: string
  readonly network: string
  readonly version: string
  readonly channels: string
  readonly moniker: string
  readonly other: { readonly tx_index: string; readonly rpc_address: string }
}

/** A `flowrate.Status` (Go field names, as CometBFT prints them). */
export interface FlowStatusJson {
  readonly Start: string
  readonly Bytes: string
  readonly Samples: string
  readonly InstRate: string
  readonly CurRate: string
  readonly AvgRate: string
  readonly PeakRate: string
  readonly BytesRem: string
  readonly Duration: string
  readonly Idle: string
  readonly TimeRem: string
  readonly Progress: number
  readonly Active: boolean
}

/** A connection's `ConnectionStatus`. */
export interface ConnectionStatusJson {
  readonly Duration: string
  readonly SendMonitor: FlowStatusJson
  readonly RecvMonitor: FlowStatusJson
  readonly Channels: ReadonlyArray<{
    readonly ID: number
    readonly SendQueueCapacity: string
    readonly SendQueueSize: string
    readonly Priority: string
    readonly RecentlySent: string
  }>
}

/** One entry of `net_info`'s `peers`. */
export interface PeerJson {
  readonly node_info: NodeInfoJson
  readonly is_outbound: boolean
  readonly connection_status: ConnectionStatusJson
  readonly remote_ip: string
}

/** The `net_info` result. */
export interface NetInfoJson {
  readonly listening: boolean
  readonly listeners: ReadonlyArray<string>
  readonly n_peers: string
  readonly peers: ReadonlyArray<PeerJson>
}

/** The `status` result: a P2P node has no blocks and no validator, so only `node_info` is set. */
export interface StatusJson {
  readonly node_info: NodeInfoJson
}

/** Milliseconds as a Go `time.Duration` in JSON: nanoseconds, as a string. */
export const duration = (ms: number): string => String(BigInt(Math.max(0, Math.round(ms))) * 1_000_000n)

/** Epoch milliseconds as a Go `time.Time` in JSON (RFC 3339, fraction without trailing zeros). */
export const time = (ms: number): string => new Date(ms).toISOString().replace(/\.?0+Z$/, "Z")

/** Upper-case hex, as CometBFT's `HexBytes` prints. */
export const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString("hex").toUpperCase()

/** `DefaultNodeInfo` JSON. */
export const nodeInfo = (info: NodeInfo.NodeInfo): NodeInfoJson => ({
  protocol_version: { p2p: String(info.protocolVersion.p2p), block: String(info.protocolVersion.block), app: String(info.protocolVersion.app) },
  id: info.nodeId,
  listen_addr: info.listenAddr,
  network: info.network,
  version: info.version,
  channels: hex(info.channels),
  moniker: info.moniker,
  other: { tx_index: info.other.txIndex, rpc_address: info.other.rpcAddress }
})

/** A monitor's status as `flowrate.Status` JSON (nothing is a bounded transfer: no bytes or time remain). */
export const flowStatus = (s: FlowStatus): FlowStatusJson => ({
  Start: time(s.start),
  Bytes: String(s.bytes),
  Samples: String(s.samples),
  InstRate: String(s.instRate),
  CurRate: String(s.curRate),
  AvgRate: String(s.avgRate),
  PeakRate: String(s.peakRate),
  BytesRem: "0",
  Duration: duration(s.duration),
  Idle: duration(s.idle),
  TimeRem: "0",
  Progress: 0,
  Active: s.active
})

/** What {@link connectionStatus} reads: a transport's `ConnectionStatus`. */
export interface ConnectionStatusInput {
  readonly duration: number
  readonly send: FlowStatus
  readonly receive: FlowStatus
  readonly channels: ReadonlyArray<{
    readonly id: number
    readonly priority: number
    readonly sendQueueCapacity: number
    readonly sendQueueSize: number
    readonly recentlySent: number
  }>
}

/** `ConnectionStatus` JSON. */
export const connectionStatus = (s: ConnectionStatusInput): ConnectionStatusJson => ({
  Duration: duration(s.duration),
  SendMonitor: flowStatus(s.send),
  RecvMonitor: flowStatus(s.receive),
  Channels: s.channels.map((c) => ({
    ID: c.id,
    SendQueueCapacity: String(c.sendQueueCapacity),
    SendQueueSize: String(c.sendQueueSize),
    Priority: String(c.priority),
    RecentlySent: String(c.recentlySent)
  }))
})

/** `Listener(@host:port)`, as CometBFT names its listener. */
export const listener = (address: string): string => `Listener(@${address})`

// ---------------------------------------------------------------------------------------------
// JSON-RPC 2.0
// ---------------------------------------------------------------------------------------------

/** A request ID: CometBFT accepts numbers and strings; URI requests answer with -1. */
export type RpcId = number | string

/** JSON-RPC error codes CometBFT uses. */
export const RpcErrorCode = {
  parseError: -32700,
  invalidRequest: -32600,
  methodNotFound: -32601,
  invalidParams: -32602,
  internalError: -32603
} as const

/** A successful response. */
export const rpcResult = (id: RpcId, result: unknown) => ({ jsonrpc: "2.0" as const, id, result })

/** An error response; `data` says what went wrong in words. */
export const rpcError = (id: RpcId | null, code: number, message: string, data: string) => ({ jsonrpc: "2.0" as const, id, error: { code, message, data } })

/** A request as read from a body: a method, its named parameters and an ID, or why it is not one. */
export type RpcRequest =
  | { readonly _tag: "Request"; readonly id: RpcId; readonly method: string; readonly params: Readonly<Record<string, unknown>> }
  | { readonly _tag: "Invalid"; readonly id: RpcId | null; readonly data: string }

/** Reads one JSON-RPC request object; `params` must be an object (named parameters) when present. */
export const parseRequest = (value: unknown): RpcRequest => {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return { _tag: "Invalid", id: null, data: "a request must be a JSON object" }
  const r = value as Record<string, unknown>
  const id = typeof r["id"] === "number" || typeof r["id"] === "string" ? r["id"] : null
  if (r["jsonrpc"] !== "2.0") return { _tag: "Invalid", id, data: `"jsonrpc" must be "2.0"` }
  if (id === null) return { _tag: "Invalid", id, data: `"id" must be a number or a string (notifications are not served)` }
  if (typeof r["method"] !== "string") return { _tag: "Invalid", id, data: `"method" must be a string` }
  const params = r["params"]
  if (params !== undefined && (typeof params !== "object" || params === null || Array.isArray(params))) return { _tag: "Invalid", id, data: `"params" must be an object of named parameters` }
  return { _tag: "Request", id, method: r["method"], params: (params ?? {}) as Readonly<Record<string, unknown>> }
}

/**
 * What a node tells its peers about itself during the handshake: CometBFT's `DefaultNodeInfo`
 * (docs/PROTOCOL.md#nodeinfo-exchange, docs/ARCHITECTURE.md#values). Validation and compatibility rules are the original's, each failure with
 * its own reason; the original's DNS lookup of `listen_addr` is not done (docs/ARCHITECTURE.md#fixed-problems-of-the-original).
 *
 * @since 0.1.0
 */
import { create, fromBinary, toBinary } from "@bufbuild/protobuf"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import { DefaultNodeInfoSchema, type DefaultNodeInfo } from "../proto/tendermint/p2p/types_pb.ts"
import type * as NodeId from "./NodeId.ts"

/** Protocol versions. Only `block` is compared between peers. */
export interface ProtocolVersion {
  readonly p2p: bigint
  readonly block: bigint
  readonly app: bigint
}

/** A node's self-description. `channels` holds one byte per channel ID it serves. */
export interface NodeInfo {
  readonly protocolVersion: ProtocolVersion
  readonly nodeId: NodeId.NodeId
  readonly listenAddr: string
  readonly network: string
  readonly version: string
  readonly channels: Uint8Array
  readonly moniker: string
  readonly other: { readonly txIndex: string; readonly rpcAddress: string }
}

/** CometBFT v0.38's p2p protocol version (9 on v1.0; never compared). */
export const P2P_PROTOCOL = 8n
/** CometBFT's block protocol version: peers must agree on it. */
export const BLOCK_PROTOCOL = 11n
/** Largest encoded NodeInfo accepted in a handshake. */
export const MAX_SIZE = 10240
/** Largest number of channels a NodeInfo may list. */
export const MAX_CHANNELS = 16

/** Builds a NodeInfo, defaulting the versions to CometBFT's and the optional strings to "". */
export const make = (fields: {
  readonly nodeId: NodeId.NodeId
  readonly listenAddr: string
  readonly network: string
  readonly moniker: string
  readonly channels?: Iterable<number>
  readonly version?: string
  readonly protocolVersion?: Partial<ProtocolVersion>
  readonly other?: Partial<NodeInfo["other"]>
}): NodeInfo => ({
  protocolVersion: { p2p: P2P_PROTOCOL, block: BLOCK_PROTOCOL, app: 0n, ...fields.protocolVersion },
  nodeId: fields.nodeId,
  listenAddr: fields.listenAddr,
  network: fields.network,
  version: fields.version ?? "",
  channels: Uint8Array.from(fields.channels ?? []),
  moniker: fields.moniker,
  other: { txIndex: "", rpcAddress: "", ...fields.other }
})

/** A copy with `channel` added (its low byte), unless already present. */
export const addChannel = (info: NodeInfo, channel: number): NodeInfo =>
  info.channels.includes(channel & 0xff) ? info : { ...info, channels: Uint8Array.from([...info.channels, channel & 0xff]) }

/** The generated protobuf message. The embedded messages are always set, as gogoproto emits them. */
export const toProto = (info: NodeInfo): DefaultNodeInfo =>
  create(DefaultNodeInfoSchema, {
    protocolVersion: { ...info.protocolVersion },
    defaultNodeId: info.nodeId,
    listenAddr: info.listenAddr,
    network: info.network,
    version: info.version,
    channels: info.channels,
    moniker: info.moniker,
    other: { txIndex: info.other.txIndex, rpcAddress: info.other.rpcAddress }
  })

/** From the protobuf message; absent embedded messages read as zero values. The ID is not checked here: `validate` does. */
export const fromProto = (p: DefaultNodeInfo): NodeInfo => ({
  protocolVersion: { p2p: p.protocolVersion?.p2p ?? 0n, block: p.protocolVersion?.block ?? 0n, app: p.protocolVersion?.app ?? 0n },
  nodeId: p.defaultNodeId as NodeId.NodeId,
  listenAddr: p.listenAddr,
  network: p.network,
  version: p.version,
  channels: p.channels,
  moniker: p.moniker,
  other: { txIndex: p.other?.txIndex ?? "", rpcAddress: p.other?.rpcAddress ?? "" }
})

/** Protobuf bytes (not length-delimited). */
export const encode = (info: NodeInfo): Uint8Array => toBinary(DefaultNodeInfoSchema, toProto(info))

/** Why a NodeInfo is rejected. */
export type InvalidReason =
  | "size"
  | "encoding"
  | "node_id"
  | "listen_addr"
  | "version"
  | "channels"
  | "moniker"
  | "tx_index"
  | "rpc_address"

/** A NodeInfo that breaks a rule; `field` names the field, `message` the rule. */
export class InvalidNodeInfo extends Schema.TaggedError<InvalidNodeInfo>()("InvalidNodeInfo", {
  nodeId: Schema.String,
  reason: Schema.Literals(["size", "encoding", "node_id", "listen_addr", "version", "channels", "moniker", "tx_index", "rpc_address"]),
  message: Schema.String
}) {}

/** Peers that cannot talk to each other. */
export class IncompatibleNodeInfo extends Schema.TaggedError<IncompatibleNodeInfo>()("IncompatibleNodeInfo", {
  nodeId: Schema.String,
  reason: Schema.Literals(["block_version", "network", "channels"]),
  message: Schema.String
}) {}

/** Decodes protobuf bytes, refusing more than {@link MAX_SIZE} before decoding. */
export const decode = (bytes: Uint8Array): Result.Result<NodeInfo, InvalidNodeInfo> => {
  if (bytes.length > MAX_SIZE) {
    return Result.fail(new InvalidNodeInfo({ nodeId: "", reason: "size", message: `node info is ${bytes.length} bytes, more than the ${MAX_SIZE} allowed` }))
  }
  try {
    return Result.succeed(fromProto(fromBinary(DefaultNodeInfoSchema, bytes)))
  } catch (e) {
    return Result.fail(new InvalidNodeInfo({ nodeId: "", reason: "encoding", message: `node info is not a valid DefaultNodeInfo: ${(e as Error).message}` }))
  }
}

const printableAscii = /^[\x20-\x7e]*$/
const isAsciiText = (s: string) => printableAscii.test(s) && s.trim().length > 0

/** Checks the legacy `id@host:port` form of `listen_addr`, after stripping a `scheme://` prefix. */
const listenAddrProblem = (nodeId: string, listenAddr: string): string | undefined => {
  const stripped = listenAddr.includes("://") ? listenAddr.slice(listenAddr.indexOf("://") + 3) : listenAddr
  const full = `${nodeId}@${stripped}`
  const at = full.lastIndexOf("@")
  const id = full.slice(0, at)
  const hostPort = full.slice(at + 1)
  if (!/^([0-9a-fA-F]{2}){20}$/.test(id)) return `node ID ${JSON.stringify(id)} is not 20 bytes of hex`
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d+)$/.exec(hostPort)
  if (m === null) return `listen address ${JSON.stringify(listenAddr)} is not host:port`
  const host = m[1] ?? m[2] ?? ""
  if (host === "") return `listen address ${JSON.stringify(listenAddr)} has no host`
  if (Number(m[3]) > 65535) return `listen address ${JSON.stringify(listenAddr)} has a port above 65535`
  if (!/^[A-Za-z0-9.:_%-]+$/.test(host)) return `listen address ${JSON.stringify(listenAddr)} has an invalid host`
  return undefined
}

/** The first rule `info` breaks, in the original's order, or success. No DNS lookup is done. */
export const validate = (info: NodeInfo): Result.Result<NodeInfo, InvalidNodeInfo> => {
  const bad = (reason: InvalidReason, message: string) =>
    Result.fail(new InvalidNodeInfo({ nodeId: info.nodeId, reason, message: `invalid node info from ${info.nodeId || "unknown peer"}: ${message}` }))
  const addr = listenAddrProblem(info.nodeId, info.listenAddr)
  if (addr !== undefined) return bad("listen_addr", addr)
  if (info.version !== "" && !isAsciiText(info.version)) return bad("version", `version ${JSON.stringify(info.version)} must be printable ASCII and not blank`)
  if (info.channels.length > MAX_CHANNELS) return bad("channels", `${info.channels.length} channels listed, at most ${MAX_CHANNELS} allowed`)
  if (new Set(info.channels).size !== info.channels.length) return bad("channels", `channel list ${Buffer.from(info.channels).toString("hex")} has duplicates`)
  if (!isAsciiText(info.moniker)) return bad("moniker", `moniker ${JSON.stringify(info.moniker)} must be non-empty printable ASCII`)
  if (!["", "on", "off"].includes(info.other.txIndex)) return bad("tx_index", `tx_index ${JSON.stringify(info.other.txIndex)} must be "", "on" or "off"`)
  if (info.other.rpcAddress !== "" && !isAsciiText(info.other.rpcAddress)) {
    return bad("rpc_address", `rpc_address ${JSON.stringify(info.other.rpcAddress)} must be printable ASCII and not blank`)
  }
  return Result.succeed(info)
}

/** Whether `ours` can talk to `theirs`: same block version and network, and a common channel unless we list none. */
export const compatibleWith = (ours: NodeInfo, theirs: NodeInfo): Result.Result<NodeInfo, IncompatibleNodeInfo> => {
  const bad = (reason: "block_version" | "network" | "channels", message: string) =>
    Result.fail(new IncompatibleNodeInfo({ nodeId: theirs.nodeId, reason, message: `peer ${theirs.nodeId} ${message}` }))
  if (ours.protocolVersion.block !== theirs.protocolVersion.block) {
    return bad("block_version", `is on a different Block version (ours ${ours.protocolVersion.block}, theirs ${theirs.protocolVersion.block})`)
  }
  if (ours.network !== theirs.network) return bad("network", `is on a different network (ours ${JSON.stringify(ours.network)}, theirs ${JSON.stringify(theirs.network)})`)
  if (ours.channels.length === 0) return Result.succeed(theirs)
  if (!ours.channels.some((c) => theirs.channels.includes(c))) return bad("channels", "has no common channels")
  return Result.succeed(theirs)
}

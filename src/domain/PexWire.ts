/**
 * The pure half of the PEX reactor: its wire messages, the mapping between `NodeAddress`es and
 * CometBFT's `NetAddress{id, ip, port}`, and the adaptive request interval. No I/O.
 *
 * @since 0.1.0
 */
import { create } from "@bufbuild/protobuf"
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import type * as Endpoint from "./Endpoint.ts"
import * as Ip from "./Ip.ts"
import * as NodeAddress from "./NodeAddress.ts"
import * as NodeId from "./NodeId.ts"
import {
  MessageSchema,
  NetAddressSchema,
  PexAddrsSchema,
  PexRequestSchema,
  type Message,
  type NetAddress
} from "../proto/tendermint/p2p/pex_pb.ts"

/** The protocol of addresses learnt over PEX: CometBFT's TCP transport. */
export const WIRE_PROTOCOL = NodeAddress.DEFAULT_PROTOCOL

/** The share of `maxPeers` at which the store counts as full and requests slow to `fullStoreInterval`. */
export const FULL_STORE_RATIO = 0.95

/** The intervals the adaptive request schedule is made of, in milliseconds (PEX options). */
export interface RequestIntervals {
  readonly requestIntervalMin: number
  readonly requestIntervalMax: number
  readonly fullStoreInterval: number
  readonly noPeersInterval: number
}

/** The IP text that stands for "no IP" on the wire: memory addresses travel as `{id, "0.0.0.0", 0}`. */
export const NO_IP = "0.0.0.0"

/** `pex_request` (`0a00` on the wire). */
export const requestMessage = (): Message => create(MessageSchema, { sum: { case: "pexRequest", value: create(PexRequestSchema) } })

/** `pex_addrs` carrying `addrs`, in order. */
export const addrsMessage = (addrs: ReadonlyArray<NetAddress>): Message =>
  create(MessageSchema, { sum: { case: "pexAddrs", value: create(PexAddrsSchema, { addrs: [...addrs] }) } })

/** A wire `NetAddress`. The ID is not checked, so test vectors with IDs like `"1"` can be built. */
export const netAddress = (id: string, ip: string, port: number): NetAddress => create(NetAddressSchema, { id, ip, port })

/**
 * The wire entries for one advertised address, given the endpoints it resolved to. A memory address
 * (`memory:<id>`, no IP) is `{id, "0.0.0.0", 0}`; otherwise one entry per endpoint with a usable IP
 * (not unspecified) and a port. Addresses with neither give nothing.
 */
export const toNetAddresses = (address: NodeAddress.NodeAddress, endpoints: ReadonlyArray<Endpoint.Endpoint>): ReadonlyArray<NetAddress> => {
  if (address.protocol === NodeAddress.MEMORY_PROTOCOL && address.hostname === "") return [netAddress(address.nodeId, NO_IP, 0)]
  const out: Array<NetAddress> = []
  for (const e of endpoints) {
    const ip = Ip.parse(e.ip)
    if (Option.isNone(ip) || Ip.isUnspecified(ip.value) || e.port === 0) continue
    out.push(netAddress(address.nodeId, Ip.format(ip.value), e.port))
  }
  return out
}

/** What a received `NetAddress` means: an address to add, an entry to skip quietly, or misbehaviour. */
export type ParsedNetAddress =
  | { readonly _tag: "Address"; readonly address: NodeAddress.NodeAddress }
  | { readonly _tag: "Skip"; readonly reason: string }
  | { readonly _tag: "Invalid"; readonly reason: string }

/**
 * Reads a received entry as CometBFT does (`NetAddressFromProto`, plus its address book's ID check).
 * Invalid (misbehaviour): an ID that is not 20 bytes of hex, an IP that does not parse, a port ≥ 65536.
 * Skipped, not punished: entries no transport can dial (unspecified IP, port 0, broadcast or
 * multicast IP). With `memory` (the local transport speaks it), `{id, "0.0.0.0" or "::", 0}` is the
 * memory address `memory:<id>`. Others become `mconn://<id>@<ip>:<port>`.
 */
export const fromNetAddress = (entry: NetAddress, memory: boolean): ParsedNetAddress => {
  const id = NodeId.decodeResult(entry.id)
  if (Result.isFailure(id)) return { _tag: "Invalid", reason: `invalid node ID ${JSON.stringify(entry.id)}: ${id.failure.message}` }
  const ip = Ip.parse(entry.ip)
  if (Option.isNone(ip)) return { _tag: "Invalid", reason: `invalid IP address ${JSON.stringify(entry.ip)}` }
  if (!Number.isInteger(entry.port) || entry.port < 0 || entry.port > 65535) return { _tag: "Invalid", reason: `invalid port number ${entry.port}` }
  if (Ip.isUnspecified(ip.value)) {
    if (entry.port === 0 && memory) return { _tag: "Address", address: NodeAddress.make({ protocol: NodeAddress.MEMORY_PROTOCOL, nodeId: id.success }) }
    return { _tag: "Skip", reason: `unspecified IP ${entry.ip}` }
  }
  if (entry.port === 0) return { _tag: "Skip", reason: "no port" }
  if (Ip.isBroadcast(ip.value) || Ip.isMulticast(ip.value)) return { _tag: "Skip", reason: `IP ${entry.ip} is not routable` }
  return { _tag: "Address", address: NodeAddress.make({ protocol: WIRE_PROTOCOL, nodeId: id.success, hostname: Ip.format(ip.value), port: entry.port }) }
}

/**
 * The address a peer reports in its NodeInfo `listen_addr` (`[scheme://]host:port`), as
 * `mconn://<id>@host:port`. Unspecified IPs (`0.0.0.0`, `::`) give nothing, except that with
 * `memory` an unspecified IP with port 0 (what memory nodes report) gives `memory:<id>`. Port 0,
 * and anything that does not parse, give nothing.
 */
export const fromListenAddr = (nodeId: NodeId.NodeId, listenAddr: string, memory: boolean): NodeAddress.NodeAddress | undefined => {
  const scheme = listenAddr.indexOf("://")
  const hostPort = scheme < 0 ? listenAddr : listenAddr.slice(scheme + 3)
  const m = /^(?:\[([^\]]+)\]|([^:[\]/]*)):(\d{1,5})$/.exec(hostPort)
  if (m === null) return undefined
  const host = m[1] ?? m[2] ?? ""
  const port = Number(m[3])
  if (host === "" || port > 65535) return undefined
  const ip = Ip.parse(host)
  let hostname = host.toLowerCase()
  if (Option.isSome(ip)) {
    if (Ip.isUnspecified(ip.value)) return port === 0 && memory ? NodeAddress.make({ protocol: NodeAddress.MEMORY_PROTOCOL, nodeId }) : undefined
    hostname = Ip.format(ip.value)
  }
  if (port === 0) return undefined
  const address = NodeAddress.make({ protocol: WIRE_PROTOCOL, nodeId, hostname, port })
  return Result.isSuccess(NodeAddress.validate(address)) ? address : undefined
}

/** The inputs of {@link nextRequestInterval}. */
export interface IntervalInput {
  /** New addresses the last answer brought. */
  readonly added: number
  /** New addresses all answers brought so far (including `added`). */
  readonly totalPeers: number
  /** Connected PEX peers with no request of ours outstanding. */
  readonly available: number
  /** Stored peers / `maxPeers` (0 when `maxPeers` is 0, unlimited). */
  readonly storeRatio: number
}

/**
 * docs/ARCHITECTURE.md#pex `calculateNextRequestTime`: `fullStoreInterval` once the store is ≥ 95% full,
 * `noPeersInterval` with no available peer, else
 * `min / available × ((totalPeers + 1) / (added + 1))² + min`, capped at `requestIntervalMax`.
 *
 * @example
 * ```ts
 * // added 0, one available peer, totalPeers 10, min 200 ms: 200/1 × 11² + 200 = 24.4 s
 * nextRequestInterval({ added: 0, totalPeers: 10, available: 1, storeRatio: 0 }, { ...o, requestIntervalMin: 200 })
 * ```
 */
export const nextRequestInterval = (
  input: IntervalInput,
  options: RequestIntervals
): number => {
  if (input.storeRatio >= FULL_STORE_RATIO) return options.fullStoreInterval
  if (input.available <= 0) return options.noPeersInterval
  const min = options.requestIntervalMin
  const growth = ((input.totalPeers + 1) / (input.added + 1)) ** 2
  return Math.min(options.requestIntervalMax, (min / input.available) * growth + min)
}

/** Stored peers over `maxPeers`; 0 when `maxPeers` is 0 (unlimited: never full). */
export const storeRatio = (stored: number, maxPeers: number): number => (maxPeers === 0 ? 0 : stored / maxPeers)


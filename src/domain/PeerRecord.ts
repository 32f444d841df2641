/**
 * What the node knows about one peer (docs/ARCHITECTURE.md#scores-and-ranking), and its protobuf form in the peer store
 * (`tendermint.p2p.PeerInfo`, docs/ARCHITECTURE.md#persistence, plus our fields 5-6: the persistent flag and mutable score).
 * Records are immutable values; every change makes a new record.
 *
 * Times are epoch milliseconds from `Clock`; `undefined` means never.
 *
 * @since 0.1.0
 */
import { create, fromBinary, toBinary } from "@bufbuild/protobuf"
import { timestampFromMs, timestampMs, type Timestamp } from "@bufbuild/protobuf/wkt"
import * as Equal from "effect/Equal"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import { PeerInfoSchema } from "../proto/tendermint/p2p/peerstore_pb.ts"
import * as NodeAddress from "./NodeAddress.ts"
import * as NodeId from "./NodeId.ts"
import * as PeerScore from "./PeerScore.ts"

/** Dial statistics of one address. */
export interface AddressInfo {
  readonly address: NodeAddress.NodeAddress
  readonly lastDialSuccess: number | undefined
  readonly lastDialFailure: number | undefined
  readonly dialFailures: number
}

/** One known peer. */
export interface PeerRecord {
  readonly id: NodeId.NodeId
  /** Known addresses in insertion order, each once (structural equality). */
  readonly addresses: ReadonlyArray<AddressInfo>
  readonly lastConnected: number | undefined
  /** Set when a handshake showed the peer incompatible; new addresses for it are ignored. */
  readonly inactive: boolean
  /** Configured persistent peer: scores the maximum and is never pruned. */
  readonly persistent: boolean
  /** Reputation from good/bad events and peer errors, int16. */
  readonly mutableScore: number
  /** Configured fixed score, 0 when none (not stored). */
  readonly fixedScore: number
  /** When it last disconnected (not stored). */
  readonly lastDisconnected: number | undefined
  /** The peer whose PEX answer taught us this one; `undefined` when configured or met directly. */
  readonly source: NodeId.NodeId | undefined
}

/** A new record with no addresses. */
export const empty = (id: NodeId.NodeId, fields: Partial<Omit<PeerRecord, "id">> = {}): PeerRecord => ({
  id,
  addresses: [],
  lastConnected: undefined,
  inactive: false,
  persistent: false,
  mutableScore: 0,
  fixedScore: 0,
  lastDisconnected: undefined,
  source: undefined,
  ...fields
})

/**
 * The record with every time after `now` set to `now` (the same record when none is). Times from
 * the future come from a clock that was ahead when they were written (a VM restored, a clock
 * stepped back by NTP): left as they are, a dial failure an hour "ahead" would hold its address's
 * retry back for that hour more.
 */
export const clampTimes = (record: PeerRecord, now: number): PeerRecord => {
  const late = (t: number | undefined) => t !== undefined && t > now
  if (!late(record.lastConnected) && !late(record.lastDisconnected) && !record.addresses.some((a) => late(a.lastDialSuccess) || late(a.lastDialFailure))) return record
  const clamp = (t: number | undefined) => (late(t) ? now : t)
  return {
    ...record,
    lastConnected: clamp(record.lastConnected),
    lastDisconnected: clamp(record.lastDisconnected),
    addresses: record.addresses.map((a) => (late(a.lastDialSuccess) || late(a.lastDialFailure) ? { ...a, lastDialSuccess: clamp(a.lastDialSuccess), lastDialFailure: clamp(a.lastDialFailure) } : a))
  }
}

/** A fresh address entry with no dial history. */
export const addressInfo = (address: NodeAddress.NodeAddress): AddressInfo => ({ address, lastDialSuccess: undefined, lastDialFailure: undefined, dialFailures: 0 })

/** The entry for `address`, if known. */
export const findAddress = (peer: PeerRecord, address: NodeAddress.NodeAddress): AddressInfo | undefined =>
  peer.addresses.find((a) => Equal.equals(a.address, address))

/** A copy with the entry for `address` replaced by `f(entry)` (no change when unknown). */
export const updateAddress = (peer: PeerRecord, address: NodeAddress.NodeAddress, f: (a: AddressInfo) => AddressInfo): PeerRecord => ({
  ...peer,
  addresses: peer.addresses.map((a) => (Equal.equals(a.address, address) ? f(a) : a))
})

/**
 * The peer's score (docs/ARCHITECTURE.md#scores-and-ranking): a fixed score when configured, the maximum for persistent peers,
 * otherwise the mutable score less one per dial failure, saturating within int16 and below the
 * persistent score.
 */
export const score = (peer: PeerRecord): PeerScore.PeerScore => {
  if (peer.fixedScore > 0) return Math.min(peer.fixedScore, PeerScore.PERSISTENT)
  if (peer.persistent) return PeerScore.PERSISTENT
  let failures = 0
  for (const a of peer.addresses) failures += a.dialFailures
  return PeerScore.clamp(peer.mutableScore - failures)
}

/** Whether we ever reached the peer: connected to it, or dialed one of its addresses successfully. */
export const reached = (peer: PeerRecord): boolean => peer.lastConnected !== undefined || peer.addresses.some((a) => a.lastDialSuccess !== undefined)

/** The last dial of any address: its time and whether it succeeded (a tie counts as success). */
export const lastDialed = (peer: PeerRecord): { readonly time: number | undefined; readonly success: boolean } => {
  let time: number | undefined
  let success = false
  for (const a of peer.addresses) {
    if (a.lastDialSuccess !== undefined && (time === undefined || a.lastDialSuccess >= time)) {
      time = a.lastDialSuccess
      success = true
    }
    if (a.lastDialFailure !== undefined && (time === undefined || a.lastDialFailure > time)) {
      time = a.lastDialFailure
      success = false
    }
  }
  return { time, success }
}

/** A stored row could not be decoded. */
export class InvalidPeerRecord extends Schema.TaggedError<InvalidPeerRecord>()("InvalidPeerRecord", {
  message: Schema.String
}) {}

const ts = (ms: number | undefined): Timestamp | undefined => (ms === undefined ? undefined : timestampFromMs(ms))
const ms = (t: Timestamp | undefined): number | undefined => (t === undefined ? undefined : timestampMs(t))

/** Protobuf bytes of the stored part of a record. */
export const encode = (peer: PeerRecord): Uint8Array =>
  toBinary(PeerInfoSchema, create(PeerInfoSchema, {
    id: peer.id,
    addressInfo: peer.addresses.map((a) => ({
      address: NodeAddress.format(a.address),
      lastDialSuccess: ts(a.lastDialSuccess),
      lastDialFailure: ts(a.lastDialFailure),
      dialFailures: a.dialFailures
    })),
    lastConnected: ts(peer.lastConnected),
    inactive: peer.inactive,
    persistent: peer.persistent,
    mutableScore: BigInt(peer.mutableScore),
    source: peer.source ?? ""
  }))

/** Decodes a stored row: the ID and every address must be valid. Ephemeral fields start empty. */
export const decode = (bytes: Uint8Array): Result.Result<PeerRecord, InvalidPeerRecord> => {
  const fail = (message: string) => Result.fail(new InvalidPeerRecord({ message }))
  let info
  try {
    info = fromBinary(PeerInfoSchema, bytes)
  } catch (e) {
    return fail(`not a PeerInfo message: ${(e as Error).message}`)
  }
  const id = NodeId.validate(info.id)
  if (Result.isFailure(id)) return fail(`peer ID ${JSON.stringify(info.id)}: ${id.failure.message}`)
  const addresses: Array<AddressInfo> = []
  for (const a of info.addressInfo) {
    const address = NodeAddress.parseResult(a.address)
    if (Result.isFailure(address)) return fail(`peer ${info.id}: address ${JSON.stringify(a.address)}: ${address.failure.message}`)
    addresses.push({ address: address.success, lastDialSuccess: ms(a.lastDialSuccess), lastDialFailure: ms(a.lastDialFailure), dialFailures: a.dialFailures })
  }
  let source: NodeId.NodeId | undefined
  if (info.source !== "") {
    const s = NodeId.validate(info.source)
    if (Result.isFailure(s)) return fail(`peer ${info.id}: source ${JSON.stringify(info.source)}: ${s.failure.message}`)
    source = s.success
  }
  return Result.succeed(empty(id.success, {
    addresses,
    lastConnected: ms(info.lastConnected),
    inactive: info.inactive,
    persistent: info.persistent,
    mutableScore: Math.max(PeerScore.MIN, Math.min(PeerScore.PERSISTENT, Number(info.mutableScore))),
    source
  }))
}

/**
 * The PeerManager decides which peers to dial, admit, upgrade and evict (SPEC §3): connection
 * policy without sockets. The Router drives it through the lifecycle calls below; reactors
 * subscribe to peer updates and report good and bad behaviour.
 *
 * @since 0.1.0
 */
import { Context, Duration, Option, Result, Schema, type Effect, type Scope, type Stream } from "effect"
import type * as Ban from "../domain/Ban.ts"
import * as NodeAddress from "../domain/NodeAddress.ts"
import * as NodeId from "../domain/NodeId.ts"
import type * as PeerScore from "../domain/PeerScore.ts"
import type * as PeerUpdate from "../domain/PeerUpdate.ts"
import { REJECT_REASONS, type Direction, type Policy } from "../domain/peermanager/Policy.ts"
import type { PeerStoreError } from "./PeerStore.ts"

// ---------------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------------

const Count = Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 65535 }))
/** A duration: milliseconds, or text such as "250 millis", "5 seconds", "30 minutes". */
const DurationInput = Schema.Union([Schema.Number.check(Schema.isGreaterThanOrEqualTo(0)), Schema.String])

/** What callers may pass; every field is optional. */
export const OptionsInput = Schema.Struct({
  persistentPeers: Schema.optionalKey(Schema.Array(Schema.String)),
  unconditionalPeers: Schema.optionalKey(Schema.Array(Schema.String)),
  privatePeers: Schema.optionalKey(Schema.Array(Schema.String)),
  peerScores: Schema.optionalKey(Schema.Record(Schema.String, Schema.Int)),
  selfAddress: Schema.optionalKey(Schema.String),
  maxPeers: Schema.optionalKey(Count),
  maxConnected: Schema.optionalKey(Count),
  maxOutgoingConnections: Schema.optionalKey(Count),
  maxIncomingPeers: Schema.optionalKey(Count),
  maxOutgoingPeers: Schema.optionalKey(Count),
  maxConnectedUpgrade: Schema.optionalKey(Count),
  maxAddressesPerPeer: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 1024 }))),
  maxPeersPerSource: Schema.optionalKey(Count),
  maxPeersPerGroup: Schema.optionalKey(Count),
  minRetryTime: Schema.optionalKey(DurationInput),
  maxRetryTime: Schema.optionalKey(DurationInput),
  maxRetryTimePersistent: Schema.optionalKey(DurationInput),
  retryTimeJitter: Schema.optionalKey(DurationInput),
  disconnectCooldownPeriod: Schema.optionalKey(DurationInput),
  maxGracePeers: Schema.optionalKey(Count),
  gracePeriod: Schema.optionalKey(DurationInput),
  minConnectionDuration: Schema.optionalKey(DurationInput),
  maxBans: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 1_000_000 }))),
  banAfterMisbehaviours: Schema.optionalKey(Count),
  banAfterFailedHandshakes: Schema.optionalKey(Count),
  misbehaviourWindow: Schema.optionalKey(DurationInput),
  misbehaviourBanDuration: Schema.optionalKey(DurationInput),
  failedHandshakeBanDuration: Schema.optionalKey(DurationInput),
  subscriberBufferSize: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 1_000_000 })))
})

/** Options as callers write them (durations as milliseconds or text). */
export type OptionsInput = typeof OptionsInput.Type

/** Validated options, defaults applied: the policy the pure core decides by. */
export type Options = Policy

/** Production defaults (CometBFT/Tendermint node defaults, SPEC §3.1). */
export const defaults = {
  maxConnected: 64,
  maxOutgoingConnections: 12,
  maxConnectedUpgrade: 4,
  /** 4 + 4 × maxConnected unless given. */
  maxPeers: undefined,
  maxAddressesPerPeer: 16,
  maxPeersPerSource: 64,
  maxPeersPerGroup: 32,
  minRetryTime: Duration.millis(250),
  maxRetryTime: Duration.minutes(30),
  maxRetryTimePersistent: Duration.minutes(5),
  retryTimeJitter: Duration.seconds(5),
  disconnectCooldownPeriod: Duration.seconds(2),
  maxGracePeers: 0,
  gracePeriod: Duration.seconds(3),
  minConnectionDuration: Duration.millis(0),
  maxBans: 4096,
  banAfterMisbehaviours: 5,
  banAfterFailedHandshakes: 20,
  misbehaviourWindow: Duration.minutes(10),
  misbehaviourBanDuration: Duration.hours(1),
  failedHandshakeBanDuration: Duration.minutes(10),
  /** How long `ban` lasts when no duration is given. */
  banDuration: Duration.hours(24),
  subscriberBufferSize: 1024
} as const

/** Options with every limit, delay and cap off: the original's "zero options", used by its tests. */
export const zero: OptionsInput = {
  maxPeers: 0,
  maxConnected: 0,
  maxOutgoingConnections: 0,
  maxConnectedUpgrade: 0,
  minRetryTime: 0,
  maxRetryTime: 0,
  maxRetryTimePersistent: 0,
  retryTimeJitter: 0,
  disconnectCooldownPeriod: 0,
  banAfterMisbehaviours: 0,
  banAfterFailedHandshakes: 0,
  maxPeersPerSource: 0,
  maxPeersPerGroup: 0
}

/** A bad option; `option` names it. */
export class InvalidPeerManagerOptions extends Schema.TaggedError<InvalidPeerManagerOptions>()("InvalidPeerManagerOptions", {
  option: Schema.String,
  message: Schema.String
}) {}

const bad = (option: string, message: string) => Result.fail(new InvalidPeerManagerOptions({ option, message: `PeerManager option ${option}: ${message}` }))

/** Decodes and validates options (SPEC §3.1 `Validate`, with duplicates counted once). */
export const decodeOptions = (input: unknown): Result.Result<Options, InvalidPeerManagerOptions> => {
  const decoded = Schema.decodeUnknownResult(OptionsInput)(input, { onExcessProperty: "error" })
  if (Result.isFailure(decoded)) {
    const text = String(decoded.failure.message ?? decoded.failure)
    const field = /\["?(\w+)"?\]/.exec(text)?.[1] ?? "options"
    return bad(field, text.replace(/\s+/g, " "))
  }
  const o = decoded.success
  const ids = (option: string, list: ReadonlyArray<string> | undefined): Result.Result<ReadonlySet<NodeId.NodeId>, InvalidPeerManagerOptions> => {
    const out = new Set<NodeId.NodeId>()
    for (const s of list ?? []) {
      const id = NodeId.validate(s)
      if (Result.isFailure(id)) return bad(option, `${JSON.stringify(s)} is not a node ID: ${id.failure.message}`)
      out.add(id.success)
    }
    return Result.succeed(out)
  }
  const durations: Record<string, number> = {}
  for (const name of ["minRetryTime", "maxRetryTime", "maxRetryTimePersistent", "retryTimeJitter", "disconnectCooldownPeriod", "gracePeriod", "minConnectionDuration", "misbehaviourWindow", "misbehaviourBanDuration", "failedHandshakeBanDuration"] as const) {
    const raw = o[name]
    let duration: Duration.Duration = defaults[name]
    if (raw !== undefined) {
      const d = Duration.fromInput(raw as Duration.Input)
      if (Option.isNone(d)) return bad(name, `${JSON.stringify(raw)} is not a duration (use milliseconds or text like "5 seconds")`)
      duration = d.value
    }
    if (!Duration.isFinite(duration)) return bad(name, "must be finite")
    durations[name] = Duration.toMillis(duration)
  }
  const persistent = ids("persistentPeers", o.persistentPeers)
  if (Result.isFailure(persistent)) return Result.fail(persistent.failure)
  const privatePeers = ids("privatePeers", o.privatePeers)
  if (Result.isFailure(privatePeers)) return Result.fail(privatePeers.failure)
  const unconditional = ids("unconditionalPeers", o.unconditionalPeers)
  if (Result.isFailure(unconditional)) return Result.fail(unconditional.failure)
  const peerScores = new Map<NodeId.NodeId, number>()
  for (const [s, score] of Object.entries(o.peerScores ?? {})) {
    const id = NodeId.validate(s)
    if (Result.isFailure(id)) return bad("peerScores", `${JSON.stringify(s)} is not a node ID: ${id.failure.message}`)
    if (score < -32768 || score > 32767) return bad("peerScores", `score ${score} of ${s} is outside -32768..32767`)
    if (score !== 0) peerScores.set(id.success, score)
  }
  let selfAddress: NodeAddress.NodeAddress | undefined
  if (o.selfAddress !== undefined && o.selfAddress !== "") {
    const a = NodeAddress.parseResult(o.selfAddress)
    if (Result.isFailure(a)) return bad("selfAddress", a.failure.message)
    selfAddress = a.success
  }
  const maxConnected = o.maxConnected ?? defaults.maxConnected
  const maxConnectedUpgrade = o.maxConnectedUpgrade ?? defaults.maxConnectedUpgrade
  const maxPeers = o.maxPeers ?? (maxConnected === 0 ? 0 : Math.min(65535, 4 + 4 * maxConnected))
  const maxOutgoingConnections = o.maxOutgoingConnections ?? Math.min(defaults.maxOutgoingConnections, maxConnected)
  const { minRetryTime = 0, maxRetryTime = 0, maxRetryTimePersistent = 0, retryTimeJitter = 0, disconnectCooldownPeriod = 0, gracePeriod = 0, minConnectionDuration = 0 } = durations
  const { misbehaviourWindow = 0, misbehaviourBanDuration = 0, failedHandshakeBanDuration = 0 } = durations
  if (maxConnected > 0 && persistent.success.size > maxConnected) {
    return bad("persistentPeers", `${persistent.success.size} persistent peers do not fit in maxConnected ${maxConnected}`)
  }
  if (maxPeers > 0 && maxConnected === 0) return bad("maxPeers", "needs maxConnected > 0")
  if (maxPeers > 0 && maxConnected + maxConnectedUpgrade > maxPeers) {
    return bad("maxPeers", `${maxPeers} is less than maxConnected + maxConnectedUpgrade (${maxConnected + maxConnectedUpgrade})`)
  }
  if (maxRetryTime > 0 && (minRetryTime === 0 || minRetryTime > maxRetryTime)) return bad("maxRetryTime", `needs 0 < minRetryTime <= maxRetryTime, got min ${minRetryTime} ms, max ${maxRetryTime} ms`)
  if (maxRetryTimePersistent > 0 && (minRetryTime === 0 || minRetryTime > maxRetryTimePersistent)) {
    return bad("maxRetryTimePersistent", `needs 0 < minRetryTime <= maxRetryTimePersistent, got min ${minRetryTime} ms, max ${maxRetryTimePersistent} ms`)
  }
  const maxGracePeers = o.maxGracePeers ?? defaults.maxGracePeers
  if (maxGracePeers > 0 && gracePeriod === 0) return bad("gracePeriod", `must be positive when maxGracePeers is ${maxGracePeers}`)
  if (maxOutgoingConnections > 0 && maxConnected > 0 && maxOutgoingConnections > maxConnected) {
    return bad("maxOutgoingConnections", `${maxOutgoingConnections} is more than maxConnected ${maxConnected}`)
  }
  return Result.succeed({
    persistentPeers: persistent.success,
    unconditionalPeers: unconditional.success,
    privatePeers: privatePeers.success,
    peerScores,
    selfAddress,
    maxPeers,
    maxConnected,
    maxOutgoingConnections,
    maxIncomingPeers: o.maxIncomingPeers,
    maxOutgoingPeers: o.maxOutgoingPeers,
    maxConnectedUpgrade,
    maxAddressesPerPeer: o.maxAddressesPerPeer ?? defaults.maxAddressesPerPeer,
    maxPeersPerSource: o.maxPeersPerSource ?? defaults.maxPeersPerSource,
    maxPeersPerGroup: o.maxPeersPerGroup ?? defaults.maxPeersPerGroup,
    minRetryTime,
    maxRetryTime,
    maxRetryTimePersistent,
    retryTimeJitter,
    disconnectCooldownPeriod,
    maxGracePeers,
    gracePeriod,
    minConnectionDuration,
    maxBans: o.maxBans ?? defaults.maxBans,
    banAfterMisbehaviours: o.banAfterMisbehaviours ?? defaults.banAfterMisbehaviours,
    banAfterFailedHandshakes: o.banAfterFailedHandshakes ?? defaults.banAfterFailedHandshakes,
    misbehaviourWindow,
    misbehaviourBanDuration,
    failedHandshakeBanDuration,
    subscriberBufferSize: o.subscriberBufferSize ?? defaults.subscriberBufferSize
  })
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

export type { Direction, RejectReason } from "../domain/peermanager/Policy.ts"

/** `dialed` or `accepted` refused the connection; the router closes it. */
export class ConnectionRejected extends Schema.TaggedError<ConnectionRejected>()("ConnectionRejected", {
  nodeId: Schema.String,
  reason: Schema.Literals(REJECT_REASONS),
  message: Schema.String
}) {}

/** An address that cannot be added (invalid, or our own). */
export class InvalidPeerAddress extends Schema.TaggedError<InvalidPeerAddress>()("InvalidPeerAddress", {
  address: Schema.String,
  message: Schema.String
}) {}

/** The manager was created with an ID that is not a node ID. */
export class InvalidSelfId extends Schema.TaggedError<InvalidSelfId>()("InvalidSelfId", {
  message: Schema.String
}) {}

/** A subscriber fell `capacity` updates behind; its stream ends with this so it can resubscribe. */
export class SubscriberLagged extends Schema.TaggedError<SubscriberLagged>()("SubscriberLagged", {
  capacity: Schema.Number,
  message: Schema.String
}) {}

// ---------------------------------------------------------------------------------------------
// Service
// ---------------------------------------------------------------------------------------------

/** A snapshot of one peer's state, for status pages and tests. */
export interface PeerStatus {
  readonly nodeId: NodeId.NodeId
  readonly score: PeerScore.PeerScore
  readonly state: "candidate" | "dialing" | "connected" | "ready"
  readonly direction: Direction | undefined
  readonly addresses: ReadonlyArray<NodeAddress.NodeAddress>
  readonly persistent: boolean
  readonly inactive: boolean
}

/** The peer lifecycle (SPEC §3.5). */
export class PeerManager extends Context.Service<
  PeerManager,
  {
    /**
     * Adds an address; `true` when it is new and kept. Wakes the dialer. `source`: the peer whose PEX
     * answer carried it. Gossiped addresses are bounded per source and per address group, never
     * added to a peer we already reached, and are the first pruned when the store is full.
     */
    readonly add: (address: NodeAddress.NodeAddress, options?: { readonly source?: NodeId.NodeId }) => Effect.Effect<boolean, InvalidPeerAddress | PeerStoreError>
    /** Waits until some address may be dialed, marks its peer dialing and returns it. */
    readonly dialNext: Effect.Effect<NodeAddress.NodeAddress>
    /** The next dialable address now, if any (marks its peer dialing). */
    readonly tryDialNext: Effect.Effect<NodeAddress.NodeAddress | undefined>
    /** A dial (or its handshake) failed: records it, releases the slot, schedules the retry. */
    readonly dialFailed: (address: NodeAddress.NodeAddress) => Effect.Effect<void, PeerStoreError>
    /**
     * A dial and handshake succeeded: admits the outbound connection, or refuses it. `ip`, the
     * address the connection reached, lets network bans apply.
     */
    readonly dialed: (address: NodeAddress.NodeAddress, ip?: string) => Effect.Effect<void, ConnectionRejected | PeerStoreError>
    /** An inbound connection from `ip` was handshaken: admits it, or refuses it. */
    readonly accepted: (nodeId: NodeId.NodeId, ip?: string) => Effect.Effect<void, ConnectionRejected | PeerStoreError>
    /** The router has a route to the connected peer: publishes `up` with its channels. */
    readonly ready: (nodeId: NodeId.NodeId, channels: Iterable<number>) => Effect.Effect<void>
    /** The peer's connection ended: publishes `down` if it was ready. Wakes the dialer. */
    readonly disconnected: (nodeId: NodeId.NodeId) => Effect.Effect<void>
    /** Waits until a connected peer must be evicted, marks it evicting and returns it. */
    readonly evictNext: Effect.Effect<NodeId.NodeId>
    /** The next peer to evict now, if any. */
    readonly tryEvictNext: Effect.Effect<NodeId.NodeId | undefined>
    /**
     * A peer misbehaved. Fatal errors, and any error while the node is at capacity, mark it for
     * eviction; others lower its score.
     */
    readonly errored: (nodeId: NodeId.NodeId, fatal: boolean) => Effect.Effect<void, PeerStoreError>
    /**
     * Bans a node ID, an IP address or an IP network (`subject` as `Ban.parseSubject` reads it) for
     * `duration` (default 24 hours; `Infinity` for good), persisted in the peer store. A banned node
     * is disconnected, not dialed, refused at handshake and never advertised; a banned network is
     * refused at accept. Replaces an earlier ban of the same subject.
     */
    readonly ban: (subject: string, options?: { readonly duration?: Duration.Input; readonly reason?: string }) => Effect.Effect<Ban.Ban, Ban.InvalidBanSubject | PeerStoreError>
    /** Lifts the ban of a subject; `true` when one was in force. */
    readonly unban: (subject: string) => Effect.Effect<boolean, Ban.InvalidBanSubject | PeerStoreError>
    /** Bans in force, the longest-lasting first. */
    readonly bans: Effect.Effect<ReadonlyArray<Ban.Ban>>
    /** The ban in force on an IP address (on any network it falls in), for the router's accept. */
    readonly checkIp: (ip: string) => Effect.Effect<Ban.Ban | undefined>
    /**
     * An inbound handshake from `ip` failed the way a legitimate one does not (garbage, failed
     * authentication, silence): counts toward banning the address (`banAfterFailedHandshakes`).
     */
    readonly handshakeFailed: (ip: string) => Effect.Effect<void, PeerStoreError>
    /** A reputation event from a reactor: raises or lowers the score by one (unknown peers are ignored). */
    readonly report: (nodeId: NodeId.NodeId, status: "good" | "bad") => Effect.Effect<void, PeerStoreError>
    /** Marks a peer incompatible: its new addresses are ignored and it is not dialed until it connects to us. */
    readonly inactivate: (nodeId: NodeId.NodeId) => Effect.Effect<void, PeerStoreError>
    /** Up to `limit` addresses to give `requester` (PEX): our own first, never private peers or the requester's. */
    readonly advertise: (requester: NodeId.NodeId, limit: number) => Effect.Effect<ReadonlyArray<NodeAddress.NodeAddress>>
    /** A stream of peer updates, buffered per subscriber, ending with `SubscriberLagged` if it falls behind. */
    readonly subscribe: Effect.Effect<Stream.Stream<PeerUpdate.PeerUpdate, SubscriberLagged>, never, Scope.Scope>
    /** `up` if the peer is ready, else `down`. */
    readonly status: (nodeId: NodeId.NodeId) => Effect.Effect<"up" | "down">
    /** Every known peer, best first. */
    readonly peers: Effect.Effect<ReadonlyArray<PeerStatus>>
    /** Every known peer's score. */
    readonly scores: Effect.Effect<ReadonlyMap<NodeId.NodeId, PeerScore.PeerScore>>
    /** The addresses known for a peer. */
    readonly addresses: (nodeId: NodeId.NodeId) => Effect.Effect<ReadonlyArray<NodeAddress.NodeAddress>>
    /** Whether the node has no free connection slot (never, when `maxConnected` is 0). */
    readonly isFull: Effect.Effect<boolean>
    /** The validated options in force. */
    readonly options: Options
  }
>()("effect-p2p/PeerManager") {}

/**
 * The PeerManager decides which peers to dial, admit, upgrade and evict (docs/ARCHITECTURE.md#peermanager): connection
 * policy without sockets. The Router drives it through the lifecycle calls below; reactors
 * subscribe to peer updates and report good and bad behaviour.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import type * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import type * as Ban from "../domain/Ban.ts"
import * as NodeAddress from "../domain/NodeAddress.ts"
import * as NodeId from "../domain/NodeId.ts"
import * as Opt from "../domain/Options.ts"
import type * as PeerScore from "../domain/PeerScore.ts"
import type * as PeerUpdate from "../domain/PeerUpdate.ts"
import { REJECT_REASONS, type Direction, type Policy } from "../domain/peermanager/Policy.ts"
import type { PeerStoreError } from "./PeerStore.ts"

// ---------------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------------

/** Validated options, defaults applied: the policy the pure core decides by. */
export type Options = Policy

/** Production defaults (CometBFT/Tendermint node defaults, docs/ARCHITECTURE.md#options). */
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

const ms = (d: Duration.Duration) => Duration.toMillis(d)

/** A number of peers (a connection or store limit): 0..65535. */
export const PeerCount = Opt.Count()
const Score = Schema.Int.check(Schema.isBetween({ minimum: -32768, maximum: 32767 }))

/**
 * The options as a schema: every field optional, its default from {@link defaults}; durations as
 * milliseconds, text ("5 seconds") or a `Duration`. `maxPeers` and `maxOutgoingConnections`
 * default from `maxConnected` (`4 + 4 × maxConnected`, and `min(12, maxConnected)`).
 */
const Fields = Schema.Struct({
  persistentPeers: Opt.withDefault(Schema.Array(NodeId.NodeIdExact), []),
  unconditionalPeers: Opt.withDefault(Schema.Array(NodeId.NodeIdExact), []),
  privatePeers: Opt.withDefault(Schema.Array(NodeId.NodeIdExact), []),
  peerScores: Opt.withDefault(Schema.Record(Schema.String, Score), {}),
  selfAddress: Opt.withDefault(Schema.String, ""),
  maxPeers: Schema.optionalKey(PeerCount),
  maxConnected: Opt.withDefault(PeerCount, defaults.maxConnected),
  maxOutgoingConnections: Schema.optionalKey(PeerCount),
  maxIncomingPeers: Schema.optionalKey(PeerCount),
  maxOutgoingPeers: Schema.optionalKey(PeerCount),
  maxConnectedUpgrade: Opt.withDefault(Opt.Count(), defaults.maxConnectedUpgrade),
  maxAddressesPerPeer: Opt.withDefault(Opt.Between(1, 1024), defaults.maxAddressesPerPeer),
  maxPeersPerSource: Opt.withDefault(Opt.Count(), defaults.maxPeersPerSource),
  maxPeersPerGroup: Opt.withDefault(Opt.Count(), defaults.maxPeersPerGroup),
  minRetryTime: Opt.withDefault(Opt.Millis, ms(defaults.minRetryTime)),
  maxRetryTime: Opt.withDefault(Opt.Millis, ms(defaults.maxRetryTime)),
  maxRetryTimePersistent: Opt.withDefault(Opt.Millis, ms(defaults.maxRetryTimePersistent)),
  retryTimeJitter: Opt.withDefault(Opt.Millis, ms(defaults.retryTimeJitter)),
  disconnectCooldownPeriod: Opt.withDefault(Opt.Millis, ms(defaults.disconnectCooldownPeriod)),
  maxGracePeers: Opt.withDefault(Opt.Count(), defaults.maxGracePeers),
  gracePeriod: Opt.withDefault(Opt.Millis, ms(defaults.gracePeriod)),
  minConnectionDuration: Opt.withDefault(Opt.Millis, ms(defaults.minConnectionDuration)),
  maxBans: Opt.withDefault(Opt.Between(1, 1_000_000), defaults.maxBans),
  banAfterMisbehaviours: Opt.withDefault(Opt.Count(), defaults.banAfterMisbehaviours),
  banAfterFailedHandshakes: Opt.withDefault(Opt.Count(), defaults.banAfterFailedHandshakes),
  misbehaviourWindow: Opt.withDefault(Opt.Millis, ms(defaults.misbehaviourWindow)),
  misbehaviourBanDuration: Opt.withDefault(Opt.Millis, ms(defaults.misbehaviourBanDuration)),
  failedHandshakeBanDuration: Opt.withDefault(Opt.Millis, ms(defaults.failedHandshakeBanDuration)),
  subscriberBufferSize: Opt.withDefault(Opt.Between(1, 1_000_000), defaults.subscriberBufferSize)
})

/** The policy from decoded fields: ID lists as sets, scores as a map (zeros dropped), derived defaults filled in. */
const toPolicy = (o: typeof Fields.Type): Result.Result<Policy, Opt.Problem> => {
  let selfAddress: NodeAddress.NodeAddress | undefined
  if (o.selfAddress !== "") {
    const a = NodeAddress.parseResult(o.selfAddress)
    if (Result.isFailure(a)) return Result.fail({ option: "selfAddress", message: a.failure.message })
    selfAddress = a.success
  }
  const peerScores = new Map<NodeId.NodeId, PeerScore.PeerScore>()
  for (const [s, score] of Object.entries(o.peerScores)) {
    const id = NodeId.validate(s)
    if (Result.isFailure(id)) return Result.fail({ option: "peerScores", message: `${JSON.stringify(s)} is not a node ID: ${id.failure.message}` })
    if (score !== 0) peerScores.set(id.success, score)
  }
  const { maxPeers, maxOutgoingConnections, maxIncomingPeers, maxOutgoingPeers, ...rest } = o
  return Result.succeed({
    ...rest,
    persistentPeers: new Set(o.persistentPeers),
    unconditionalPeers: new Set(o.unconditionalPeers),
    privatePeers: new Set(o.privatePeers),
    peerScores,
    selfAddress,
    maxPeers: maxPeers ?? (o.maxConnected === 0 ? 0 : Math.min(65535, 4 + 4 * o.maxConnected)),
    maxOutgoingConnections: maxOutgoingConnections ?? Math.min(defaults.maxOutgoingConnections, o.maxConnected),
    maxIncomingPeers,
    maxOutgoingPeers
  })
}

/** A retry cap, when set, needs a first delay at or below it. */
const retryCap = (p: Policy, option: "maxRetryTime" | "maxRetryTimePersistent"): Opt.Problem | undefined =>
  p[option] > 0 && (p.minRetryTime === 0 || p.minRetryTime > p[option])
    ? { option, message: `needs 0 < minRetryTime <= ${option}, got min ${p.minRetryTime} ms, max ${p[option]} ms` }
    : undefined

/** The rules between options (docs/ARCHITECTURE.md#options `Validate`, duplicates counted once), each naming the option to change. */
const rules: ReadonlyArray<(p: Policy) => Opt.Problem | undefined> = [
  (p) => p.maxConnected > 0 && p.persistentPeers.size > p.maxConnected
    ? { option: "persistentPeers", message: `${p.persistentPeers.size} persistent peers do not fit in maxConnected ${p.maxConnected}` }
    : undefined,
  (p) => p.maxPeers > 0 && p.maxConnected === 0 ? { option: "maxPeers", message: "needs maxConnected > 0" } : undefined,
  (p) => p.maxPeers > 0 && p.maxConnected + p.maxConnectedUpgrade > p.maxPeers
    ? { option: "maxPeers", message: `${p.maxPeers} is less than maxConnected + maxConnectedUpgrade (${p.maxConnected + p.maxConnectedUpgrade})` }
    : undefined,
  (p) => retryCap(p, "maxRetryTime"),
  (p) => retryCap(p, "maxRetryTimePersistent"),
  (p) => p.maxGracePeers > 0 && p.gracePeriod === 0 ? { option: "gracePeriod", message: `must be positive when maxGracePeers is ${p.maxGracePeers}` } : undefined,
  (p) => p.maxOutgoingConnections > 0 && p.maxConnected > 0 && p.maxOutgoingConnections > p.maxConnected
    ? { option: "maxOutgoingConnections", message: `${p.maxOutgoingConnections} is more than maxConnected ${p.maxConnected}` }
    : undefined
]

/** What callers may pass; every field is optional (see {@link defaults}). */
export const OptionsInput = Fields

/** Options as callers write them (durations as milliseconds, text or `Duration`s). */
export type OptionsInput = typeof Fields.Encoded

/** A bad option; `option` names it. */
export class InvalidPeerManagerOptions extends Schema.TaggedError<InvalidPeerManagerOptions>()("InvalidPeerManagerOptions", {
  option: Schema.String,
  message: Schema.String
}) {}

/** Decodes and validates options: the schema, then the policy and the rules between options. */
export const decodeOptions = (input: unknown): Result.Result<Options, InvalidPeerManagerOptions> =>
  Result.mapError(
    Result.flatMap(Opt.decode(Fields, input), (fields) =>
      Result.flatMap(toPolicy(fields), (policy) => {
        for (const rule of rules) {
          const problem = rule(policy)
          if (problem !== undefined) return Result.fail(problem)
        }
        return Result.succeed(policy)
      })),
    (p) => new InvalidPeerManagerOptions({ option: p.option, message: `PeerManager option ${p.option}: ${p.message}` })
  )

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

/** The peer lifecycle (docs/ARCHITECTURE.md#lifecycle). */
export class PeerManager extends Context.Service<
  PeerManager,
  {
    /**
     * Adds an address; `true` when it is new and kept. Wakes the dialer. `source`: the peer whose PEX
     * answer carried it. Gossiped addresses are bounded per source and per address group, never
     * added to a peer we already reached, and are the first pruned when the store is full.
     */
    readonly add: (address: NodeAddress.NodeAddress, options?: { readonly source?: NodeId.NodeId }) => Effect.Effect<boolean, InvalidPeerAddress | PeerStoreError>
    /**
     * Adds many addresses in one transition (a PEX answer), each as `add` would, in order; `true`
     * for each one new and kept. Invalid addresses, and our own, are skipped (`false`). One write
     * of the changed records, one wake-up of the dialer.
     */
    readonly addAll: (addresses: ReadonlyArray<NodeAddress.NodeAddress>, options?: { readonly source?: NodeId.NodeId }) => Effect.Effect<ReadonlyArray<boolean>, PeerStoreError>
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
     * eviction; others lower its score; each counts toward a ban. With `misbehaviour` false (a
     * reactor letting a well-behaved peer go), a fatal report only disconnects it.
     */
    readonly errored: (nodeId: NodeId.NodeId, fatal: boolean, misbehaviour?: boolean) => Effect.Effect<void, PeerStoreError>
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
    /**
     * Whether the peer was admitted only on grace: the node was full, and it stays for
     * `gracePeriod` to learn addresses. PEX lets it go as soon as it has answered it.
     */
    readonly onGrace: (nodeId: NodeId.NodeId) => Effect.Effect<boolean>
    /** Every known peer, best first. */
    readonly peers: Effect.Effect<ReadonlyArray<PeerStatus>>
    /** How many peers are known (the length of `peers`, without building it). */
    readonly peerCount: Effect.Effect<number>
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

/**
 * Peer exchange (PEX) on channel `0x00`, in CometBFT's wire form (docs/PROTOCOL.md#pex-messages): `tendermint.p2p.Message`
 * with `pex_request = 1` and `pex_addrs = 2`, addresses as `NetAddress{id, ip, port}`. The reactor
 * asks connected peers for addresses, answers their requests from `PeerManager.advertise`, feeds what
 * it learns to `PeerManager.add`, and disconnects peers that break CometBFT's rules.
 *
 * This file holds the channel descriptor, the options (with their defaults), the errors and the
 * service tag; `layers/Pex.ts` holds the reactor.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import type * as Effect from "effect/Effect"
import * as ChannelDescriptor from "../domain/ChannelDescriptor.ts"
import type * as NodeId from "../domain/NodeId.ts"
import * as Opt from "../domain/Options.ts"
import { MessageSchema } from "../proto/tendermint/p2p/pex_pb.ts"

// ---------------------------------------------------------------------------------------------
// Channel
// ---------------------------------------------------------------------------------------------

/** The PEX channel ID. */
export const CHANNEL_ID = 0x00

/**
 * CometBFT's most addresses in one `pex_addrs` (`maxGetSelection`). The reactor never sends more
 * entries than this, whatever `maxAddressesSent` and DNS give, so a CometBFT receiver never exceeds
 * its 64000-byte receive cap for the channel.
 */
export const MAX_ADDRESSES_ON_WIRE = 250

/**
 * The PEX channel as CometBFT declares it (docs/PROTOCOL.md#channel-descriptors): ID `0x00`, priority 1, send queue 10,
 * receive buffer 128, largest message 64000 bytes (256 bytes × 250 addresses). Declare it in the
 * router's `channels` so peers learn from the handshake that we serve PEX.
 */
export const descriptor: ChannelDescriptor.ChannelDescriptor<typeof MessageSchema> = ChannelDescriptor.make({
  id: CHANNEL_ID,
  name: "pex",
  messageType: MessageSchema,
  priority: 1,
  sendQueueCapacity: 10,
  recvBufferCapacity: 128,
  recvMessageCapacity: 64000
})

// ---------------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------------

/**
 * Defaults, in milliseconds:
 * - `requestIntervalMin` 1 s: the base of the adaptive request interval (docs/ARCHITECTURE.md#pex
 *   `calculateNextRequestTime`): `min/available × ((total+1)/(added+1))² + min`, so requests come
 *   about every `2 × min` while responses bring only new addresses and slow down as they dry up.
 * - `requestIntervalMax` 5 min: the adaptive interval never exceeds this.
 * - `fullStoreInterval` 10 min: the interval once the peer store is ≥ 95% full (stored / `maxPeers`;
 *   never full when `maxPeers` is 0, unlimited).
 * - `noPeersInterval` 1 s: how often to look again when no peer can be asked (a peer coming up
 *   outbound wakes the scheduler sooner).
 * - `peerRequestInterval` 11 s: the least time between two of our requests to the same peer.
 *   CometBFT disconnects a peer whose requests come less than 10 s apart (`ensurePeersPeriod / 3`);
 *   the extra second absorbs latency jitter.
 * - `minRequestInterval` 10 s: CometBFT's limit on requests *from* a peer. The first two are free;
 *   from the third on, a request less than this after the previous one is misbehaviour. 0 disables it.
 * - `maxAddressesSent` 100 (at most 250): addresses taken from `PeerManager.advertise` per answer. A
 *   hostname resolving to several IPs gives several entries; the answer is capped at 250 entries.
 * - `maxAddressesAccepted` 250: more entries than this in one `pex_addrs` is misbehaviour (CometBFT
 *   sends up to 250).
 * - `resolveTimeout` 3 s: bound on resolving one advertised address (all resolve concurrently).
 * - `sendTimeout` 10 s: bound on waiting for room in a peer's queue to answer it (MConnection's
 *   send timeout); the answer is dropped after it.
 * - `seedMode` false: answer an inbound peer's first request, then disconnect it (CometBFT seeds).
 * - `seedDisconnectDelay` 2 s: in seed mode, how long to let the answer drain before disconnecting.
 * - `graceDisconnectDelay` 500 ms: a peer a full node admitted only on grace (so it can learn
 *   addresses instead of being turned away knowing no one) is let go this long after its first
 *   request is answered, freeing the grace slot for the next one; a well-behaved goodbye, as a
 *   seed's.
 * - `memoryAddresses` false: the node is on a `MemoryNetwork`, so a `{id, 0.0.0.0, 0}` entry is the
 *   address `memory:<id>` (and `memory:` addresses are advertised that way) rather than an entry
 *   to skip. `Node.layerMemory` and `TestNetwork` set it.
 */
export const defaults = {
  requestIntervalMin: 1_000,
  requestIntervalMax: 5 * 60_000,
  fullStoreInterval: 10 * 60_000,
  noPeersInterval: 1_000,
  peerRequestInterval: 11_000,
  minRequestInterval: 10_000,
  maxAddressesSent: 100,
  maxAddressesAccepted: 250,
  resolveTimeout: 3_000,
  sendTimeout: 10_000,
  seedMode: false,
  seedDisconnectDelay: 2_000,
  graceDisconnectDelay: 500,
  memoryAddresses: false
} as const

/**
 * The options as a schema: every field optional with its default above; durations as
 * milliseconds, text ("10 seconds") or a `Duration`. Rules: `requestIntervalMin` and
 * `noPeersInterval` above 0, `requestIntervalMax` at least `requestIntervalMin`.
 */
export const OptionsInput = Schema.Struct({
  requestIntervalMin: Opt.withDefault(Opt.Millis, defaults.requestIntervalMin),
  requestIntervalMax: Opt.withDefault(Opt.Millis, defaults.requestIntervalMax),
  fullStoreInterval: Opt.withDefault(Opt.Millis, defaults.fullStoreInterval),
  noPeersInterval: Opt.withDefault(Opt.Millis, defaults.noPeersInterval),
  peerRequestInterval: Opt.withDefault(Opt.Millis, defaults.peerRequestInterval),
  minRequestInterval: Opt.withDefault(Opt.Millis, defaults.minRequestInterval),
  maxAddressesSent: Opt.withDefault(Opt.Count(MAX_ADDRESSES_ON_WIRE), defaults.maxAddressesSent),
  maxAddressesAccepted: Opt.withDefault(Opt.Count(1_000_000), defaults.maxAddressesAccepted),
  resolveTimeout: Opt.withDefault(Opt.Millis, defaults.resolveTimeout),
  sendTimeout: Opt.withDefault(Opt.Millis, defaults.sendTimeout),
  seedMode: Opt.withDefault(Schema.Boolean, defaults.seedMode),
  seedDisconnectDelay: Opt.withDefault(Opt.Millis, defaults.seedDisconnectDelay),
  graceDisconnectDelay: Opt.withDefault(Opt.Millis, defaults.graceDisconnectDelay),
  memoryAddresses: Opt.withDefault(Schema.Boolean, defaults.memoryAddresses)
}).check(
  Opt.rule("requestIntervalMin", (o) => o.requestIntervalMin > 0, "must be positive"),
  Opt.rule("noPeersInterval", (o) => o.noPeersInterval > 0, "must be positive"),
  Opt.rule("requestIntervalMax", (o) => o.requestIntervalMax >= o.requestIntervalMin || `${o.requestIntervalMax} ms is less than requestIntervalMin ${o.requestIntervalMin} ms`)
)

/** Options as callers write them (durations as milliseconds, text or `Duration`s); every field is optional. */
export type OptionsInput = typeof OptionsInput.Encoded

/** Validated options, in milliseconds, defaults applied. See {@link defaults} for each field's meaning. */
export type Options = typeof OptionsInput.Type

export { FULL_STORE_RATIO } from "../domain/PexWire.ts"

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/** A bad PEX option; `option` names it. */
export class InvalidPexOptions extends Schema.TaggedError<InvalidPexOptions>()("InvalidPexOptions", {
  option: Schema.String,
  message: Schema.String
}) {}

/** What a peer did wrong on the PEX channel. */
export type MisbehaviourReason =
  | "unsolicited_addrs"
  | "request_too_soon"
  | "too_many_addresses"
  | "invalid_address"
  | "unknown_message"

/**
 * A peer broke a PEX rule. The reactor reports it to the router as a fatal `PeerError` (with this
 * message), which disconnects the peer as CometBFT does, and lowers the peer's score by one.
 */
export class PexMisbehaviour extends Schema.TaggedError<PexMisbehaviour>()("PexMisbehaviour", {
  nodeId: Schema.String,
  reason: Schema.Literals(["unsolicited_addrs", "request_too_soon", "too_many_addresses", "invalid_address", "unknown_message"]),
  message: Schema.String
}) {}

/** Decodes and validates options, applying {@link defaults}. Fails with {@link InvalidPexOptions} naming the field. */
export const decodeOptions = (input: unknown): Result.Result<Options, InvalidPexOptions> =>
  Result.mapError(Opt.decode(OptionsInput, input), (p) => new InvalidPexOptions({ option: p.option, message: `PEX option ${p.option}: ${p.message}` }))

// ---------------------------------------------------------------------------------------------
// Service
// ---------------------------------------------------------------------------------------------

/** Counters and scheduler state of a running reactor, for status pages and tests. */
export interface Stats {
  /** `pex_request`s we sent. */
  readonly requestsSent: number
  /** `pex_addrs` we accepted in answer to our requests. */
  readonly responsesReceived: number
  /** Peers' `pex_request`s we answered. */
  readonly requestsAnswered: number
  /** Entries received in accepted `pex_addrs`. */
  readonly addressesReceived: number
  /** Of those, addresses `PeerManager.add` kept as new (the interval formula's `totalPeers`). */
  readonly addressesAdded: number
  /** Peers reported for breaking a PEX rule. */
  readonly misbehaviours: number
  /** Connected peers that serve PEX. */
  readonly peers: number
  /** The latest misbehaviour reports (up to 32), oldest first. */
  readonly recentMisbehaviours: ReadonlyArray<PexMisbehaviour>
  /** Peers we are waiting on for an answer. */
  readonly outstanding: ReadonlyArray<NodeId.NodeId>
  /** The current interval between our requests, in ms. */
  readonly requestInterval: number
}

/** The PEX reactor of a node. Its loops run in the scope of the layer that built it. */
export class Pex extends Context.Service<
  Pex,
  {
    /**
     * Sends a `pex_request` now, to a random connected peer that serves PEX, has no request of ours
     * outstanding and was not asked within `peerRequestInterval`; returns it, or `undefined` when no
     * peer qualifies. Does not wait for the answer; the regular schedule continues from now.
     */
    readonly requestNow: Effect.Effect<NodeId.NodeId | undefined>
    /** A snapshot of the reactor's counters. */
    readonly stats: Effect.Effect<Stats>
    /** The validated options in force. */
    readonly options: Options
  }
>()("effect-p2p/Pex") {}

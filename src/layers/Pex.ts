/**
 * The PEX reactor (docs/ARCHITECTURE.md#pex, in CometBFT's wire form, docs/PROTOCOL.md#pex-messages). Three fibers of the layer's scope:
 * - peer updates: tracks connected peers that serve channel `0x00`, and adds an inbound peer's
 *   self-reported listen address to the PeerManager (CometBFT does the same);
 * - the request scheduler: asks one peer at a time, at most one outstanding request per peer and
 *   never the same peer twice within `peerRequestInterval`, at the adaptive interval of
 *   {@link nextRequestInterval}. The next deadline is anchored to the last request, so inbound
 *   traffic never postpones it (docs/ARCHITECTURE.md#fixed-problems-of-the-original);
 * - the message loop: answers requests (rate-limited as CometBFT does), takes in answers to our
 *   requests, and reports every rule broken as a fatal `PeerError` (the router disconnects the
 *   peer) plus a "bad" reputation event.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as FiberSet from "effect/FiberSet"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Random from "effect/Random"
import * as Stream from "effect/Stream"
import type * as ChannelDescriptor from "../domain/ChannelDescriptor.ts"
import * as Envelope from "../domain/Envelope.ts"
import * as NodeAddress from "../domain/NodeAddress.ts"
import * as NodeId from "../domain/NodeId.ts"
import { PeerError } from "../domain/PeerError.ts"
import type * as PeerUpdate from "../domain/PeerUpdate.ts"
import {
  type Message,
  type NetAddress
} from "../proto/tendermint/p2p/pex_pb.ts"
import { AddressResolver } from "../services/AddressResolver.ts"
import { PeerManager } from "../services/PeerManager.ts"
import {
  CHANNEL_ID,
  MAX_ADDRESSES_ON_WIRE,
  Pex,
  PexMisbehaviour,
  decodeOptions,
  descriptor,
  type InvalidPexOptions,
  type MisbehaviourReason,
  type OptionsInput,
  type Stats
} from "../services/Pex.ts"
import { Router, type ChannelAlreadyOpen, type TooManyChannels } from "../services/Router.ts"
import * as Signal from "./Signal.ts"
import { background } from "./Signal.ts"

import { addrsMessage, fromListenAddr, fromNetAddress, nextRequestInterval, requestMessage, storeRatio, toNetAddresses } from "../domain/PexWire.ts"

export * from "../services/Pex.ts"

// ---------------------------------------------------------------------------------------------
// The reactor
// ---------------------------------------------------------------------------------------------

interface PeerState {
  /** Up and serving PEX (false for a peer we heard from before its `up` was processed). */
  up: boolean
  direction: "incoming" | "outgoing" | undefined
  /** A request of ours awaits its answer. */
  outstanding: boolean
  /** When we last asked it. */
  lastAskedAt: number | undefined
  /** CometBFT's `lastReceivedRequests`: none yet, one free one, or the time of the last counted one. */
  lastRequest: "none" | "free" | number
  /** Seed mode: answered once, disconnecting. */
  answeredAsSeed: boolean
  /** Reported for misbehaviour; its further messages are ignored until it goes down. */
  condemned: boolean
}


/** How many of the latest misbehaviour reports `stats` keeps. */
const RECENT_MISBEHAVIOURS = 32

/** Resolutions of advertised addresses run this many at once. */
const RESOLVE_CONCURRENCY = 16

/**
 * Builds the reactor and starts its fibers in the current scope (closing it stops them and closes
 * channel `0x00`). Fails with `InvalidPexOptions` for bad options, `ChannelAlreadyOpen` when channel
 * `0x00` is taken.
 */
export const make = Effect.fn("Pex.make")(function* (input: OptionsInput = {}) {
  const options = yield* Effect.fromResult(decodeOptions(input))
  const router = yield* Router
  const peerManager = yield* PeerManager
  const resolver = yield* AddressResolver
  const memory = options.memoryAddresses
  const channel = yield* router.openChannel(descriptor)
  const fibers = yield* FiberSet.make()
  const wake = yield* Signal.make

  const peers = new Map<NodeId.NodeId, PeerState>()
  let interval = options.requestIntervalMin
  let lastRequestAt: number | undefined
  const recent: Array<PexMisbehaviour> = []
  const counters = { requestsSent: 0, responsesReceived: 0, requestsAnswered: 0, addressesReceived: 0, addressesAdded: 0, misbehaviours: 0 }

  const stateOf = (id: NodeId.NodeId): PeerState => {
    let p = peers.get(id)
    if (p === undefined) {
      p = { up: false, direction: undefined, outstanding: false, lastAskedAt: undefined, lastRequest: "none", answeredAsSeed: false, condemned: false }
      peers.set(id, p)
    }
    return p
  }

  const available = () => {
    let n = 0
    for (const p of peers.values()) if (p.up && !p.outstanding && !p.condemned) n++
    return n
  }

  // The handlers run per message and per peer: untraced (no span, no stack frame), which at scale
  // cost more than they tell.
  const misbehave = Effect.fnUntraced(function* (nodeId: NodeId.NodeId, reason: MisbehaviourReason, detail: string) {
    const p = stateOf(nodeId)
    if (p.condemned) return
    p.condemned = true
    p.outstanding = false
    counters.misbehaviours++
    const error = new PexMisbehaviour({ nodeId, reason, message: `PEX: peer ${nodeId} ${detail}` })
    recent.push(error)
    if (recent.length > RECENT_MISBEHAVIOURS) recent.shift()
    yield* Effect.logInfo(error.message)
    yield* channel.sendError(new PeerError({ nodeId, message: error.message, fatal: true }))
    // CometBFT also marks the peer bad in its address book; here it costs a point of score.
    yield* Effect.ignore(peerManager.report(nodeId, "bad"))
  })

  /**
   * `PeerManager.add`; `true` when the address is new. `source`: the peer whose answer carried it
   * (gossip is bounded per source). Refusals (our own address, a store error) are logged.
   */
  const addAddress = (address: NodeAddress.NodeAddress, source?: NodeId.NodeId) =>
    peerManager.add(address, source === undefined ? undefined : { source }).pipe(
      Effect.catch((e) => Effect.as(Effect.logDebug(`PEX: not adding ${NodeAddress.format(address)}: ${e.message}`), false))
    )

  // -------------------------------------------------------------------------------------------
  // Peer updates
  // -------------------------------------------------------------------------------------------

  const onUp = Effect.fnUntraced(function* (nodeId: NodeId.NodeId, channels: ReadonlySet<number>) {
    const routed = (yield* router.peers).find((r) => r.nodeId === nodeId)
    if (routed !== undefined && routed.direction === "incoming") {
      // An inbound peer is its own source for its listen address (CometBFT `AddPeer`).
      const address = fromListenAddr(nodeId, routed.nodeInfo.listenAddr, memory)
      if (address !== undefined) yield* addAddress(address)
    }
    if (!channels.has(CHANNEL_ID)) return
    const p = stateOf(nodeId)
    p.up = true
    p.direction = routed?.direction
    if (p.direction === "outgoing") yield* wake.fire
  })

  const onUpdate = (u: PeerUpdate.PeerUpdate) => {
    if (u.status === "up") return onUp(u.nodeId, u.channels)
    if (u.status === "down") return Effect.sync(() => void peers.delete(u.nodeId))
    return Effect.void
  }

  /** One subscription; `true` when it lagged and must be renewed, `false` when the manager closed. */
  const followUpdates = Effect.scoped(Effect.gen(function* () {
    const stream = yield* peerManager.subscribe
    const routed = yield* router.peers
    const live = new Set(routed.map((r) => r.nodeId))
    for (const [id, p] of peers) if (p.up && !live.has(id)) peers.delete(id)
    for (const r of routed) yield* onUp(r.nodeId, r.channels)
    return yield* Stream.runForEach(stream, onUpdate).pipe(
      Effect.as(false),
      Effect.catchTag("SubscriberLagged", (e) => Effect.as(Effect.logWarning(`PEX: ${e.message}`), true))
    )
  }))

  yield* Effect.forkScoped(background(Effect.gen(function* () {
    while (yield* followUpdates) {}
  })))

  // -------------------------------------------------------------------------------------------
  // Requests we send
  // -------------------------------------------------------------------------------------------

  /** Asks one eligible peer now; otherwise says when one becomes eligible (if ever, by time alone). */
  const askOne = Effect.fnUntraced(function* (now: number) {
    // Draw first: choosing and marking the peer below then happen without yielding, so the
    // scheduler and `requestNow` can never both pick the same peer.
    const r = yield* Random.next
    const eligible: Array<NodeId.NodeId> = []
    let eligibleAt: number | undefined
    for (const [id, p] of peers) {
      if (!p.up || p.outstanding || p.condemned) continue
      // A seed asks only peers it dialed: inbound ones are about to be let go.
      if (options.seedMode && p.direction !== "outgoing") continue
      const at = p.lastAskedAt === undefined ? now : p.lastAskedAt + options.peerRequestInterval
      if (at <= now) eligible.push(id)
      else eligibleAt = eligibleAt === undefined ? at : Math.min(eligibleAt, at)
    }
    if (eligible.length === 0) return { peer: undefined, eligibleAt }
    const peer = eligible[Math.min(eligible.length - 1, Math.floor(r * eligible.length))]!
    const p = stateOf(peer)
    p.outstanding = true
    p.lastAskedAt = now
    lastRequestAt = now
    counters.requestsSent++
    const sent = yield* channel.send(Envelope.to(peer, requestMessage())).pipe(Effect.timeoutOption(options.sendTimeout))
    // Never queued: no answer can come, so the peer must not stay marked as owing one.
    if (Option.isNone(sent)) p.outstanding = false
    return { peer, eligibleAt: undefined }
  })

  const arm = Signal.timer(wake, yield* Effect.scope)

  const scheduler = Effect.gen(function* () {
    while (true) {
      const signal = wake.get()
      const now = yield* Clock.currentTimeMillis
      const due = lastRequestAt === undefined ? now : lastRequestAt + interval
      if (now < due) {
        yield* arm(due, now)
        yield* Deferred.await(signal)
        continue
      }
      const asked = yield* askOne(now)
      if (asked.peer !== undefined) continue
      const wait = asked.eligibleAt === undefined ? options.noPeersInterval : Math.min(options.noPeersInterval, asked.eligibleAt - now)
      yield* arm(now + wait, now)
      yield* Deferred.await(signal)
    }
  })

  yield* Effect.forkScoped(background(scheduler))

  // -------------------------------------------------------------------------------------------
  // Requests we answer
  // -------------------------------------------------------------------------------------------

  const isBareMemory = (address: NodeAddress.NodeAddress) => address.protocol === NodeAddress.MEMORY_PROTOCOL && address.hostname === ""

  const entriesFor = (address: NodeAddress.NodeAddress) => {
    if (isBareMemory(address)) return Effect.succeed(toNetAddresses(address, []))
    return resolver.resolve(address).pipe(
      Effect.timeoutOption(options.resolveTimeout),
      Effect.map((found) => (Option.isSome(found) ? toNetAddresses(address, found.value) : [])),
      Effect.catch(() => Effect.succeed<ReadonlyArray<NetAddress>>([]))
    )
  }

  const answer = Effect.fnUntraced(function* (nodeId: NodeId.NodeId) {
    const addresses = yield* peerManager.advertise(nodeId, options.maxAddressesSent)
    // Memory addresses need no resolution: no effect per address for them.
    const resolved = addresses.every(isBareMemory)
      ? addresses.map((a) => toNetAddresses(a, []))
      : yield* Effect.forEach(addresses, entriesFor, { concurrency: RESOLVE_CONCURRENCY })
    const seen = new Set<string>()
    const entries: Array<NetAddress> = []
    for (const e of resolved.flat()) {
      const key = `${e.id}@${e.ip}:${e.port}`
      if (seen.has(key) || entries.length >= MAX_ADDRESSES_ON_WIRE) continue
      seen.add(key)
      entries.push(e)
    }
    counters.requestsAnswered++
    yield* channel.send(Envelope.to(nodeId, addrsMessage(entries))).pipe(Effect.timeoutOption(options.sendTimeout))
  })

  const directionOf = (nodeId: NodeId.NodeId, p: PeerState) =>
    p.direction !== undefined
      ? Effect.succeed(p.direction)
      : Effect.map(router.peers, (routed) => routed.find((r) => r.nodeId === nodeId)?.direction)

  const onRequest = Effect.fnUntraced(function* (nodeId: NodeId.NodeId) {
    const p = stateOf(nodeId)
    // A seed answers its inbound peers once and lets them go; so does a full node a peer it
    // admitted only on grace, so the slot serves the next stranded node.
    const seed = options.seedMode && (yield* directionOf(nodeId, p)) === "incoming"
    if (seed || (yield* peerManager.onGrace(nodeId))) {
      if (p.answeredAsSeed) return
      p.answeredAsSeed = true
      yield* answer(nodeId)
      // A fatal PeerError that is not misbehaviour disconnects without a strike or a score change
      // (a returning peer is not banned). The delay lets the answer leave before the connection
      // closes (CometBFT's FlushStop).
      const why = seed ? "PEX seed" : "full node, admitted on grace"
      yield* FiberSet.run(fibers, Effect.andThen(
        Effect.sleep(seed ? options.seedDisconnectDelay : options.graceDisconnectDelay),
        channel.sendError(new PeerError({ nodeId, message: `${why}: answered ${nodeId}, disconnecting`, fatal: true, misbehaviour: false }))
      ))
      return
    }
    const now = yield* Clock.currentTimeMillis
    // CometBFT `receiveRequest`: the first request is free, the second starts the clock.
    if (p.lastRequest === "none") p.lastRequest = "free"
    else if (p.lastRequest === "free") p.lastRequest = now
    else if (now - p.lastRequest < options.minRequestInterval) {
      return yield* misbehave(nodeId, "request_too_soon", `sent a PEX request too soon: ${now - p.lastRequest} ms after the previous one, the minimum is ${options.minRequestInterval} ms`)
    } else p.lastRequest = now
    yield* answer(nodeId)
  })

  // -------------------------------------------------------------------------------------------
  // Answers we receive
  // -------------------------------------------------------------------------------------------

  const onAddrs = Effect.fnUntraced(function* (nodeId: NodeId.NodeId, addrs: ReadonlyArray<NetAddress>) {
    const p = peers.get(nodeId)
    if (p === undefined || !p.outstanding) return yield* misbehave(nodeId, "unsolicited_addrs", "sent a PEX response when none was requested")
    p.outstanding = false
    // The next request to this peer is paced from its answer, not from our request: a request
    // delayed on its way (loss, latency, a healed partition) then still arrives at least
    // `peerRequestInterval` after the previous one did, so a strict peer (CometBFT disconnects a
    // request within 10 s of the last) never sees two too close together.
    p.lastAskedAt = yield* Clock.currentTimeMillis
    if (addrs.length > options.maxAddressesAccepted) {
      return yield* misbehave(nodeId, "too_many_addresses", `sent too many addresses: ${addrs.length}, at most ${options.maxAddressesAccepted} accepted`)
    }
    const parsed = addrs.map((a) => fromNetAddress(a, memory))
    for (const entry of parsed) {
      if (entry._tag === "Invalid") return yield* misbehave(nodeId, "invalid_address", `sent an invalid address: ${entry.reason}`)
    }
    counters.responsesReceived++
    counters.addressesReceived += addrs.length
    const addresses = parsed.flatMap((entry) => (entry._tag === "Address" ? [entry.address] : []))
    const kept = yield* peerManager.addAll(addresses, { source: nodeId }).pipe(
      Effect.catch((e) => Effect.as(Effect.logWarning(`PEX: cannot store the addresses ${nodeId} sent: ${e.message}`), [] as ReadonlyArray<boolean>))
    )
    const added = kept.filter(Boolean).length
    counters.addressesAdded += added
    const stored = yield* peerManager.peerCount
    interval = nextRequestInterval(
      { added, totalPeers: counters.addressesAdded, available: available(), storeRatio: storeRatio(stored, peerManager.options.maxPeers) },
      options
    )
    yield* wake.fire
  })

  const onMessage = (envelope: Envelope.Inbound<Message>) =>
    Effect.suspend(() => {
      const from = envelope.from
      if (peers.get(from)?.condemned === true) return Effect.void
      const sum = envelope.message.sum
      switch (sum.case) {
        case "pexRequest":
          return onRequest(from)
        case "pexAddrs":
          return onAddrs(from, sum.value.addrs)
        default:
          return misbehave(from, "unknown_message", "sent an unknown PEX message")
      }
    })

  yield* Effect.forkScoped(background(Stream.runForEach(channel.messages, onMessage)))

  return Pex.of({
    options,
    requestNow: Effect.flatMap(Clock.currentTimeMillis, (now) => Effect.map(askOne(now), (asked) => asked.peer)),
    stats: Effect.sync((): Stats => ({
      ...counters,
      peers: [...peers.values()].filter((p) => p.up).length,
      outstanding: [...peers].filter(([, p]) => p.outstanding).map(([id]) => id),
      recentMisbehaviours: [...recent],
      requestInterval: interval
    }))
  })
})

/**
 * The PEX reactor as a layer: opens channel `0x00` on the router and runs until the layer's scope
 * closes. Needs the router, the PeerManager and an AddressResolver (to turn advertised addresses
 * into IPs). Fails with `InvalidPexOptions` for bad
 * options, `ChannelAlreadyOpen` when something else holds channel `0x00`.
 *
 * @example
 * ```ts
 * const node = Pex.layer({ seedMode: true }).pipe(Layer.provideMerge(routerStack))
 * ```
 */
export const layer = (
  options: OptionsInput = {}
): Layer.Layer<
  Pex,
  InvalidPexOptions | ChannelAlreadyOpen | TooManyChannels | ChannelDescriptor.InvalidChannelDescriptor,
  Router | PeerManager | AddressResolver
> => Layer.effect(Pex, make(options))

/**
 * `Router.openChannel`: a channel registers its inbound queue (read by the peers' receive loops)
 * and joins our NodeInfo for the scope of its caller. Its `send` encodes a message once and puts it
 * in the queue of the peer it is for, or of every peer that serves the channel; its `sendError`
 * reports a peer to the PeerManager. See docs/ARCHITECTURE.md, Router.
 *
 * @since 0.1.0
 */
import type { DescMessage, MessageShape } from "@bufbuild/protobuf"
import type * as Cause from "effect/Cause"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as Queue from "effect/Queue"
import * as Stream from "effect/Stream"
import * as ChannelDescriptor from "../../domain/ChannelDescriptor.ts"
import type * as Envelope from "../../domain/Envelope.ts"
import type * as NodeId from "../../domain/NodeId.ts"
import * as NodeInfo from "../../domain/NodeInfo.ts"
import * as MessageType from "../../domain/router/MessageType.ts"
import { ChannelAlreadyOpen, TooManyChannels, type Channel } from "../../services/Router.ts"
import * as Codec from "../../wire/MessageCodec.ts"
import * as Metrics from "../Metrics.ts"
import { channelLabel } from "./Metrics.ts"
import { closeInbound, type OpenChannel, type PeerEntry, type State } from "./State.ts"

/**
 * Opens a channel for the caller's scope; closing the scope closes it (its `messages` end, and it
 * leaves our NodeInfo unless the options declared it). Fails with `ChannelAlreadyOpen`,
 * `TooManyChannels` or `InvalidChannelDescriptor`.
 */
export const openChannel = Effect.fn("Router.openChannel")(function* <Desc extends DescMessage>(
  state: State,
  descriptor: ChannelDescriptor.ChannelDescriptor<Desc>
) {
  const { channels, advertised, peers, metrics } = state
  const { count, dropped } = metrics
  yield* Effect.fromResult(ChannelDescriptor.validate(descriptor))
  const id = descriptor.id
  if (channels.has(id)) return yield* new ChannelAlreadyOpen({ channelId: id, message: `channel ${channelLabel(id)} (${descriptor.name}) is already open` })
  if (!advertised.has(id) && advertised.size >= NodeInfo.MAX_CHANNELS) {
    return yield* new TooManyChannels({ channelId: id, message: `cannot open channel ${channelLabel(id)} (${descriptor.name}): a node advertises at most ${NodeInfo.MAX_CHANNELS} channels` })
  }
  const inbound = yield* Queue.bounded<Envelope.Inbound<unknown>, Cause.Done>(descriptor.recvBufferCapacity)
  const attrs = { chID: channelLabel(id) }
  const queueFull = Metric.withAttributes(Metrics.peerQueueDroppedMsgs, { reason: "queue_full" })
  const opened: OpenChannel = {
    descriptor,
    inbound,
    sentMsgs: Metric.withAttributes(Metrics.messageSendTotal, attrs),
    receivedMsgs: Metric.withAttributes(Metrics.messageReceiveTotal, attrs)
  }
  yield* Effect.acquireRelease(
    Effect.sync(() => {
      channels.set(id, opened)
      advertised.set(id, descriptor)
    }),
    () =>
      Effect.sync(() => {
        if (channels.get(id) === opened) channels.delete(id)
        if (!state.declared.has(id)) advertised.delete(id)
        closeInbound(inbound)
      })
  )

  // `enqueue` and `send` run once per message (per peer, for a broadcast): no span, no generator.
  const countClosed = (ok: boolean) => {
    if (!ok) count(dropped.closed, 1)
    return Effect.void
  }
  const enqueue = (entry: PeerEntry, data: Uint8Array, messageType: string): Effect.Effect<void> => {
    const item = { channelId: id, priority: descriptor.priority, data, messageType }
    if (entry.queue.offerUnsafe(item)) return Effect.void
    return Effect.flatMap(entry.queue.offer(item), countClosed)
  }

  // A broadcast puts the message in every queue with room at once; queues that are full are waited
  // for together, each up to `broadcastTimeout`. A peer that runs out that time misses the message
  // and is skipped by later broadcasts (its copies dropped) until its queue is half empty again, so
  // a stalled peer costs the broadcaster one timeout, not one per message.
  const congested = new WeakSet<PeerEntry>()
  // Peers marked congested and not yet cleared (an upper bound: a marked peer that left is not
  // subtracted). While 0, broadcasts skip the WeakSet entirely.
  let marked = 0
  const broadcast = (data: Uint8Array, messageType: string): Effect.Effect<void> => {
    // One read-only item shared by every queue; queues with room take it here, synchronously, so a
    // broadcast costs the sending fiber a constant number of effect steps whatever the peer count
    // (an effect per peer made it yield mid-broadcast at ~1,000 peers, and every peer's send loop
    // then woke once per message: 12x the per-delivery cost of 10 peers).
    const item = { channelId: id, priority: descriptor.priority, data, messageType }
    let now: Array<PeerEntry> | undefined
    let wait: Array<PeerEntry> | undefined
    for (const entry of peers.values()) {
      if (!entry.channels.has(id)) {
        count(dropped.noChannel, 1)
        continue
      }
      const size = entry.queue.size()
      const isCongested = marked > 0 && congested.has(entry)
      if (size < entry.queue.capacity && (!isCongested || size <= entry.queue.capacity / 2)) {
        if (isCongested) {
          congested.delete(entry)
          marked--
        }
        // A queue that refuses (closed meanwhile) goes the effectful way, which counts the drop.
        if (!entry.sendNow(id, data, messageType) && !entry.queue.offerUnsafe(item)) (now ??= []).push(entry)
      } else if (isCongested) {
        count(queueFull, 1)
      } else {
        ;(wait ??= []).push(entry)
      }
    }
    const immediate = now === undefined ? Effect.void : Effect.forEach(now, (entry) => enqueue(entry, data, messageType), { discard: true })
    if (wait === undefined) return immediate
    return Effect.andThen(
      immediate,
      Effect.forEach(wait, (entry) =>
        Effect.flatMap(Effect.timeoutOption(enqueue(entry, data, messageType), state.options.broadcastTimeout), (done) =>
          Effect.sync(() => {
            if (done._tag === "Some") return
            if (!congested.has(entry)) {
              congested.add(entry)
              marked++
            }
            count(queueFull, 1)
          })), { concurrency: "unbounded", discard: true })
    )
  }

  const send = (envelope: Envelope.Outbound<MessageShape<Desc>>): Effect.Effect<void> =>
    Effect.suspend(() => {
      let data: Uint8Array
      try {
        data = Codec.encode(descriptor.messageType, envelope.message)
      } catch (e) {
        count(dropped.unencodable, 1)
        return Effect.logWarning(`channel ${channelLabel(id)}: cannot encode message: ${(e as Error).message}`)
      }
      const messageType = MessageType.label(descriptor.messageType, envelope.message)
      if (envelope.broadcast === true) return broadcast(data, messageType)
      const entry = peers.get(envelope.to)
      if (entry === undefined) {
        count(dropped.unknownPeer, 1)
        return Effect.void
      }
      if (!entry.channels.has(id)) {
        count(dropped.noChannel, 1)
        return Effect.void
      }
      if (entry.sendNow(id, data, messageType)) return Effect.void
      return enqueue(entry, data, messageType)
    })

  const channel: Channel<Desc> = {
    descriptor,
    send,
    sendError: (error) =>
      error.ban === undefined
        ? Effect.ignore(state.peerManager.errored(error.nodeId as NodeId.NodeId, error.fatal, error.misbehaviour ?? true))
        : state.peerManager.ban(error.nodeId, { duration: error.ban as Duration.Input, reason: error.message }).pipe(
          Effect.catch((e) => Effect.logWarning(`channel ${channelLabel(id)}: cannot ban ${error.nodeId}: ${e.message}`)),
          Effect.asVoid
        ),
    messages: Stream.fromQueue(inbound) as unknown as Stream.Stream<Envelope.Inbound<MessageShape<Desc>>>
  }
  return channel
})

/**
 * The send side of an MConnection (docs/PROTOCOL.md#sending-scheduling-and-packed-writes): bounded per-channel queues of
 * whole messages, and the packet scheduler that cuts them into PacketMsgs and picks which channel
 * goes next.
 *
 * Scheduling matches CometBFT's `sendPacketMsg`: for every packet, among channels with pending
 * data, the one with the smallest `recentlySent / priority` (computed in float32, as Go does) wins,
 * ties going to the first channel in registration order. `recentlySent` counts every byte
 * written, length prefix included, and {@link ChannelScheduler.decay} (run by the caller every
 * 2 s) multiplies it by 0.8, truncating like Go's `int64(float64(x) * 0.8)`.
 *
 * A batch costs one copy of the payload: {@link ChannelScheduler.fill} encodes packets straight
 * from the queued messages into the caller's buffer (typically the region the SecretWriter seals
 * next). Queued messages are kept by reference, so do not modify one after enqueueing it.
 *
 * Errors: none a peer can cause. Bad descriptors, unknown channels and bad buffer ranges throw
 * `RangeError` (our bug).
 *
 * @since 0.1.0
 */
import { DEFAULT_MAX_PACKET_MSG_PAYLOAD_SIZE, encodePacketMsgInto, packetMsgWireLength } from "./PacketCodec.ts"

/** CometBFT's `numBatchPacketMsgs`: packets written per send wake-up. */
export const NUM_BATCH_PACKET_MSGS = 10

/** CometBFT's `defaultSendQueueCapacity`. */
export const DEFAULT_SEND_QUEUE_CAPACITY = 1

/** The factor {@link ChannelScheduler.decay} applies to `recentlySent`. */
export const RECENTLY_SENT_DECAY = 0.8

/** A channel as the scheduler needs it. */
export interface SchedulerChannel {
  /** Channel id, 0..255. */
  readonly id: number
  /** Scheduling weight, a positive integer: a channel gets bandwidth in proportion to it when all are busy. */
  readonly priority: number
  /** Whole messages that may wait (not counting the one being cut into packets); default 1. */
  readonly sendQueueCapacity?: number
}

/** Options for {@link ChannelScheduler}. */
export interface ChannelSchedulerOptions {
  /** Largest PacketMsg payload; default 1024 (CometBFT). Must match what the peer accepts. */
  readonly maxPacketMsgPayloadSize?: number
}

/** A channel's queue state, for metrics. */
export interface ChannelQueueStats {
  readonly id: number
  readonly priority: number
  /** Messages the queue holds at most (`sendQueueCapacity`). */
  readonly capacity: number
  /** Messages not yet fully sent, including one partly cut into packets. */
  readonly queuedMessages: number
  /** Payload bytes not yet sent, including the rest of a partly sent message. */
  readonly queuedBytes: number
  /** Decayed count of bytes recently written on this channel. */
  readonly recentlySent: number
}

const EMPTY: Uint8Array = new Uint8Array(0)

class ChannelQueue {
  readonly id: number
  readonly priority: number
  readonly fPriority: number
  readonly capacity: number
  /** Ring buffer of waiting messages. */
  readonly ring: Array<Uint8Array | undefined>
  head = 0
  size = 0
  /** Payload bytes of waiting messages (not of `sending`). */
  waitingBytes = 0
  /** The message being cut into packets, if any, and how much of it was sent. */
  sending: Uint8Array | undefined = undefined
  sent = 0
  recentlySent = 0
  constructor(id: number, priority: number, capacity: number) {
    this.id = id
    this.priority = priority
    this.fPriority = Math.fround(priority)
    this.capacity = capacity
    this.ring = new Array<Uint8Array | undefined>(capacity).fill(undefined)
  }
}

/** Per-channel send queues plus the packet scheduler. Not reentrant; one per connection. */
export class ChannelScheduler {
  /** Payload bytes per PacketMsg. */
  readonly maxPacketMsgPayloadSize: number
  readonly #channels: ReadonlyArray<ChannelQueue>
  readonly #byId: Array<ChannelQueue | undefined> = new Array<ChannelQueue | undefined>(256).fill(undefined)
  /** Messages queued or being sent, over all channels. */
  #pending = 0

  /**
   * Channels in registration order (the tie-break order). `RangeError` for an id outside 0..255,
   * a duplicate id, a priority that is not a positive integer, a capacity that is not a positive
   * integer, or a payload size that is not a positive integer.
   */
  constructor(channels: Iterable<SchedulerChannel>, options: ChannelSchedulerOptions = {}) {
    const payload = options.maxPacketMsgPayloadSize ?? DEFAULT_MAX_PACKET_MSG_PAYLOAD_SIZE
    if (!(Number.isSafeInteger(payload) && payload > 0)) throw new RangeError(`bad maxPacketMsgPayloadSize ${payload}`)
    this.maxPacketMsgPayloadSize = payload
    const list: Array<ChannelQueue> = []
    for (const ch of channels) {
      if (!(Number.isInteger(ch.id) && ch.id >= 0 && ch.id <= 255)) throw new RangeError(`channel id must be in 0..255, got ${ch.id}`)
      if (this.#byId[ch.id] !== undefined) throw new RangeError(`channel ${ch.id} registered twice`)
      if (!(Number.isSafeInteger(ch.priority) && ch.priority > 0)) throw new RangeError(`channel ${ch.id}: priority must be a positive integer, got ${ch.priority}`)
      const capacity = ch.sendQueueCapacity ?? DEFAULT_SEND_QUEUE_CAPACITY
      if (!(Number.isSafeInteger(capacity) && capacity > 0)) throw new RangeError(`channel ${ch.id}: bad sendQueueCapacity ${capacity}`)
      const q = new ChannelQueue(ch.id, ch.priority, capacity)
      list.push(q)
      this.#byId[ch.id] = q
    }
    this.#channels = list
  }

  /** The largest any single packet from {@link ChannelScheduler.fill} can be on the wire (prefix included). */
  get maxPacketWireLength(): number {
    let max = 0
    for (const ch of this.#channels) max = Math.max(max, packetMsgWireLength(ch.id, true, this.maxPacketMsgPayloadSize))
    return max
  }

  #queue(channelId: number): ChannelQueue {
    const q = channelId >= 0 && channelId <= 255 ? this.#byId[channelId] : undefined
    if (q === undefined) throw new RangeError(`channel ${channelId} is not registered`)
    return q
  }

  /**
   * Queues a whole message on a channel. Returns `false`, queueing nothing, when the channel
   * already holds `sendQueueCapacity` waiting messages. The message is kept by reference.
   * `RangeError` for an unregistered channel.
   */
  tryEnqueue(channelId: number, message: Uint8Array): boolean {
    const q = this.#queue(channelId)
    if (q.size >= q.capacity) return false
    let tail = q.head + q.size
    if (tail >= q.capacity) tail -= q.capacity
    q.ring[tail] = message
    q.size++
    q.waitingBytes += message.length
    this.#pending++
    return true
  }

  /** Whether `channelId` can take another message now. `RangeError` for an unregistered channel. */
  canEnqueue(channelId: number): boolean {
    const q = this.#queue(channelId)
    return q.size < q.capacity
  }

  /** Whether any channel has a message waiting or partly sent. */
  get hasPending(): boolean {
    return this.#pending > 0
  }

  /** Messages not yet fully sent on `channelId`, including one partly sent. `RangeError` for an unregistered channel. */
  queuedMessages(channelId: number): number {
    const q = this.#queue(channelId)
    return q.size + (q.sending === undefined ? 0 : 1)
  }

  /** Payload bytes not yet sent on `channelId`. `RangeError` for an unregistered channel. */
  queuedBytes(channelId: number): number {
    const q = this.#queue(channelId)
    return q.waitingBytes + (q.sending === undefined ? 0 : q.sending.length - q.sent)
  }

  /** `recentlySent` of `channelId`. `RangeError` for an unregistered channel. */
  recentlySent(channelId: number): number {
    return this.#queue(channelId).recentlySent
  }

  /** Every channel's queue state in registration order, for metrics. */
  stats(): ReadonlyArray<ChannelQueueStats> {
    return this.#channels.map((q) => ({
      id: q.id,
      priority: q.priority,
      capacity: q.capacity,
      queuedMessages: q.size + (q.sending === undefined ? 0 : 1),
      queuedBytes: q.waitingBytes + (q.sending === undefined ? 0 : q.sending.length - q.sent),
      recentlySent: q.recentlySent
    }))
  }

  /** Multiplies every channel's `recentlySent` by 0.8, truncating as Go's int64 conversion. Run every 2 s. */
  decay(): void {
    for (const q of this.#channels) q.recentlySent = Math.floor(q.recentlySent * RECENTLY_SENT_DECAY)
  }

  /**
   * Writes up to `maxPackets` length-delimited PacketMsgs into `target[offset, offset + maxBytes)`
   * and returns the offset just past the last one (`offset` itself if nothing was pending or the
   * next packet does not fit). Stops early when no channel has data or the next chosen packet
   * would pass `maxBytes`; give at least {@link ChannelScheduler.maxPacketWireLength} bytes to be
   * sure of progress. Each packet's payload is copied once, from the queued message into `target`.
   *
   * `RangeError` if the region is outside `target` or `maxPackets` is negative.
   */
  fill(target: Uint8Array, offset: number, maxBytes: number = target.length - offset, maxPackets: number = NUM_BATCH_PACKET_MSGS): number {
    if (!(Number.isInteger(offset) && Number.isInteger(maxBytes) && offset >= 0 && maxBytes >= 0 && offset + maxBytes <= target.length)) {
      throw new RangeError(`bad region [${offset}, ${offset} + ${maxBytes}) of ${target.length} bytes`)
    }
    if (!(maxPackets >= 0)) throw new RangeError(`bad maxPackets ${maxPackets}`)
    const limit = offset + maxBytes
    const channels = this.#channels
    const n = channels.length
    const maxPayload = this.maxPacketMsgPayloadSize
    let o = offset
    for (let p = 0; p < maxPackets && this.#pending > 0; p++) {
      let best: ChannelQueue | undefined
      let bestRatio = Infinity
      for (let i = 0; i < n; i++) {
        const q = channels[i]!
        if (q.sending === undefined && q.size === 0) continue
        const ratio = Math.fround(Math.fround(q.recentlySent) / q.fPriority)
        if (ratio < bestRatio) {
          bestRatio = ratio
          best = q
        }
      }
      if (best === undefined) break
      if (best.sending === undefined) {
        best.sending = best.ring[best.head] ?? EMPTY
        best.ring[best.head] = undefined
        best.head = best.head + 1 === best.capacity ? 0 : best.head + 1
        best.size--
        best.waitingBytes -= best.sending.length
        best.sent = 0
      }
      const msg = best.sending
      const start = best.sent
      const remaining = msg.length - start
      // Channels from 128 up need a 2-byte channel_id: cut one byte less, so no packet exceeds the
      // receive limit every peer computes with channel 1 (1034 bytes for a 1024-byte payload).
      const payload = best.id >= 128 ? maxPayload - 1 : maxPayload
      const eof = remaining <= payload
      const end = eof ? msg.length : start + payload
      const wire = packetMsgWireLength(best.id, eof, end - start)
      if (o + wire > limit) break
      o = encodePacketMsgInto(target, o, best.id, eof, msg, start, end)
      best.recentlySent += wire
      if (eof) {
        best.sending = undefined
        best.sent = 0
        this.#pending--
      } else {
        best.sent = end
      }
    }
    return o
  }
}

/**
 * Per-channel message reassembly on the receive side of an MConnection (docs/PROTOCOL.md#reassembly): PacketMsg
 * pieces are appended to their channel's buffer and the whole message is delivered on `eof`.
 *
 * Limits come first: a piece for a channel outside 0..255 or not registered, or one that would
 * take the buffered message past the channel's `recvMessageCapacity`, is refused before a byte
 * is copied or allocated. A message that arrives in a single packet is returned as is (zero
 * copy); a multi-packet one is copied once into a buffer grown by doubling up to the capacity,
 * which starts at the size of the channel's previous multi-packet message: a stream of 64 KiB
 * messages gets one 64 KiB buffer each, not five growing ones.
 * Pieces are copied, not kept by reference, so a peer cannot pin many large chunks with tiny
 * pieces.
 *
 * Errors: {@link ReassemblyError} (`"unknown_channel"`, `"message_too_large"`), fatal for the
 * connection; bad channel descriptors throw `RangeError`.
 *
 * @since 0.1.0
 */

/** Why a peer's PacketMsg was refused. */
export type ReassemblyErrorReason = "unknown_channel" | "message_too_large"

/**
 * A PacketMsg for a channel outside 0..255 or not registered (`"unknown_channel"`), or a message
 * growing past the channel's receive capacity (`"message_too_large"`).
 */
export class ReassemblyError extends Error {
  readonly _tag = "ReassemblyError" as const
  readonly reason: ReassemblyErrorReason
  /** The channel id as received (any int32). */
  readonly channelId: number
  constructor(reason: ReassemblyErrorReason, channelId: number, message: string) {
    super(message)
    this.name = "ReassemblyError"
    this.reason = reason
    this.channelId = channelId
  }
}

/** A channel as the reassembler needs it. */
export interface ReassemblerChannel {
  /** Channel id, 0..255. */
  readonly id: number
  /** Largest message accepted on this channel, in bytes (CometBFT's default 22020096). */
  readonly recvMessageCapacity: number
  /** Initial buffer size for a multi-packet message; default 4096 (`defaultRecvBufferCapacity`), capped at the capacity. */
  readonly recvBufferCapacity?: number
}

/** CometBFT's `defaultRecvBufferCapacity`. */
export const DEFAULT_RECV_BUFFER_CAPACITY = 4096

/** CometBFT's `defaultRecvMessageCapacity` (21 MiB). */
export const DEFAULT_RECV_MESSAGE_CAPACITY = 22020096

const EMPTY: Uint8Array = new Uint8Array(0)

class ChannelState {
  readonly capacity: number
  readonly initial: number
  buffer: Uint8Array = EMPTY
  length = 0
  /** The size of the last multi-packet message: the first buffer of the next one. */
  last = 0
  constructor(capacity: number, initial: number) {
    this.capacity = capacity
    this.initial = initial
  }
}

/** Reassembles messages for a fixed set of channels. Not reentrant; one per connection. */
export class Reassembler {
  readonly #channels: Array<ChannelState | undefined> = new Array<ChannelState | undefined>(256).fill(undefined)

  /** `RangeError` for an id outside 0..255, a duplicate id, or a capacity that is not a non-negative safe integer. */
  constructor(channels: Iterable<ReassemblerChannel>) {
    for (const ch of channels) {
      if (!(Number.isInteger(ch.id) && ch.id >= 0 && ch.id <= 255)) throw new RangeError(`channel id must be in 0..255, got ${ch.id}`)
      if (this.#channels[ch.id] !== undefined) throw new RangeError(`channel ${ch.id} registered twice`)
      const cap = ch.recvMessageCapacity
      if (!(cap >= 0 && Number.isSafeInteger(cap))) throw new RangeError(`bad recvMessageCapacity ${cap} for channel ${ch.id}`)
      const initial = ch.recvBufferCapacity ?? DEFAULT_RECV_BUFFER_CAPACITY
      if (!(initial >= 0 && Number.isSafeInteger(initial))) throw new RangeError(`bad recvBufferCapacity ${initial} for channel ${ch.id}`)
      this.#channels[ch.id] = new ChannelState(cap, Math.min(initial, cap))
    }
  }

  /** Bytes buffered for an incomplete message on `channelId` (0 for unknown channels). */
  bufferedBytes(channelId: number): number {
    return this.#channels[channelId]?.length ?? 0
  }

  /**
   * Takes one PacketMsg piece. Returns the whole message when `eof` is set (an empty message is
   * delivered as an empty array), else `undefined`. When the message is this one piece, the
   * returned array *is* `data`; otherwise it is a fresh buffer the caller owns (possibly a view
   * of a larger one).
   *
   * Throws {@link ReassemblyError}: `"unknown_channel"` for an id outside 0..255 (any int32 a
   * peer sent) or not registered; `"message_too_large"` if buffered + `data.length` exceeds the
   * channel's capacity, checked before anything is copied. After an error the connection is dead.
   */
  onMsg(channelId: number, eof: boolean, data: Uint8Array): Uint8Array | undefined {
    const ch = channelId >= 0 && channelId <= 255 ? this.#channels[channelId] : undefined
    if (ch === undefined) throw new ReassemblyError("unknown_channel", channelId, `unknown channel ${channelId}`)
    const total = ch.length + data.length
    if (total > ch.capacity) {
      throw new ReassemblyError(
        "message_too_large",
        channelId,
        `received message exceeds available capacity on channel ${channelId}: ${total} > ${ch.capacity}`
      )
    }
    if (ch.length === 0 && eof) return data
    if (total > ch.buffer.length) {
      let size = Math.max(ch.buffer.length * 2, ch.initial, total, ch.length === 0 ? ch.last : 0)
      if (size > ch.capacity) size = ch.capacity
      // Uninitialised: every byte handed out is written first, and the spare room is cleared at eof.
      const b = Buffer.allocUnsafeSlow(size)
      const grown = new Uint8Array(b.buffer, b.byteOffset, size)
      if (ch.length > 0) grown.set(ch.buffer.subarray(0, ch.length))
      ch.buffer = grown
    }
    ch.buffer.set(data, ch.length)
    ch.length = total
    if (!eof) return undefined
    // Much smaller than the buffer (the previous message was larger): a copy of its own, so the
    // message does not hold on to the spare room.
    const message = ch.buffer.length > 2 * total ? ch.buffer.slice(0, total) : ch.buffer.fill(0, total).subarray(0, total)
    ch.buffer = EMPTY
    ch.length = 0
    ch.last = total
    return message
  }
}

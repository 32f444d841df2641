/**
 * The receive side of MConnection framing (docs/PROTOCOL.md#packet-size-limit): turns the plaintext byte stream coming out
 * of the SecretConnection, in chunks of any size, into decoded packets. Frame and TCP boundaries
 * carry no meaning, so a packet may be split anywhere, and one chunk may hold many packets.
 *
 * Zero-copy where possible: a packet wholly inside one chunk is decoded in place, so its `data` is
 * a view of that chunk (do not reuse pushed chunks). Only a packet that straddles chunks is copied,
 * once, into a buffer of exactly its size, allocated only after its length prefix was checked
 * against `maxPacketMsgSize`. The length prefix itself is decoded incrementally and never buffered.
 *
 * Errors: {@link PacketError} — `"too_large"` for a prefix above the limit or over 10 bytes,
 * `"encoding"`/`"unknown_packet_type"` from {@link decodePacket}. Fatal: after an error the reader
 * is unusable. Pushing before the previous chunk was drained throws `RangeError` (our bug).
 *
 * @since 0.1.0
 */
import { decodePacket, maxPacketMsgSize, PacketError, type Packet } from "./PacketCodec.ts"
import { UvarintDecoder, UvarintError } from "./Uvarint.ts"

/** Options for {@link PacketReader}. */
export interface PacketReaderOptions {
  /** Largest packet body accepted; default `maxPacketMsgSize(1024)` = 1034, CometBFT's default. */
  readonly maxPacketSize?: number
}

const EMPTY: Uint8Array = new Uint8Array(0)

/**
 * `n` uninitialised bytes from Node's Buffer pool as a plain `Uint8Array` (the body is fully
 * overwritten before use). A fresh ~1 KiB `Uint8Array` gets its own off-heap backing store, which
 * costs more than the copy itself on this path.
 */
const pooled = (n: number): Uint8Array => {
  const b = Buffer.allocUnsafe(n)
  return new Uint8Array(b.buffer, b.byteOffset, n)
}

/**
 * An incremental packet reader. Use: `reader.push(chunk)`, then take packets with
 * `reader.next()` until it returns `undefined` (or iterate `reader.push(chunk)` directly), then
 * push the next chunk.
 */
export class PacketReader implements Iterable<Packet> {
  /** The largest packet body accepted. */
  readonly maxPacketSize: number
  readonly #prefix: UvarintDecoder
  #chunk: Uint8Array = EMPTY
  #pos = 0
  /** A straddling packet body being assembled, or `undefined`. */
  #partial: Uint8Array | undefined = undefined
  #partialFilled = 0

  /** `RangeError` if `maxPacketSize` is not a non-negative safe integer. */
  constructor(options: PacketReaderOptions = {}) {
    this.maxPacketSize = options.maxPacketSize ?? maxPacketMsgSize()
    this.#prefix = new UvarintDecoder(this.maxPacketSize)
  }

  /** Bytes held for a packet not yet complete (a partial body; a partial prefix holds none). */
  get bufferedBytes(): number {
    return this.#partialFilled
  }

  /** Whether the stream is between packets: no partial prefix or body is pending. */
  get atBoundary(): boolean {
    return this.#partial === undefined && !this.#prefix.pending && this.#pos >= this.#chunk.length
  }

  /**
   * Hands the reader the next chunk of the stream; returns the reader, so
   * `for (const p of reader.push(chunk))` reads every packet it completes. The chunk is kept by
   * reference until drained and message data may be views of it: do not modify it afterwards.
   * `RangeError` if the previous chunk still has unread bytes.
   */
  push(chunk: Uint8Array): this {
    if (this.#pos < this.#chunk.length) throw new RangeError("PacketReader.push before the previous chunk was drained")
    this.#chunk = chunk
    this.#pos = 0
    return this
  }

  /**
   * The next complete packet from the pushed bytes, or `undefined` when they are used up (any
   * incomplete packet is kept for the next chunk). Throws {@link PacketError}.
   */
  next(): Packet | undefined {
    const chunk = this.#chunk
    const end = chunk.length
    let pos = this.#pos
    if (this.#partial !== undefined) {
      const partial = this.#partial
      const need = partial.length - this.#partialFilled
      const take = Math.min(need, end - pos)
      partial.set(take === end - pos && pos === 0 ? chunk : chunk.subarray(pos, pos + take), this.#partialFilled)
      this.#partialFilled += take
      this.#pos = pos + take
      if (take < need) return undefined
      this.#partial = undefined
      this.#partialFilled = 0
      return decodePacket(partial)
    }
    if (pos >= end) return undefined
    let complete: boolean
    try {
      complete = this.#prefix.decode(chunk, pos, end)
    } catch (e) {
      if (e instanceof UvarintError) {
        throw new PacketError("too_large", e.reason === "too_large"
          ? `packet length exceeds maxPacketMsgSize ${this.maxPacketSize}`
          : "packet length prefix overflows", { cause: e })
      }
      throw e
    }
    pos = this.#prefix.next
    if (!complete) {
      this.#pos = pos
      return undefined
    }
    const length = this.#prefix.value
    if (end - pos >= length) {
      this.#pos = pos + length
      return decodePacket(chunk, pos, pos + length)
    }
    // Straddles: copy what is here into a body of exactly the announced (already bounded) size.
    const partial = pooled(length)
    partial.set(chunk.subarray(pos, end))
    this.#partial = partial
    this.#partialFilled = end - pos
    this.#pos = end
    return undefined
  }

  /** Iterates {@link PacketReader.next} until the pushed bytes are used up. Throws {@link PacketError}. */
  *[Symbol.iterator](): Iterator<Packet> {
    for (let p = this.next(); p !== undefined; p = this.next()) yield p
  }
}

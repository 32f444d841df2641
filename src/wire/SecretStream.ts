/**
 * The SecretConnection data phase (docs/PROTOCOL.md#sealed-frames) as a pure byte-stream transform over
 * {@link FrameSealer}/{@link FrameOpener}: plaintext in, 1044-byte sealed frames out, and back.
 * Frame boundaries carry no meaning to the layers above.
 *
 * {@link SecretWriter} seals any amount of data into one buffer of whole frames, for a single
 * socket write; it cuts the stream into full 1024-byte chunks (only the last frame of a call is
 * short), even across the buffers of a list, so a batch of packets costs as few frames as
 * possible. {@link SecretReader} accepts ciphertext in chunks of any size, opens every frame that
 * is complete (in place when it lies inside one chunk) and buffers at most one partial frame.
 *
 * Errors: {@link FrameOpenError} (`"authentication"`, `"chunk_length"`) and
 * {@link NonceOverflowError} come through from the cipher and are fatal; after one the reader or
 * writer must not be used again. Bad ranges throw `RangeError` (our bug).
 *
 * @since 0.1.0
 */
import { DATA_LEN_SIZE, DATA_MAX_SIZE, FrameOpener, FrameSealer, frameCount, SEALED_FRAME_SIZE } from "./FrameCipher.ts"

/**
 * `n` uninitialised bytes from Node's Buffer pool as a plain `Uint8Array` (see FrameCipher): the
 * output is always fully overwritten with sealed frames.
 */
const pooled = (n: number): Uint8Array => {
  const b = Buffer.allocUnsafe(n)
  return new Uint8Array(b.buffer, b.byteOffset, n)
}

/** The sending half of the data phase. Not reentrant; one per connection. */
export class SecretWriter {
  readonly #sealer: FrameSealer
  /** Gathers a chunk that spans two buffers of a list. */
  readonly #gather = new Uint8Array(DATA_MAX_SIZE)

  /** Seals with `sealer` (this side's send key and nonce). */
  constructor(sealer: FrameSealer) {
    this.#sealer = sealer
  }

  /**
   * Seals `data` as 1024-byte chunks into one new buffer of `ceil(length / 1024) * 1044` bytes
   * (empty for empty data, as Go writes nothing). Like every output of this class the buffer may
   * be a view of Node's Buffer pool: mind `byteOffset` if you take its `.buffer`.
   * Throws {@link NonceOverflowError}.
   */
  seal(data: Uint8Array): Uint8Array {
    return this.sealRange(data, 0, data.length)
  }

  /**
   * Seals the region `data[start, end)` of a larger buffer (e.g. the part of a batch buffer the
   * scheduler just filled) without copying it first. Throws {@link NonceOverflowError};
   * `RangeError` for a bad region.
   */
  sealRange(data: Uint8Array, start: number, end: number): Uint8Array {
    if (!(Number.isInteger(start) && Number.isInteger(end) && start >= 0 && start <= end && end <= data.length)) {
      throw new RangeError(`bad range [${start}, ${end}) of ${data.length} bytes`)
    }
    const out = pooled(frameCount(end - start) * SEALED_FRAME_SIZE)
    const sealer = this.#sealer
    for (let i = start, o = 0; i < end; i += DATA_MAX_SIZE, o += SEALED_FRAME_SIZE) {
      sealer.sealFrameInto(out, o, data.subarray(i, Math.min(i + DATA_MAX_SIZE, end)))
    }
    return out
  }

  /**
   * Seals the concatenation of `buffers` into one new buffer, as {@link SecretWriter.seal} on
   * their concatenation would, without building it: only a chunk spanning two buffers is
   * gathered (at most 1024 bytes each). Throws {@link NonceOverflowError}.
   */
  sealAll(buffers: ReadonlyArray<Uint8Array>): Uint8Array {
    let total = 0
    for (const b of buffers) total += b.length
    const out = pooled(frameCount(total) * SEALED_FRAME_SIZE)
    const sealer = this.#sealer
    const gather = this.#gather
    let gathered = 0
    let o = 0
    for (const b of buffers) {
      let i = 0
      if (gathered > 0) {
        const take = Math.min(DATA_MAX_SIZE - gathered, b.length)
        gather.set(b.subarray(0, take), gathered)
        gathered += take
        i = take
        if (gathered < DATA_MAX_SIZE) continue
        sealer.sealFrameInto(out, o, gather)
        o += SEALED_FRAME_SIZE
        gathered = 0
      }
      for (; i + DATA_MAX_SIZE <= b.length; i += DATA_MAX_SIZE, o += SEALED_FRAME_SIZE) {
        sealer.sealFrameInto(out, o, b.subarray(i, i + DATA_MAX_SIZE))
      }
      if (i < b.length) {
        gather.set(b.subarray(i), 0)
        gathered = b.length - i
      }
    }
    if (gathered > 0) sealer.sealFrameInto(out, o, gather.subarray(0, gathered))
    return out
  }
}

/** The receiving half of the data phase. Not reentrant; one per connection. */
export class SecretReader {
  readonly #opener: FrameOpener
  /** One partial frame, at most. */
  readonly #partial = new Uint8Array(SEALED_FRAME_SIZE)
  #partialFilled = 0

  /** Opens with `opener` (this side's receive key and nonce). */
  constructor(opener: FrameOpener) {
    this.#opener = opener
  }

  /** Ciphertext bytes held for an incomplete frame: always below 1044. */
  get bufferedBytes(): number {
    return this.#partialFilled
  }

  /**
   * Takes the next ciphertext bytes off the wire, in chunks of any size, and returns the
   * plaintext they complete: all of it in one array (a view of a fresh buffer the caller owns),
   * or none. Bytes of an incomplete frame are kept (at most 1043) for the next call.
   *
   * Throws {@link FrameOpenError} or {@link NonceOverflowError}; the stream is then dead.
   */
  push(chunk: Uint8Array): Array<Uint8Array> {
    const out: Array<Uint8Array> = []
    this.pushTo(chunk, out)
    return out
  }

  /**
   * As {@link SecretReader.push}, appending the plaintext to `out` instead of a new array (lets a
   * read loop reuse one array). Returns the number appended (0 or 1).
   *
   * Every frame the chunk completes is decrypted into one buffer, their chunks back to back: a
   * 64 KiB read is one plaintext of ~63 KiB rather than 62 of 1 KiB, so the packets above see
   * fewer boundaries (a PacketMsg with 1 KiB of data never fits one frame) and no buffer is made
   * per frame. Each frame is decrypted right behind the chunk before it: its 4-byte length lands
   * on that chunk's last 4 bytes, which are saved first and put back once the length is read.
   */
  pushTo(chunk: Uint8Array, out: Array<Uint8Array>): number {
    const opener = this.#opener
    const end = chunk.length
    let pos = 0
    const completesPartial = this.#partialFilled > 0 && this.#partialFilled + end >= SEALED_FRAME_SIZE
    const firstWhole = this.#partialFilled > 0 ? Math.min(SEALED_FRAME_SIZE - this.#partialFilled, end) : 0
    const frames = (completesPartial ? 1 : 0) + Math.floor((end - firstWhole) / SEALED_FRAME_SIZE)
    if (frames === 0) {
      this.#partial.set(chunk, this.#partialFilled)
      this.#partialFilled += end
      return 0
    }
    const plain = pooled(DATA_LEN_SIZE + frames * DATA_MAX_SIZE)
    // The chunks so far are plain[4, 4 + filled); the next frame is decrypted at plain[filled].
    let filled = 0
    const open = (source: Uint8Array, offset: number) => {
      const s0 = plain[filled]!
      const s1 = plain[filled + 1]!
      const s2 = plain[filled + 2]!
      const s3 = plain[filled + 3]!
      const length = opener.openFrameInto(source, offset, plain, filled)
      plain[filled] = s0
      plain[filled + 1] = s1
      plain[filled + 2] = s2
      plain[filled + 3] = s3
      filled += length
    }
    if (this.#partialFilled > 0) {
      this.#partial.set(chunk.subarray(0, firstWhole), this.#partialFilled)
      this.#partialFilled = 0
      pos = firstWhole
      open(this.#partial, 0)
    }
    for (; pos + SEALED_FRAME_SIZE <= end; pos += SEALED_FRAME_SIZE) open(chunk, pos)
    if (pos < end) {
      this.#partial.set(chunk.subarray(pos, end), 0)
      this.#partialFilled = end - pos
    }
    if (filled === 0) return 0
    out.push(plain.subarray(DATA_LEN_SIZE, DATA_LEN_SIZE + filled))
    return 1
  }
}

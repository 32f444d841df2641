/**
 * Unsigned LEB128 varints ("uvarints"), the length prefix in front of every MConnection packet
 * (docs/PROTOCOL.md#packet-size-limit) and inside protobuf. Go's `binary.ReadUvarint` rules apply: at most 10 bytes, and
 * non-minimal encodings (`80 00` for 0) are accepted.
 *
 * The decoder is incremental, so a length prefix split across TCP (or SecretConnection) chunks
 * needs no buffering, and it checks the value against a maximum *while* decoding: a hostile
 * prefix is refused before any allocation, as soon as its lower bits already exceed the limit.
 *
 * Errors: a prefix the peer got wrong throws {@link UvarintError} (`"overflow"`, `"too_large"`).
 * Encoding a value that is not a non-negative safe integer, or into a target without room,
 * throws `RangeError` (our bug).
 *
 * @since 0.1.0
 */

/** The longest uvarint accepted, as Go's `binary.MaxVarintLen64`. */
export const MAX_UVARINT_LENGTH = 10

/** Why a peer's uvarint was refused. */
export type UvarintErrorReason = "overflow" | "too_large"

/**
 * A uvarint longer than 10 bytes or beyond 64 bits (`"overflow"`), or above the caller's maximum
 * (`"too_large"`, detected as soon as the bits read so far exceed it).
 */
export class UvarintError extends Error {
  readonly _tag = "UvarintError" as const
  readonly reason: UvarintErrorReason
  constructor(reason: UvarintErrorReason, message: string) {
    super(message)
    this.name = "UvarintError"
    this.reason = reason
  }
}

/** Bytes the minimal encoding of `value` takes (1..8 for safe integers). `value` must be a non-negative safe integer. */
export const uvarintLength = (value: number): number => {
  if (value < 0x80) return 1
  if (value < 0x4000) return 2
  if (value < 0x200000) return 3
  if (value < 0x10000000) return 4
  let n = 4
  let v = Math.floor(value / 0x10000000)
  while (v > 0) {
    n++
    v = Math.floor(v / 0x80)
  }
  return n
}

/**
 * Writes the minimal uvarint of `value` at `target[offset]` and returns the offset just past it.
 * Throws `RangeError` if `value` is not a non-negative safe integer or does not fit in `target`.
 */
export const encodeUvarintInto = (target: Uint8Array, offset: number, value: number): number => {
  if (!(value >= 0 && Number.isSafeInteger(value))) throw new RangeError(`uvarint value must be a non-negative safe integer, got ${value}`)
  if (offset < 0 || offset + uvarintLength(value) > target.length) throw new RangeError("uvarint does not fit in target")
  // Below 2^31 the bit operators are exact and fastest.
  if (value < 0x80000000) {
    while (value >= 0x80) {
      target[offset++] = (value & 0x7f) | 0x80
      value >>>= 7
    }
    target[offset++] = value
    return offset
  }
  while (value >= 0x80) {
    target[offset++] = (value % 0x80) | 0x80
    value = Math.floor(value / 0x80)
  }
  target[offset++] = value
  return offset
}

/** The minimal uvarint of `value` as a new array. `RangeError` as {@link encodeUvarintInto}. */
export const encodeUvarint = (value: number): Uint8Array => {
  if (!(value >= 0 && Number.isSafeInteger(value))) throw new RangeError(`uvarint value must be a non-negative safe integer, got ${value}`)
  const out = new Uint8Array(uvarintLength(value))
  encodeUvarintInto(out, 0, value)
  return out
}

/**
 * An incremental uvarint decoder with an upper bound. Feed it bytes with {@link UvarintDecoder.decode}
 * as they arrive; a varint split across any number of chunks is carried over in a few numbers,
 * never in a buffer.
 *
 * Not reentrant; one per stream.
 */
export class UvarintDecoder {
  /** Largest value accepted; at most `Number.MAX_SAFE_INTEGER`. */
  readonly max: number
  /** The decoded value, valid after {@link UvarintDecoder.decode} returned `true`. */
  value = 0
  /** After every {@link UvarintDecoder.decode}: the offset just past the last byte it consumed. */
  next = 0
  #partial = 0
  #scale = 1
  #count = 0

  /** `max` is the largest value accepted. `RangeError` if it is not a non-negative safe integer. */
  constructor(max: number) {
    if (!(max >= 0 && Number.isSafeInteger(max))) throw new RangeError(`uvarint max must be a non-negative safe integer, got ${max}`)
    this.max = max
  }

  /** Whether part of a varint has been consumed and more bytes are needed. */
  get pending(): boolean {
    return this.#count > 0
  }

  /** Forgets a partly decoded varint. */
  reset(): void {
    this.#partial = 0
    this.#scale = 1
    this.#count = 0
  }

  /**
   * Consumes bytes of one uvarint from `source[offset, end)`, continuing a varint left incomplete
   * by the previous call. Returns `true` when it is complete (then {@link UvarintDecoder.value}
   * holds it and the decoder is ready for the next one) or `false` when it consumed everything
   * up to `end` and needs more bytes. Either way {@link UvarintDecoder.next} is the offset just
   * past the consumed bytes.
   *
   * Throws {@link UvarintError}: `"overflow"` for an 11th byte or a 10th byte above 1 (Go's
   * `binary.ReadUvarint`), `"too_large"` as soon as the value read so far exceeds `max`. After an
   * error the decoder is in an undefined state: the stream is broken.
   */
  decode(source: Uint8Array, offset: number, end: number): boolean {
    // Fast path: a fresh one-byte varint, the prefix of every packet under 128 bytes.
    if (this.#count === 0 && offset < end) {
      const b = source[offset]!
      if (b < 0x80) {
        if (b > this.max) throw new UvarintError("too_large", `uvarint ${b} exceeds the maximum ${this.max}`)
        this.value = b
        this.next = offset + 1
        return true
      }
    }
    let partial = this.#partial
    let scale = this.#scale
    let count = this.#count
    while (offset < end) {
      const b = source[offset++]!
      count++
      if (count === MAX_UVARINT_LENGTH && b > 1) throw new UvarintError("overflow", "uvarint overflows a 64-bit integer")
      partial += (b & 0x7f) * scale
      if (partial > this.max) throw new UvarintError("too_large", `uvarint exceeds the maximum ${this.max}`)
      if (b < 0x80) {
        this.value = partial
        this.next = offset
        this.#partial = 0
        this.#scale = 1
        this.#count = 0
        return true
      }
      if (count === MAX_UVARINT_LENGTH) throw new UvarintError("overflow", "uvarint is longer than 10 bytes")
      scale *= 0x80
    }
    this.#partial = partial
    this.#scale = scale
    this.#count = count
    this.next = offset
    return false
  }
}

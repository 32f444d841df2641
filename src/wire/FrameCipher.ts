/**
 * SecretConnection data frames (docs/PROTOCOL.md#sealed-frames): every frame is `LE32(chunkLen) ‖ chunk ‖ zero padding`
 * (1028 bytes) sealed with ChaCha20-Poly1305 under a per-direction key and counter nonce, giving
 * exactly 1044 bytes on the wire with no outer length.
 *
 * This is the per-frame hot path, so the cipher sits behind the small {@link FrameAead} interface:
 * {@link nodeCryptoAead} (node:crypto, always available) and the `sodium-native` one of
 * `SodiumAead.ts` (several times faster per frame; the transport uses it when it is installed) are
 * interchangeable without touching the framing, nonce or error logic. Both pass the same vectors
 * and tamper tests.
 *
 * Errors: a frame the peer got wrong (forged, corrupted, or claiming more than 1024 bytes) throws
 * {@link FrameOpenError}; exhausting the 2^64 nonce space throws {@link NonceOverflowError}. Both
 * are fatal for the connection. Misuse (a chunk over 1024 bytes, a frame that is not 1044 bytes, a
 * key that is not 32 bytes) throws `RangeError`.
 *
 * @since 0.1.0
 */
import { createCipheriv, createDecipheriv, createSecretKey, type KeyObject } from "node:crypto"

/** Bytes of the little-endian chunk length at the start of every plaintext frame. */
export const DATA_LEN_SIZE = 4

/** Largest chunk one frame carries. */
export const DATA_MAX_SIZE = 1024

/** Plaintext frame size: length prefix plus the padded chunk. */
export const TOTAL_FRAME_SIZE = DATA_LEN_SIZE + DATA_MAX_SIZE

/** Poly1305 tag size. */
export const AEAD_TAG_SIZE = 16

/** Size of a sealed frame on the wire: always 1044. */
export const SEALED_FRAME_SIZE = TOTAL_FRAME_SIZE + AEAD_TAG_SIZE

/** ChaCha20-Poly1305 key size. */
export const KEY_SIZE = 32

/** IETF ChaCha20-Poly1305 nonce size. */
export const NONCE_SIZE = 12

// ---------------------------------------------------------------------------------------------
// Errors

/** Why a received frame was refused. */
export type FrameOpenErrorReason = "authentication" | "chunk_length"

/** A received frame failed authentication, or decrypted to a chunk length above 1024. */
export class FrameOpenError extends Error {
  readonly _tag = "FrameOpenError" as const
  readonly reason: FrameOpenErrorReason
  constructor(reason: FrameOpenErrorReason, message: string) {
    super(message)
    this.name = "FrameOpenError"
    this.reason = reason
  }
}

/**
 * The nonce counter is at 2^64-1 and cannot advance. Go panics here; reusing a nonce would break
 * ChaCha20-Poly1305, so the connection must end. No frame is sealed or opened with that nonce.
 */
export class NonceOverflowError extends Error {
  readonly _tag = "NonceOverflowError" as const
  constructor() {
    super("can't increase nonce without overflow")
    this.name = "NonceOverflowError"
  }
}

// ---------------------------------------------------------------------------------------------
// Nonce

const U32_MAX = 0xffffffff

/**
 * A direction's 12-byte nonce: bytes 0..3 zero, bytes 4..11 a u64 little-endian frame counter
 * starting at 0. Kept as two u32 halves so incrementing needs no BigInt.
 */
export class Nonce {
  /** The current nonce bytes. Read-only for callers; passed to the AEAD as is. */
  readonly bytes: Uint8Array = new Uint8Array(NONCE_SIZE)
  readonly #view = new DataView(this.bytes.buffer)
  #lo = 0
  #hi = 0

  /** A nonce from its 12 bytes (e.g. a test vector's counter). Bytes 0..3 are kept as given. */
  static fromBytes(bytes: Uint8Array): Nonce {
    if (bytes.length !== NONCE_SIZE) throw new RangeError(`nonce must be ${NONCE_SIZE} bytes, got ${bytes.length}`)
    const n = new Nonce()
    n.bytes.set(bytes)
    n.#lo = n.#view.getUint32(4, true)
    n.#hi = n.#view.getUint32(8, true)
    return n
  }

  /** The counter as a bigint, for logs and tests. */
  get counter(): bigint {
    return (BigInt(this.#hi) << 32n) | BigInt(this.#lo)
  }

  /** Whether {@link Nonce.increment} would overflow: the counter is 2^64-1. */
  get exhausted(): boolean {
    return this.#lo === U32_MAX && this.#hi === U32_MAX
  }

  /** Advances the counter by one. Throws {@link NonceOverflowError} at 2^64-1, leaving it unchanged. */
  increment(): void {
    if (this.#lo !== U32_MAX) {
      this.#lo++
      this.#view.setUint32(4, this.#lo, true)
      return
    }
    if (this.#hi === U32_MAX) throw new NonceOverflowError()
    this.#lo = 0
    this.#hi++
    this.#view.setUint32(4, 0, true)
    this.#view.setUint32(8, this.#hi, true)
  }
}

// ---------------------------------------------------------------------------------------------
// Pluggable AEAD

/**
 * ChaCha20-Poly1305 (IETF, empty additional data) bound to one key, specialised to whole frames.
 * Implementations: {@link nodeCryptoAead}; later `sodium-native`. Both write straight into the
 * caller's buffer on seal, so batching many frames into one socket write costs no extra copy with
 * libsodium.
 */
export interface FrameAead {
  /** Short name for logs and benchmarks, e.g. `"node:crypto"`. */
  readonly name: string
  /** Seals a 1028-byte plaintext frame into `target[offset, offset + 1044)` as ciphertext ‖ tag. */
  sealInto(plaintext: Uint8Array, nonce: Uint8Array, target: Uint8Array, offset: number): void
  /** Opens a 1044-byte sealed frame; returns its 1028-byte plaintext (owned by the caller) or `undefined` if authentication fails. */
  open(sealed: Uint8Array, nonce: Uint8Array): Uint8Array | undefined
  /**
   * Opens a 1044-byte sealed frame into `target[offset, offset + 1028)`; false if authentication
   * fails (the target's bytes are then unspecified).
   */
  openInto(sealed: Uint8Array, nonce: Uint8Array, target: Uint8Array, offset: number): boolean
}

/** Makes a {@link FrameAead} for a 32-byte key. */
export type FrameAeadFactory = (key: Uint8Array) => FrameAead

/**
 * The node:crypto implementation. The key becomes a `KeyObject` once, here: passing raw key bytes
 * to every `createCipheriv` makes Node 24 throw and catch internally and cuts throughput ~5x.
 */
export const nodeCryptoAead: FrameAeadFactory = (key) => {
  if (key.length !== KEY_SIZE) throw new RangeError(`ChaCha20-Poly1305 key must be ${KEY_SIZE} bytes, got ${key.length}`)
  const keyObject: KeyObject = createSecretKey(key)
  const options = { authTagLength: AEAD_TAG_SIZE } as const
  const open = (sealed: Uint8Array, nonce: Uint8Array): Uint8Array | undefined => {
    const decipher = createDecipheriv("chacha20-poly1305", keyObject, nonce, options)
    decipher.setAuthTag(sealed.subarray(TOTAL_FRAME_SIZE, SEALED_FRAME_SIZE))
    const pt = decipher.update(sealed.subarray(0, TOTAL_FRAME_SIZE))
    try {
      decipher.final()
    } catch {
      return undefined
    }
    return pt
  }
  return {
    name: "node:crypto",
    sealInto(plaintext, nonce, target, offset) {
      const cipher = createCipheriv("chacha20-poly1305", keyObject, nonce, options)
      const ct = cipher.update(plaintext)
      const rest = cipher.final()
      target.set(ct, offset)
      if (rest.length > 0) target.set(rest, offset + ct.length)
      target.set(cipher.getAuthTag(), offset + TOTAL_FRAME_SIZE)
    },
    open,
    openInto(sealed, nonce, target, offset) {
      const pt = open(sealed, nonce)
      if (pt === undefined) return false
      target.set(pt, offset)
      return true
    }
  }
}

// ---------------------------------------------------------------------------------------------
// One direction each

/** Options shared by {@link FrameSealer} and {@link FrameOpener}. */
export interface FrameCipherOptions {
  /** The AEAD implementation; default {@link nodeCryptoAead}. The place to plug in `sodium-native`. */
  readonly aead?: FrameAeadFactory
  /** Starting nonce; default all zero, as the protocol requires. Other values are for tests (e.g. overflow). */
  readonly nonce?: Nonce
}

/**
 * `n` uninitialised bytes from Node's Buffer pool, as a plain `Uint8Array` view: callers get
 * standard `slice` (copy) semantics rather than Buffer's view-returning `slice`.
 */
const pooled = (n: number): Uint8Array => {
  const b = Buffer.allocUnsafe(n)
  return new Uint8Array(b.buffer, b.byteOffset, n)
}

/** Number of sealed frames `dataLength` bytes need (0 for empty data, as Go's Write loop). */
export const frameCount = (dataLength: number): number => Math.ceil(dataLength / DATA_MAX_SIZE)

/**
 * The sending half of a SecretConnection: seals chunks under the send key and its own nonce.
 * Not safe to share between concurrent writers (the nonce is state), which matches Go's send mutex.
 */
export class FrameSealer {
  /** This direction's nonce; advanced after every frame. */
  readonly nonce: Nonce
  readonly #aead: FrameAead
  /** Reused plaintext frame: sealing is synchronous, so one scratch buffer per direction suffices. */
  readonly #plaintext = new Uint8Array(TOTAL_FRAME_SIZE)
  readonly #plaintextView = new DataView(this.#plaintext.buffer)

  /** `key` is this side's send key from `deriveSecrets`. `RangeError` if it is not 32 bytes. */
  constructor(key: Uint8Array, options: FrameCipherOptions = {}) {
    this.#aead = (options.aead ?? nodeCryptoAead)(key)
    this.nonce = options.nonce ?? new Nonce()
  }

  /** Name of the AEAD implementation in use. */
  get implementation(): string {
    return this.#aead.name
  }

  /**
   * Seals one chunk (at most 1024 bytes) into `target[offset, offset + 1044)` and advances the
   * nonce. Throws {@link NonceOverflowError} before sealing if the nonce is exhausted.
   */
  sealFrameInto(target: Uint8Array, offset: number, chunk: Uint8Array): void {
    if (chunk.length > DATA_MAX_SIZE) throw new RangeError(`chunk must be at most ${DATA_MAX_SIZE} bytes, got ${chunk.length}`)
    if (offset < 0 || offset + SEALED_FRAME_SIZE > target.length) throw new RangeError("sealed frame does not fit in target")
    if (this.nonce.exhausted) throw new NonceOverflowError()
    const pt = this.#plaintext
    this.#plaintextView.setUint32(0, chunk.length, true)
    pt.set(chunk, DATA_LEN_SIZE)
    pt.fill(0, DATA_LEN_SIZE + chunk.length)
    this.#aead.sealInto(pt, this.nonce.bytes, target, offset)
    this.nonce.increment()
  }

  /**
   * Seals one chunk (at most 1024 bytes) into a new 1044-byte frame. The frame comes from Node's
   * Buffer pool (`allocUnsafe`, fully overwritten): a fresh 1 KiB `Uint8Array` gets its own
   * off-heap backing store, which measured ~1.5x slower per frame. Mind `byteOffset` if you
   * take its `.buffer`.
   */
  sealFrame(chunk: Uint8Array): Uint8Array {
    const out = pooled(SEALED_FRAME_SIZE)
    this.sealFrameInto(out, 0, chunk)
    return out
  }

  /**
   * Cuts `data` into 1024-byte chunks and seals them all into one buffer of
   * `frameCount(data.length) * 1044` bytes, ready for a single socket write (empty data gives an
   * empty buffer, as Go writes nothing). Every byte of the result is written, so it is allocated
   * uninitialised.
   */
  sealData(data: Uint8Array): Uint8Array {
    const out = pooled(frameCount(data.length) * SEALED_FRAME_SIZE)
    for (let i = 0, o = 0; i < data.length; i += DATA_MAX_SIZE, o += SEALED_FRAME_SIZE) {
      this.sealFrameInto(out, o, data.subarray(i, i + DATA_MAX_SIZE))
    }
    return out
  }
}

/**
 * The receiving half of a SecretConnection: opens frames under the receive key and its own nonce.
 */
export class FrameOpener {
  /** This direction's nonce; advanced after every frame. */
  readonly nonce: Nonce
  readonly #aead: FrameAead

  /** `key` is this side's receive key from `deriveSecrets`. `RangeError` if it is not 32 bytes. */
  constructor(key: Uint8Array, options: FrameCipherOptions = {}) {
    this.#aead = (options.aead ?? nodeCryptoAead)(key)
    this.nonce = options.nonce ?? new Nonce()
  }

  /** Name of the AEAD implementation in use. */
  get implementation(): string {
    return this.#aead.name
  }

  /**
   * Opens the 1044-byte frame at `source[offset, offset + 1044)`, advances the nonce and returns
   * the chunk (a view of a fresh buffer the caller owns). Lets a reader open frames in place in a
   * large receive buffer.
   *
   * Throws {@link FrameOpenError} (`"authentication"`, `"chunk_length"`) or
   * {@link NonceOverflowError}. On any error the nonce is not advanced; the connection must close.
   */
  openFrameAt(source: Uint8Array, offset: number): Uint8Array {
    if (offset < 0 || offset + SEALED_FRAME_SIZE > source.length) {
      throw new RangeError(`a sealed frame is ${SEALED_FRAME_SIZE} bytes; source too short`)
    }
    if (this.nonce.exhausted) throw new NonceOverflowError()
    const pt = this.#aead.open(source.subarray(offset, offset + SEALED_FRAME_SIZE), this.nonce.bytes)
    if (pt === undefined) throw new FrameOpenError("authentication", "failed to decrypt SecretConnection frame")
    const chunkLength = pt[0]! | (pt[1]! << 8) | (pt[2]! << 16) | (pt[3]! << 24)
    // Signed read: lengths >= 2^31 come out negative, and are just as invalid.
    if (chunkLength < 0 || chunkLength > DATA_MAX_SIZE) {
      throw new FrameOpenError("chunk_length", `chunkLength is greater than dataMaxSize (${chunkLength >>> 0})`)
    }
    this.nonce.increment()
    // A plain Uint8Array view (not the Buffer subclass), so `slice` on it copies as usual.
    return new Uint8Array(pt.buffer, pt.byteOffset + DATA_LEN_SIZE, chunkLength)
  }

  /**
   * Opens the 1044-byte frame at `source[offset, offset + 1044)` into
   * `target[targetOffset, targetOffset + 1028)` (the 4-byte length, then the chunk and its
   * padding), advances the nonce and returns the chunk's length: the chunk is at
   * `target[targetOffset + 4, targetOffset + 4 + length)`. Lets a reader decrypt many frames into
   * one buffer without a buffer per frame. Errors as {@link FrameOpener.openFrameAt}.
   */
  openFrameInto(source: Uint8Array, offset: number, target: Uint8Array, targetOffset: number): number {
    if (offset < 0 || offset + SEALED_FRAME_SIZE > source.length) {
      throw new RangeError(`a sealed frame is ${SEALED_FRAME_SIZE} bytes; source too short`)
    }
    if (targetOffset < 0 || targetOffset + TOTAL_FRAME_SIZE > target.length) {
      throw new RangeError(`a plaintext frame is ${TOTAL_FRAME_SIZE} bytes; target too short`)
    }
    if (this.nonce.exhausted) throw new NonceOverflowError()
    if (!this.#aead.openInto(source.subarray(offset, offset + SEALED_FRAME_SIZE), this.nonce.bytes, target, targetOffset)) {
      throw new FrameOpenError("authentication", "failed to decrypt SecretConnection frame")
    }
    const t = targetOffset
    const chunkLength = target[t]! | (target[t + 1]! << 8) | (target[t + 2]! << 16) | (target[t + 3]! << 24)
    if (chunkLength < 0 || chunkLength > DATA_MAX_SIZE) {
      throw new FrameOpenError("chunk_length", `chunkLength is greater than dataMaxSize (${chunkLength >>> 0})`)
    }
    this.nonce.increment()
    return chunkLength
  }

  /** Opens one 1044-byte frame. See {@link FrameOpener.openFrameAt}; `RangeError` if it is not 1044 bytes. */
  openFrame(frame: Uint8Array): Uint8Array {
    if (frame.length !== SEALED_FRAME_SIZE) {
      throw new RangeError(`a sealed frame is ${SEALED_FRAME_SIZE} bytes, got ${frame.length}`)
    }
    return this.openFrameAt(frame, 0)
  }
}

/**
 * STROBE-128 (protocol framework v1.0.2) reduced to the operations Merlin uses, as docs/PROTOCOL.md#merlin-transcript-and-challenge
 * describes them: meta-AD, AD, PRF, plus KEY (so the published STROBE test vectors, which key the
 * state first, can check us).
 *
 * Why our own: no audited JavaScript Merlin is published, and the SecretConnection challenge must
 * match CometBFT bit for bit. This mirrors the Rust `merlin` crate's internal `strobe.rs`, which is
 * the reference every Merlin implementation (Go's gtank/merlin, curve25519-voi) is tested against.
 * Transport operations (ENC, MAC, CLR, RATCHET) are deliberately absent: nothing in the wire
 * protocol uses them.
 *
 * Misuse (continuing an operation with `more` under different flags) throws a plain `Error`: it is
 * a programming mistake, never caused by peer input.
 *
 * @since 0.1.0
 */
import { keccakF1600, STATE_BYTES } from "./Keccak.ts"

/** The STROBE-128 rate R in bytes: 200 - 2·(128/8) - 2 = 166. */
export const RATE = 166

const FLAG_I = 1
const FLAG_A = 2
const FLAG_C = 4
const FLAG_M = 16
const FLAG_K = 32

const META_AD = FLAG_M | FLAG_A
const AD = FLAG_A
const PRF = FLAG_I | FLAG_A | FLAG_C
const KEY = FLAG_A | FLAG_C

/**
 * The state right after the fixed STROBE-128 prefix and its first permutation. It is the same for
 * every instance, so it is computed once and copied: this saves one keccak-f per transcript.
 */
const initialState: Uint8Array = (() => {
  const st = new Uint8Array(STATE_BYTES)
  st.set([1, RATE + 2, 1, 0, 1, 96], 0)
  st.set(new TextEncoder().encode("STROBEv1.0.2"), 6)
  keccakF1600(st)
  return st
})()

/**
 * A STROBE-128 duplex instance. Every method mutates it; use {@link Strobe128.clone} to fork.
 *
 * Array indices below stay in range by construction (`pos < RATE`, `RATE + 1 < 200`), which is
 * why the non-null assertions on typed-array reads are safe.
 */
export class Strobe128 {
  readonly #state: Uint8Array
  #pos: number
  #posBegin: number
  #curFlags: number

  private constructor(state: Uint8Array, pos: number, posBegin: number, curFlags: number) {
    this.#state = state
    this.#pos = pos
    this.#posBegin = posBegin
    this.#curFlags = curFlags
  }

  /**
   * Starts a STROBE-128 instance for a protocol: the fixed prefix, keccak-f, then
   * meta-AD(`protocolLabel`). Merlin passes `"Merlin v1.0"`; the STROBE vectors pass their custom
   * string.
   */
  static init(protocolLabel: Uint8Array): Strobe128 {
    const s = new Strobe128(initialState.slice(), 0, 0, 0)
    s.metaAd(protocolLabel)
    return s
  }

  /** An independent copy, e.g. to fork a transcript. */
  clone(): Strobe128 {
    return new Strobe128(this.#state.slice(), this.#pos, this.#posBegin, this.#curFlags)
  }

  /** A copy of the 200-byte duplex state, for comparing against test vectors. */
  snapshot(): Uint8Array {
    return this.#state.slice()
  }

  /**
   * Absorbs metadata (flags M|A). `more = true` continues the previous meta-AD, so Merlin can
   * absorb `label ‖ LE32(len)` as one operation without concatenating.
   */
  metaAd(data: Uint8Array, more = false): void {
    this.#beginOp(META_AD, more)
    this.#absorb(data)
  }

  /** Absorbs associated data (flag A). */
  ad(data: Uint8Array, more = false): void {
    this.#beginOp(AD, more)
    this.#absorb(data)
  }

  /** Overwrites the state with key material (flags A|C). */
  key(data: Uint8Array, more = false): void {
    this.#beginOp(KEY, more)
    this.#overwrite(data)
  }

  /** Squeezes `n` pseudo-random bytes (flags I|A|C). */
  prf(n: number, more = false): Uint8Array {
    const out = new Uint8Array(n)
    this.prfInto(out, more)
    return out
  }

  /** Like {@link Strobe128.prf} but fills `out`, for callers that reuse a buffer. */
  prfInto(out: Uint8Array, more = false): void {
    this.#beginOp(PRF, more)
    this.#squeeze(out)
  }

  #beginOp(flags: number, more: boolean): void {
    if (more) {
      if (this.#curFlags !== flags) {
        throw new Error(`STROBE: cannot continue operation with flags ${this.#curFlags} as ${flags}`)
      }
      return
    }
    const oldBegin = this.#posBegin
    this.#posBegin = this.#pos + 1
    this.#curFlags = flags
    this.#absorbByte(oldBegin)
    this.#absorbByte(flags)
    // C and K operations must start on a fresh block so their output depends on everything before.
    if ((flags & (FLAG_C | FLAG_K)) !== 0 && this.#pos !== 0) this.#runF()
  }

  #absorbByte(b: number): void {
    const st = this.#state
    st[this.#pos] = st[this.#pos]! ^ b
    if (++this.#pos === RATE) this.#runF()
  }

  #absorb(data: Uint8Array): void {
    const st = this.#state
    let pos = this.#pos
    for (let i = 0; i < data.length; i++) {
      st[pos] = st[pos]! ^ data[i]!
      if (++pos === RATE) {
        this.#pos = pos
        this.#runF()
        pos = 0
      }
    }
    this.#pos = pos
  }

  #overwrite(data: Uint8Array): void {
    const st = this.#state
    for (let i = 0; i < data.length; i++) {
      st[this.#pos] = data[i]!
      if (++this.#pos === RATE) this.#runF()
    }
  }

  #squeeze(out: Uint8Array): void {
    const st = this.#state
    for (let i = 0; i < out.length; i++) {
      out[i] = st[this.#pos]!
      st[this.#pos] = 0
      if (++this.#pos === RATE) this.#runF()
    }
  }

  #runF(): void {
    const st = this.#state
    st[this.#pos] = st[this.#pos]! ^ this.#posBegin
    st[this.#pos + 1] = st[this.#pos + 1]! ^ 0x04
    st[RATE + 1] = st[RATE + 1]! ^ 0x80
    keccakF1600(st)
    this.#pos = 0
    this.#posBegin = 0
  }
}

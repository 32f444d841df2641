/**
 * Merlin v1.0 transcripts over STROBE-128 (docs/PROTOCOL.md#merlin-transcript-and-challenge): the Fiat-Shamir hash CometBFT's
 * SecretConnection uses to derive the 32-byte challenge both peers sign.
 *
 * Only the operations the wire protocol needs are here (`appendMessage`, `challengeBytes`); they
 * match the Rust `merlin` crate, gtank/merlin and curve25519-voi byte for byte, checked against
 * `fixtures/merlin-vectors.json`. Labels given as strings are encoded as UTF-8 (all labels in the
 * protocol are ASCII).
 *
 * @example
 * const t = new Transcript("TENDERMINT_SECRET_CONNECTION_TRANSCRIPT_HASH")
 * t.appendMessage("EPHEMERAL_LOWER_PUBLIC_KEY", lo)
 * const challenge = t.challengeBytes("SECRET_CONNECTION_MAC", 32)
 *
 * @since 0.1.0
 */
import { Strobe128 } from "./Strobe.ts"

const encoder = new TextEncoder()
const MERLIN_PROTOCOL_LABEL = encoder.encode("Merlin v1.0")
const DOM_SEP = encoder.encode("dom-sep")

/**
 * A label: a string (encoded as UTF-8 on every use) or its bytes. Hot callers should pass
 * pre-encoded bytes: encoding the five SecretConnection labels per handshake halved the challenge
 * rate in measurements.
 */
export type Label = string | Uint8Array

const labelBytes = (label: Label): Uint8Array => (typeof label === "string" ? encoder.encode(label) : label)

/** LE32(n) — Merlin frames every message and challenge length this way; `n` must fit in u32. */
const le32 = (n: number): Uint8Array => {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`Merlin: length ${n} does not fit in u32`)
  return new Uint8Array([n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24])
}

/**
 * A Merlin transcript. Mutable: every call changes what later challenges depend on, which is the
 * point (a challenge commits to every message appended before it).
 */
export class Transcript {
  readonly #strobe: Strobe128

  /** Starts a transcript with a domain-separation label: STROBE init, then `append_message("dom-sep", label)`. */
  constructor(label: Label) {
    this.#strobe = Strobe128.init(MERLIN_PROTOCOL_LABEL)
    this.appendMessage(DOM_SEP, labelBytes(label))
  }

  /** Appends a labelled message: meta-AD(`label ‖ LE32(len)`), then AD(`message`). */
  appendMessage(label: Label, message: Uint8Array): void {
    this.#strobe.metaAd(labelBytes(label))
    this.#strobe.metaAd(le32(message.length), true)
    this.#strobe.ad(message)
  }

  /** Derives `n` challenge bytes bound to everything appended so far: meta-AD(`label ‖ LE32(n)`), then PRF(n). */
  challengeBytes(label: Label, n: number): Uint8Array {
    const lengthBytes = le32(n)
    this.#strobe.metaAd(labelBytes(label))
    this.#strobe.metaAd(lengthBytes, true)
    return this.#strobe.prf(n)
  }
}

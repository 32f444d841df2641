/**
 * The pure, synchronous pieces of CometBFT's SecretConnection handshake (docs/PROTOCOL.md#secretconnection-handshake): X25519
 * ephemeral keys and their 35-byte framing, key sorting, DH with low-order rejection, HKDF key
 * derivation, the Merlin challenge, Ed25519 signatures and the AuthSigMessage codec. The
 * transport owns the I/O and the ordering; keeping the byte-level rules here lets them be
 * checked against the reference vectors without sockets.
 *
 * Errors: every failure a *peer* can cause is **thrown** as one of the small classes below
 * ({@link EphemeralKeyError}, {@link KeyExchangeError}, {@link AuthSigError}), each with a `_tag`
 * and a `reason` literal, so the transport can wrap each call in `Effect.try` and map them to its
 * typed handshake errors. Misuse by our own code (a private key of the wrong length, say) throws
 * `RangeError` instead: it is a bug, not a handshake failure.
 *
 * @since 0.1.0
 */
import {
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  sign,
  verify,
  type KeyObject
} from "node:crypto"
import { createRequire } from "node:module"
import { create, fromBinary } from "@bufbuild/protobuf"
import { sizeDelimitedEncode, sizeDelimitedPeek } from "@bufbuild/protobuf/wire"
import { AuthSigMessageSchema } from "../proto/tendermint/p2p/conn_pb.ts"
import * as NodeKey from "../domain/NodeKey.ts"
import { Transcript } from "./Merlin.ts"

// ---------------------------------------------------------------------------------------------
// Errors

/** Why a peer's ephemeral-key message was refused. */
export type EphemeralKeyErrorReason = "encoding"

/** The peer's plaintext ephemeral-key message is not a BytesValue holding exactly 32 bytes. */
export class EphemeralKeyError extends Error {
  readonly _tag = "EphemeralKeyError" as const
  readonly reason: EphemeralKeyErrorReason
  constructor(reason: EphemeralKeyErrorReason, message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = "EphemeralKeyError"
    this.reason = reason
  }
}

/** Why the X25519 exchange was refused. */
export type KeyExchangeErrorReason = "low_order_point" | "zero_shared_secret"

/**
 * The peer's ephemeral key cannot give a secret: it is a known low-order point (tendermint-rs's
 * check) or the DH output is all zero (Go's check). Both are enforced (docs/PROTOCOL.md#key-sorting-and-diffie-hellman).
 */
export class KeyExchangeError extends Error {
  readonly _tag = "KeyExchangeError" as const
  readonly reason: KeyExchangeErrorReason
  constructor(reason: KeyExchangeErrorReason, message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = "KeyExchangeError"
    this.reason = reason
  }
}

/** Why a peer's AuthSigMessage was refused, in the order the checks run. */
export type AuthSigErrorReason = "encoding" | "missing_key" | "key_type" | "key_length" | "sig_length" | "signature"

/** The peer's AuthSigMessage is malformed, not Ed25519, or its signature does not verify. */
export class AuthSigError extends Error {
  readonly _tag = "AuthSigError" as const
  readonly reason: AuthSigErrorReason
  constructor(reason: AuthSigErrorReason, message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = "AuthSigError"
    this.reason = reason
  }
}

// ---------------------------------------------------------------------------------------------
// Raw keys through DER prefixes (docs/PROTOCOL.md#implementation-notes): node:crypto has no raw-key import for these curves.

const X25519_PKCS8_PREFIX = Buffer.from("302e020100300506032b656e04220420", "hex")
const X25519_SPKI_PREFIX = Buffer.from("302a300506032b656e032100", "hex")
const ED25519_PKCS8_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex")

const requireLength = (what: string, bytes: Uint8Array, length: number): void => {
  if (bytes.length !== length) throw new RangeError(`${what} must be ${length} bytes, got ${bytes.length}`)
}

const privateKeyObject = (prefix: Buffer, raw: Uint8Array): KeyObject =>
  createPrivateKey({ key: Buffer.concat([prefix, raw]), format: "der", type: "pkcs8" })

const publicKeyObject = (prefix: Buffer, raw: Uint8Array): KeyObject =>
  createPublicKey({ key: Buffer.concat([prefix, raw]), format: "der", type: "spki" })

/** The raw 32-byte key at the end of an SPKI DER export (both curves' SPKI is prefix ‖ key). */
const rawPublicKey = (key: KeyObject): Uint8Array =>
  new Uint8Array(key.export({ format: "der", type: "spki" }).subarray(-32))

// ---------------------------------------------------------------------------------------------
// Ephemeral keys (docs/PROTOCOL.md#ephemeral-key-exchange)

/** Size of an X25519 key, private or public. */
export const X25519_KEY_LENGTH = 32

/** The ephemeral-key message body: BytesValue `0a 20 ‖ pub[32]`. */
export const EPHEMERAL_KEY_BODY_LENGTH = 34

/** The ephemeral-key message as sent: uvarint length `0x22` then the 34-byte body. */
export const EPHEMERAL_KEY_MESSAGE_LENGTH = 35

/** A raw X25519 key pair. `secretKey` is the unclamped 32-byte scalar (X25519 clamps on use). */
export interface EphemeralKeyPair {
  readonly secretKey: Uint8Array
  readonly publicKey: Uint8Array
}

/**
 * X25519 and Ed25519 signing through `sodium-native` (libsodium) when it is installed: about 2x
 * node:crypto for a key pair plus a DH, because node:crypto has to build a `KeyObject` from DER for
 * every raw key (25-55 µs each). Same functions, same bytes: libsodium clamps the scalar like
 * OpenSSL and refuses an all-zero output (its status -1, mapped below to the same error as
 * OpenSSL's failure); Ed25519 signatures are deterministic. Verification stays on OpenSSL, whose
 * acceptance rules docs/PROTOCOL.md states (libsodium also refuses small-order keys and R).
 */
interface SodiumCurve {
  crypto_scalarmult_base(q: Uint8Array, n: Uint8Array): void
  crypto_scalarmult(q: Uint8Array, n: Uint8Array, p: Uint8Array): void
  crypto_sign_detached(sig: Uint8Array, m: Uint8Array, sk: Uint8Array): void
  randombytes_buf(buf: Uint8Array): void
}

let sodiumCurve: SodiumCurve | null | undefined

const loadSodiumCurve = (): SodiumCurve | null => {
  if (sodiumCurve === undefined) {
    try {
      sodiumCurve = createRequire(import.meta.url)("sodium-native") as SodiumCurve
    } catch {
      sodiumCurve = null
    }
  }
  return sodiumCurve
}

/**
 * The node:crypto private `KeyObject` of each secret made by {@link generateEphemeralKeyPair} on
 * the node:crypto path, so {@link computeSharedSecret} does not rebuild it from DER (55 µs).
 */
const ephemeralKeyObjects = new WeakMap<Uint8Array, KeyObject>()

/**
 * The X25519 key pair for a given 32-byte scalar. Deterministic, so tests can fix keys; the
 * handshake uses {@link generateEphemeralKeyPair}.
 */
export const ephemeralKeyPairFromSecret = (secretKey: Uint8Array): EphemeralKeyPair => {
  requireLength("X25519 secret key", secretKey, X25519_KEY_LENGTH)
  const sodium = loadSodiumCurve()
  if (sodium !== null) {
    const publicKey = new Uint8Array(X25519_KEY_LENGTH)
    sodium.crypto_scalarmult_base(publicKey, secretKey)
    return { secretKey: new Uint8Array(secretKey), publicKey }
  }
  const publicKey = rawPublicKey(createPublicKey(privateKeyObject(X25519_PKCS8_PREFIX, secretKey)))
  return { secretKey: new Uint8Array(secretKey), publicKey }
}

/**
 * A fresh ephemeral key pair, made like Go's `nacl/box.GenerateKey`: 32 random bytes as the
 * scalar, and pub = X25519(scalar, basepoint). One per connection, never reused.
 */
export const generateEphemeralKeyPair = (): EphemeralKeyPair => {
  const sodium = loadSodiumCurve()
  if (sodium !== null) {
    // libsodium's CSPRNG (getrandom): a third of the cost of node:crypto's randomBytes here.
    const secretKey = new Uint8Array(X25519_KEY_LENGTH)
    sodium.randombytes_buf(secretKey)
    const publicKey = new Uint8Array(X25519_KEY_LENGTH)
    sodium.crypto_scalarmult_base(publicKey, secretKey)
    return { secretKey, publicKey }
  }
  // node:crypto: let it draw the scalar, and read both halves back as JWK (a DER export costs ~20 µs).
  const { privateKey } = generateKeyPairSync("x25519")
  const jwk = privateKey.export({ format: "jwk" })
  const secretKey = new Uint8Array(Buffer.from(jwk.d!, "base64url"))
  ephemeralKeyObjects.set(secretKey, privateKey)
  return { secretKey, publicKey: new Uint8Array(Buffer.from(jwk.x!, "base64url")) }
}

/**
 * The 35 bytes to send: `22 0a 20 ‖ pub`, a length-delimited `google.protobuf.BytesValue`.
 * Hand-written because it is fixed and tendermint-rs compares it byte for byte.
 */
export const encodeEphemeralKey = (publicKey: Uint8Array): Uint8Array => {
  requireLength("X25519 public key", publicKey, X25519_KEY_LENGTH)
  const out = new Uint8Array(EPHEMERAL_KEY_MESSAGE_LENGTH)
  out[0] = EPHEMERAL_KEY_BODY_LENGTH
  out[1] = 0x0a
  out[2] = X25519_KEY_LENGTH
  out.set(publicKey, 3)
  return out
}

/**
 * The peer's ephemeral public key from the message body (the bytes after the uvarint length the
 * transport has read). Strict like tendermint-rs: exactly `0a 20 ‖ 32 bytes`. Go would zero-pad a
 * short value or truncate a long one, but no honest peer sends either, and a lenient decoder would
 * let a peer pick a degenerate key.
 *
 * Throws {@link EphemeralKeyError} (`"encoding"`).
 */
export const decodeEphemeralKeyBody = (body: Uint8Array): Uint8Array => {
  if (body.length !== EPHEMERAL_KEY_BODY_LENGTH || body[0] !== 0x0a || body[1] !== X25519_KEY_LENGTH) {
    throw new EphemeralKeyError(
      "encoding",
      `ephemeral key message must be BytesValue with a 32-byte value (0a 20 + 32 bytes), got ${body.length} bytes`
    )
  }
  return body.slice(2)
}

/**
 * Like {@link decodeEphemeralKeyBody} for the whole 35-byte message including its length prefix,
 * for callers that read the fixed size at once. Throws {@link EphemeralKeyError} (`"encoding"`).
 */
export const decodeEphemeralKey = (message: Uint8Array): Uint8Array => {
  if (message.length !== EPHEMERAL_KEY_MESSAGE_LENGTH || message[0] !== EPHEMERAL_KEY_BODY_LENGTH) {
    throw new EphemeralKeyError("encoding", `ephemeral key message must be 35 bytes starting 0x22, got ${message.length}`)
  }
  return decodeEphemeralKeyBody(message.subarray(1))
}

// ---------------------------------------------------------------------------------------------
// Sorting and DH (docs/PROTOCOL.md#key-sorting-and-diffie-hellman)

/** The two ephemeral public keys in byte order, and whether ours is the lower. */
export interface SortedKeys {
  readonly lo: Uint8Array
  readonly hi: Uint8Array
  readonly locIsLeast: boolean
}

/**
 * Go's `sort32` plus its `locIsLeast`: lexicographic byte order, the remote key taken as `lo` on a
 * tie (so equal keys give `locIsLeast = true`, as in Go). Decides who sends with which HKDF half.
 */
export const sort32 = (local: Uint8Array, remote: Uint8Array): SortedKeys => {
  const [lo, hi] = Buffer.compare(local, remote) < 0 ? [local, remote] : [remote, local]
  return { lo, hi, locIsLeast: Buffer.compare(local, lo) === 0 }
}

/**
 * The seven X25519 public keys of small order that tendermint-rs rejects before DH
 * (`is_low_order_point`); the same list is in `fixtures/tendermint-rs-vectors.json`.
 */
export const LOW_ORDER_POINTS: ReadonlyArray<Uint8Array> = [
  "0000000000000000000000000000000000000000000000000000000000000000",
  "0100000000000000000000000000000000000000000000000000000000000000",
  "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
  "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
  "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"
].map((h) => new Uint8Array(Buffer.from(h, "hex")))

/** Whether `publicKey` is one of {@link LOW_ORDER_POINTS}. Public keys are public: no constant time needed. */
export const isLowOrderPoint = (publicKey: Uint8Array): boolean =>
  LOW_ORDER_POINTS.some((p) => Buffer.compare(p, publicKey) === 0)

/**
 * `X25519(localSecret, remotePublic)`, refusing keys that would make the secret predictable:
 * the known low-order points first, then an all-zero output (OpenSSL itself fails the derivation
 * in that case, which is mapped to the same error).
 *
 * Throws {@link KeyExchangeError}; `RangeError` if either key is not 32 bytes.
 */
export const computeSharedSecret = (localSecret: Uint8Array, remotePublic: Uint8Array): Uint8Array => {
  requireLength("X25519 secret key", localSecret, X25519_KEY_LENGTH)
  requireLength("X25519 public key", remotePublic, X25519_KEY_LENGTH)
  if (isLowOrderPoint(remotePublic)) {
    throw new KeyExchangeError("low_order_point", "remote ephemeral key is a low-order point")
  }
  let dh: Uint8Array
  try {
    const sodium = loadSodiumCurve()
    if (sodium !== null) {
      dh = new Uint8Array(X25519_KEY_LENGTH)
      sodium.crypto_scalarmult(dh, localSecret, remotePublic)
    } else {
      dh = diffieHellman({
        privateKey: ephemeralKeyObjects.get(localSecret) ?? privateKeyObject(X25519_PKCS8_PREFIX, localSecret),
        publicKey: publicKeyObject(X25519_SPKI_PREFIX, remotePublic)
      })
    }
  } catch (cause) {
    throw new KeyExchangeError("zero_shared_secret", "X25519 derivation failed (all-zero shared secret)", { cause })
  }
  if (dh.every((b) => b === 0)) {
    throw new KeyExchangeError("zero_shared_secret", "X25519 shared secret is all zero")
  }
  return new Uint8Array(dh)
}

// ---------------------------------------------------------------------------------------------
// HKDF (docs/PROTOCOL.md#hkdf-key-derivation) and the Merlin challenge (docs/PROTOCOL.md#merlin-transcript-and-challenge)

/** HKDF info string shared with CometBFT. */
export const HKDF_INFO = "TENDERMINT_SECRET_CONNECTION_KEY_AND_CHALLENGE_GEN"

// Given as bytes: hkdfSync converting the info string on every call took 40% of its time.
const HKDF_INFO_BYTES = Buffer.from(HKDF_INFO)
const NO_SALT = Buffer.alloc(0)

/** The two ChaCha20-Poly1305 keys of a connection, plus the pre-v0.33 challenge (unused on the wire). */
export interface Secrets {
  readonly recvKey: Uint8Array
  readonly sendKey: Uint8Array
  /** okm[64:96]: the challenge before Merlin (v0.33). Kept because the golden vectors check it. */
  readonly legacyChallenge: Uint8Array
}

/**
 * HKDF-SHA256(IKM = dh, no salt, info = {@link HKDF_INFO}, 96 bytes). The peer with the lower
 * ephemeral key receives with okm[0:32] and sends with okm[32:64]; the other the reverse, so one
 * side's send key is the other's receive key.
 */
export const deriveSecrets = (dh: Uint8Array, locIsLeast: boolean): Secrets => {
  const okm = new Uint8Array(hkdfSync("sha256", dh, NO_SALT, HKDF_INFO_BYTES, 96))
  const first = okm.slice(0, 32)
  const second = okm.slice(32, 64)
  return locIsLeast
    ? { recvKey: first, sendKey: second, legacyChallenge: okm.slice(64, 96) }
    : { recvKey: second, sendKey: first, legacyChallenge: okm.slice(64, 96) }
}

// The transcript labels of docs/PROTOCOL.md#merlin-transcript-and-challenge, encoded once rather than on every handshake.
const labelEncoder = new TextEncoder()
const LABEL_TRANSCRIPT = labelEncoder.encode("TENDERMINT_SECRET_CONNECTION_TRANSCRIPT_HASH")
const LABEL_LOWER = labelEncoder.encode("EPHEMERAL_LOWER_PUBLIC_KEY")
const LABEL_UPPER = labelEncoder.encode("EPHEMERAL_UPPER_PUBLIC_KEY")
const LABEL_DH = labelEncoder.encode("DH_SECRET")
const LABEL_MAC = labelEncoder.encode("SECRET_CONNECTION_MAC")

/** Length of the challenge each side signs. */
export const CHALLENGE_LENGTH = 32

/**
 * The 32-byte challenge both peers sign: a Merlin transcript over the sorted ephemeral keys and
 * the DH secret. Binding the keys, not just the secret, is what stops a man in the middle from
 * relaying one peer's signature to the other.
 */
export const challenge = (lo: Uint8Array, hi: Uint8Array, dh: Uint8Array): Uint8Array => {
  const t = new Transcript(LABEL_TRANSCRIPT)
  t.appendMessage(LABEL_LOWER, lo)
  t.appendMessage(LABEL_UPPER, hi)
  t.appendMessage(LABEL_DH, dh)
  return t.challengeBytes(LABEL_MAC, CHALLENGE_LENGTH)
}

// ---------------------------------------------------------------------------------------------
// Ed25519 (docs/PROTOCOL.md#authsigmessage)

/** Size of a raw Ed25519 public key and of a private-key seed. */
export const ED25519_KEY_LENGTH = 32

/** Size of an Ed25519 signature. */
export const ED25519_SIGNATURE_LENGTH = 64

/**
 * The 32-byte seed of an Ed25519 private key given raw: a 32-byte seed, or the 64-byte
 * `seed ‖ pub` form Go and `node_key.json` use.
 */
const ed25519Seed = (privateKey: Uint8Array): Uint8Array => {
  if (privateKey.length === 64) return privateKey.subarray(0, 32)
  requireLength("Ed25519 private key", privateKey, ED25519_KEY_LENGTH)
  return privateKey
}

/** The raw 32-byte public key of an Ed25519 private key (32-byte seed or Go's 64-byte form). */
export const ed25519PublicKey = (privateKey: Uint8Array): Uint8Array =>
  rawPublicKey(createPublicKey(privateKeyObject(ED25519_PKCS8_PREFIX, ed25519Seed(privateKey))))

/**
 * Pure Ed25519 (no prehash) over `message` — in the handshake, the 32-byte challenge. Takes a
 * 32-byte seed or Go's 64-byte `seed ‖ pub`; returns the 64-byte signature.
 */
export const signEd25519 = (privateKey: Uint8Array, message: Uint8Array): Uint8Array =>
  new Uint8Array(sign(null, message, privateKeyObject(ED25519_PKCS8_PREFIX, ed25519Seed(privateKey))))

/** libsodium's form of each node key (seed ‖ public key), made once per key. */
const sodiumSecretKeys = new WeakMap<NodeKey.NodeKey, Uint8Array>()

/**
 * The node's signature over the handshake challenge: libsodium when installed (14 µs instead of
 * node:crypto's 30), else {@link NodeKey.sign}. Ed25519 signatures are deterministic (RFC 8032),
 * so both give the same 64 bytes.
 */
export const signChallenge = (key: NodeKey.NodeKey, challenge: Uint8Array): Uint8Array => {
  const sodium = loadSodiumCurve()
  if (sodium === null) return NodeKey.sign(key, challenge)
  let secretKey = sodiumSecretKeys.get(key)
  if (secretKey === undefined) {
    secretKey = new Uint8Array(64)
    secretKey.set(key.seed, 0)
    secretKey.set(key.publicKey, 32)
    sodiumSecretKeys.set(key, secretKey)
  }
  const signature = new Uint8Array(ED25519_SIGNATURE_LENGTH)
  sodium.crypto_sign_detached(signature, challenge, secretKey)
  return signature
}

/**
 * Whether `signature` is a valid Ed25519 signature of `message` by the raw 32-byte `publicKey`.
 * OpenSSL verifies per RFC 8032; CometBFT uses ZIP-215, which differs only on crafted edge cases,
 * never on honest signatures (docs/PROTOCOL.md#authsigmessage). Wrong lengths and invalid keys give `false`.
 */
export const verifyEd25519 = (publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean => {
  if (publicKey.length !== ED25519_KEY_LENGTH || signature.length !== ED25519_SIGNATURE_LENGTH) return false
  try {
    // NodeKey's cache of public key objects: a peer that reconnects skips the DER import (~27 µs).
    return verify(null, message, NodeKey.publicKeyObject(publicKey), signature)
  } catch {
    return false
  }
}

// ---------------------------------------------------------------------------------------------
// AuthSigMessage (docs/PROTOCOL.md#authsigmessage)

/** The length-delimited AuthSigMessage for an Ed25519 key: `66 0a 22 0a 20 <pub> 12 40 <sig>`. */
export const AUTH_SIG_MESSAGE_LENGTH = 103

/** A decoded, shape-checked AuthSigMessage: an Ed25519 key and a 64-byte signature, not yet verified. */
export interface AuthSig {
  readonly publicKey: Uint8Array
  readonly signature: Uint8Array
}

/**
 * The length-delimited AuthSigMessage to send through the SecretConnection (103 bytes for
 * Ed25519), encoded with the generated protobuf code so it matches gogoproto's output.
 * `RangeError` if the key or signature has the wrong length.
 */
export const encodeAuthSigMessage = (publicKey: Uint8Array, signature: Uint8Array): Uint8Array => {
  requireLength("Ed25519 public key", publicKey, ED25519_KEY_LENGTH)
  requireLength("Ed25519 signature", signature, ED25519_SIGNATURE_LENGTH)
  const message = create(AuthSigMessageSchema, {
    pubKey: { sum: { case: "ed25519", value: publicKey } },
    sig: signature
  })
  return sizeDelimitedEncode(AuthSigMessageSchema, message)
}

/**
 * Decodes an AuthSigMessage body (the bytes after its uvarint length, which the transport reads
 * and caps at 1 MiB) and checks its shape like Go: `pub_key` present, Ed25519, 32 bytes; `sig` 64
 * bytes. Does not verify the signature: see {@link verifyAuthSig}.
 *
 * Throws {@link AuthSigError}: `"encoding"`, `"missing_key"`, `"key_type"`, `"key_length"`,
 * `"sig_length"`.
 */
export const decodeAuthSigMessage = (body: Uint8Array): AuthSig => {
  let decoded
  try {
    decoded = fromBinary(AuthSigMessageSchema, body)
  } catch (cause) {
    throw new AuthSigError("encoding", `malformed AuthSigMessage: ${String(cause)}`, { cause })
  }
  const pubKey = decoded.pubKey
  if (pubKey === undefined) throw new AuthSigError("missing_key", "AuthSigMessage has no pub_key")
  if (pubKey.sum.case !== "ed25519") {
    throw new AuthSigError("key_type", `expected ed25519 pubkey, got ${pubKey.sum.case ?? "none"}`)
  }
  const publicKey = pubKey.sum.value
  if (publicKey.length !== ED25519_KEY_LENGTH) {
    throw new AuthSigError("key_length", `ed25519 pubkey must be 32 bytes, got ${publicKey.length}`)
  }
  if (decoded.sig.length !== ED25519_SIGNATURE_LENGTH) {
    throw new AuthSigError("sig_length", `signature must be 64 bytes, got ${decoded.sig.length}`)
  }
  return { publicKey, signature: decoded.sig }
}

/**
 * Like {@link decodeAuthSigMessage} for a complete length-delimited message (its uvarint length
 * must match the remaining bytes exactly). Throws {@link AuthSigError}.
 */
export const decodeAuthSigMessageDelimited = (bytes: Uint8Array): AuthSig => {
  const peek = sizeDelimitedPeek(bytes)
  if (peek.eof || peek.offset + peek.size !== bytes.length) {
    throw new AuthSigError("encoding", "AuthSigMessage length prefix does not match its size")
  }
  return decodeAuthSigMessage(bytes.subarray(peek.offset))
}

/**
 * Checks the peer signed our local challenge. Throws {@link AuthSigError} (`"signature"`) if not;
 * on success the peer's `publicKey` is its authenticated identity (its node ID derives from it).
 */
export const verifyAuthSig = (authSig: AuthSig, localChallenge: Uint8Array): void => {
  if (!verifyEd25519(authSig.publicKey, localChallenge, authSig.signature)) {
    throw new AuthSigError("signature", "challenge verification failed")
  }
}

/**
 * The SecretConnection handshake over a TCP byte stream (docs/PROTOCOL.md, SecretConnection
 * handshake): ephemeral X25519 keys in the clear (exactly 35 bytes each way, reading no further),
 * then the Merlin challenge, HKDF keys and the signed `AuthSigMessage` inside the first sealed
 * frame; then the NodeInfo exchange (docs/PROTOCOL.md, NodeInfo exchange). The pure pieces live in
 * `src/wire`; this file only moves bytes.
 *
 * The wire code throws its own error classes for bytes the peer got wrong; those become the
 * handshake's typed errors. Anything else it throws is a bug of ours and stays a defect.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import * as NodeInfo from "../../domain/NodeInfo.ts"
import * as NodeKey from "../../domain/NodeKey.ts"
import { ConnectionClosed, ConnectionError, HandshakeAuthFailed, HandshakeTimeout, InvalidPeerNodeInfo } from "../../services/Transport.ts"
import { FrameOpenError, FrameOpener, FrameSealer, NonceOverflowError, type FrameAeadFactory } from "../../wire/FrameCipher.ts"
import * as Crypto from "../../wire/SecretConnectionCrypto.ts"
import { SecretReader, SecretWriter } from "../../wire/SecretStream.ts"
import { UvarintDecoder, UvarintError, encodeUvarintInto, uvarintLength } from "../../wire/Uvarint.ts"
import type { ByteStream } from "./ByteStream.ts"

/** Largest AuthSigMessage read (Go's limit). */
const MAX_AUTH_SIG_SIZE = 1024 * 1024

/** What the wire code throws for the handshake's bytes when the peer got them wrong. */
const WIRE_ERRORS = [Crypto.EphemeralKeyError, Crypto.KeyExchangeError, Crypto.AuthSigError, FrameOpenError, NonceOverflowError, UvarintError] as const

type WireError = InstanceType<(typeof WIRE_ERRORS)[number]>

const isWireError = (u: unknown): u is WireError => WIRE_ERRORS.some((wireError) => u instanceof wireError)

/**
 * Runs `f`: a wire error it throws fails with `onWireError(error)`; anything else it throws is a
 * bug of ours and stays a defect.
 */
const tryWire = <A, E>(f: () => A, onWireError: (error: WireError) => E): Effect.Effect<A, E> =>
  Effect.suspend(() => {
    try {
      return Effect.succeed(f())
    } catch (e) {
      return isWireError(e) ? Effect.fail(onWireError(e)) : Effect.die(e)
    }
  })

/**
 * Decrypted bytes not yet consumed, and the way to get more: used for the length-delimited
 * messages of the handshake. What is left over after it starts the MConnection's stream.
 */
export class PlaintextInbox {
  readonly chunks: Array<Uint8Array> = []
  readonly #stream: ByteStream
  readonly #reader: SecretReader
  readonly #remote: string

  constructor(stream: ByteStream, reader: SecretReader, ciphertext: ReadonlyArray<Uint8Array>, remote: string) {
    this.#stream = stream
    this.#reader = reader
    this.#remote = remote
    for (const c of ciphertext) reader.pushTo(c, this.chunks)
  }

  /** Takes exactly `n` plaintext bytes, reading and decrypting more as needed. */
  take(n: number): Effect.Effect<Uint8Array, ConnectionClosed | ConnectionError> {
    // Synchronous when the bytes are already here (in the handshake, they usually are).
    if (this.#available() >= n) return Effect.succeed(this.#takeBuffered(n))
    const self = this
    return Effect.gen(function* () {
      while (self.#available() < n) yield* self.#readMore()
      return self.#takeBuffered(n)
    })
  }

  /** Reads one uvarint-length-delimited message of at most `max` bytes (the limit checked before reading the body). */
  readDelimited(max: number, what: string, remote: string): Effect.Effect<Uint8Array, ConnectionClosed | ConnectionError> {
    const self = this
    const decoder = new UvarintDecoder(max)
    const tooLarge = () => new ConnectionError({ remote, reason: "too_large", message: `${remote} sent a ${what} longer than ${max} bytes` })
    // Decodes the length from the bytes at hand; true once it is complete.
    const decodeBuffered = (): boolean => {
      const chunks = self.chunks
      while (chunks.length > 0) {
        const c = chunks[0]!
        let done: boolean
        try {
          done = decoder.decode(c, 0, c.length)
        } catch (e) {
          if (!(e instanceof UvarintError)) throw e
          throw tooLarge()
        }
        if (decoder.next === c.length) chunks.shift()
        else chunks[0] = c.subarray(decoder.next)
        if (done) return true
      }
      return false
    }
    return Effect.gen(function* () {
      while (true) {
        let done: boolean
        try {
          done = decodeBuffered()
        } catch (e) {
          if (e instanceof ConnectionError) return yield* e
          throw e
        }
        if (done) break
        yield* self.#readMore()
      }
      return yield* self.take(decoder.value)
    })
  }

  #available(): number {
    let total = 0
    for (const c of this.chunks) total += c.length
    return total
  }

  /** Reads one chunk and decrypts what it completes. */
  #readMore(): Effect.Effect<void, ConnectionClosed | ConnectionError> {
    const reader = this.#reader
    const chunks = this.chunks
    const remote = this.#remote
    return Effect.flatMap(this.#stream.read, (chunk) =>
      tryWire(
        () => void reader.pushTo(chunk, chunks),
        (e) => new ConnectionError({ remote, reason: "decrypt", message: `${remote}: ${e.message}` })
      ))
  }

  #takeBuffered(n: number): Uint8Array {
    const chunks = this.chunks
    const out = new Uint8Array(n)
    let filled = 0
    while (filled < n) {
      const c = chunks[0]!
      const take = Math.min(c.length, n - filled)
      out.set(c.subarray(0, take), filled)
      filled += take
      if (take === c.length) chunks.shift()
      else chunks[0] = c.subarray(take)
    }
    return out
  }
}

/** An established SecretConnection. */
export interface Secret {
  readonly remotePublicKey: Uint8Array
  readonly writer: SecretWriter
  readonly reader: SecretReader
  /** Decrypted bytes already read past the handshake. */
  readonly inbox: PlaintextInbox
  /** Our NodeInfo, when {@link handshake} already sent it with the AuthSigMessage: {@link exchangeNodeInfo} does not send it again. */
  readonly sentNodeInfo?: NodeInfo.NodeInfo | undefined
}

const readExactly = Effect.fnUntraced(function* (stream: ByteStream, n: number, leftover: Array<Uint8Array>) {
  const out = new Uint8Array(n)
  let filled = 0
  while (filled < n) {
    const chunk = leftover.length > 0 ? leftover.shift()! : yield* stream.read
    const take = Math.min(chunk.length, n - filled)
    out.set(chunk.subarray(0, take), filled)
    filled += take
    if (take < chunk.length) leftover.unshift(chunk.subarray(take))
  }
  return out
})

const delimited = (body: Uint8Array): Uint8Array => {
  const out = new Uint8Array(uvarintLength(body.length) + body.length)
  out.set(body, encodeUvarintInto(out, 0, body.length))
  return out
}

/**
 * Runs the SecretConnection handshake: both sides at once, no roles. The peer's ephemeral key (35
 * bytes) must arrive by `ephemeralKeyDeadline` (epoch ms, from `Clock`), or the handshake fails
 * with `HandshakeTimeout`: a silent or trickling peer is let go early.
 *
 * With `nodeInfo`, our NodeInfo is sealed right behind the AuthSigMessage (frame 1, as always) and
 * both go in one write: the same bytes in the same order, one write and one round trip fewer for
 * the NodeInfo exchange that follows ({@link exchangeNodeInfo} then only reads). The NodeInfo then
 * leaves before the peer's signature is checked; it is what we show any peer that completes a
 * handshake, and it is encrypted under this connection's keys either way.
 */
export const handshake = Effect.fnUntraced(function* (
  stream: ByteStream,
  key: NodeKey.NodeKey,
  remote: string,
  aead: FrameAeadFactory,
  ephemeralKeyDeadline = Number.POSITIVE_INFINITY,
  nodeInfo?: NodeInfo.NodeInfo
): Effect.fn.Return<Secret, HandshakeAuthFailed | HandshakeTimeout | ConnectionClosed | ConnectionError> {
  const fail = (message: string) => new HandshakeAuthFailed({ remote, message: `SecretConnection handshake with ${remote}: ${message}` })
  const eph = Crypto.generateEphemeralKeyPair()
  yield* stream.write(Crypto.encodeEphemeralKey(eph.publicKey))
  // The plaintext phase reads exactly 35 bytes: the first sealed frame may follow in the same chunk.
  // The length prefix is checked on its own first, so a wrong one (a 2 GiB claim, say) fails at
  // once instead of waiting for 34 more bytes that may never come.
  const leftover: Array<Uint8Array> = []
  const started = yield* Clock.currentTimeMillis
  const readKey = Effect.gen(function* () {
    const prefix = yield* readExactly(stream, 1, leftover)
    if (prefix[0] !== Crypto.EPHEMERAL_KEY_BODY_LENGTH) {
      return yield* fail(`bad ephemeral key: length prefix 0x${prefix[0]!.toString(16).padStart(2, "0")} is not 0x22 (34 bytes)`)
    }
    return yield* readExactly(stream, Crypto.EPHEMERAL_KEY_BODY_LENGTH, leftover)
  })
  const keyBody = yield* (Number.isFinite(ephemeralKeyDeadline)
    ? readKey.pipe(Effect.timeoutOrElse({
      duration: Math.max(0, ephemeralKeyDeadline - started),
      orElse: () => Effect.fail(new HandshakeTimeout({ remote, timeoutMillis: Math.max(0, ephemeralKeyDeadline - started), message: `${remote} did not send its ephemeral key in time (the first 35 bytes of the handshake)` }))
    }))
    : readKey)
  const remoteEph = yield* tryWire(() => Crypto.decodeEphemeralKeyBody(keyBody), (e) => fail(`bad ephemeral key: ${e.message}`))
  const { lo, hi, locIsLeast } = Crypto.sort32(eph.publicKey, remoteEph)
  const dh = yield* tryWire(() => Crypto.computeSharedSecret(eph.secretKey, remoteEph), (e) => fail(e.message))
  const secrets = Crypto.deriveSecrets(dh, locIsLeast)
  const challenge = Crypto.challenge(lo, hi, dh)
  const writer = new SecretWriter(new FrameSealer(secrets.sendKey, { aead }))
  const reader = new SecretReader(new FrameOpener(secrets.recvKey, { aead }))
  const signature = Crypto.signChallenge(key, challenge)
  // The AuthSigMessage is one sealed write of its own (frame 0 alone); the NodeInfo starts frame 1.
  const authSig = writer.seal(Crypto.encodeAuthSigMessage(key.publicKey, signature))
  if (nodeInfo === undefined) yield* stream.write(authSig)
  else {
    const info = writer.seal(delimited(NodeInfo.encode(nodeInfo)))
    const both = new Uint8Array(authSig.length + info.length)
    both.set(authSig, 0)
    both.set(info, authSig.length)
    yield* stream.write(both)
  }
  const inbox = yield* tryWire(
    () => new PlaintextInbox(stream, reader, leftover, remote),
    (e) => fail(`cannot decrypt the first frame: ${e.message}`)
  )
  const body = yield* inbox.readDelimited(MAX_AUTH_SIG_SIZE, "AuthSigMessage", remote).pipe(
    Effect.catchTag("ConnectionError", (e) => Effect.fail(fail(e.message)))
  )
  const peerAuthSig = yield* tryWire(() => Crypto.decodeAuthSigMessage(body), (e) => fail(e.message))
  yield* tryWire(() => Crypto.verifyAuthSig(peerAuthSig, challenge), (e) => fail(e.message))
  return { remotePublicKey: peerAuthSig.publicKey, writer, reader, inbox, sentNodeInfo: nodeInfo }
})

/**
 * Sends our NodeInfo and reads the peer's (at most 10240 bytes), concurrently. Does not send it
 * when {@link handshake} already did (`secret.sentNodeInfo`, which must then be `ours`).
 */
export const exchangeNodeInfo = Effect.fnUntraced(function* (
  stream: ByteStream,
  secret: Secret,
  ours: NodeInfo.NodeInfo,
  remote: string
): Effect.fn.Return<NodeInfo.NodeInfo, InvalidPeerNodeInfo | ConnectionClosed | ConnectionError> {
  if (secret.sentNodeInfo === undefined) yield* stream.write(secret.writer.seal(delimited(NodeInfo.encode(ours))))
  else if (secret.sentNodeInfo !== ours) return yield* Effect.die(new Error("exchangeNodeInfo: the handshake already sent another NodeInfo"))
  const body = yield* secret.inbox.readDelimited(NodeInfo.MAX_SIZE, "NodeInfo", remote).pipe(
    Effect.catchTag("ConnectionError", (e): Effect.Effect<never, ConnectionError | InvalidPeerNodeInfo> =>
      e.reason === "too_large" ? Effect.fail(new InvalidPeerNodeInfo({ remote, nodeId: "", reason: "size", message: e.message })) : Effect.fail(e))
  )
  const info = NodeInfo.decode(body)
  if (Result.isFailure(info)) return yield* new InvalidPeerNodeInfo({ remote, nodeId: "", reason: info.failure.reason, message: `${remote}: ${info.failure.message}` })
  return info.success
})

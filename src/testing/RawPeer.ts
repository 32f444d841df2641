/**
 * A hand-driven CometBFT peer for hostile tests: a `node:net` socket speaking the wire protocol
 * (SecretConnection, NodeInfo, MConnection packets) through the pure pieces of the wire codec, so a
 * test can do every step right and then misbehave, or misbehave earlier: send a bad key, a frame
 * claiming 2 GiB, packets on unknown channels, garbage after a good handshake.
 *
 * ```ts
 * const peer = await RawPeer.connect(port)
 * await peer.secretHandshake(key)                   // a correct SecretConnection
 * await peer.exchangeNodeInfo(info)                 // our NodeInfo out, theirs in
 * peer.sendPacketMsg(0x30, true, bytes)            // one MConnection packet
 * peer.sendPlain(Uint8Array.of(0))                  // any bytes: here an empty packet, refused
 * await peer.closed                                 // resolves when the node hangs up
 * ```
 *
 * Reads are exact (no over-read) and fail once the socket has ended. Writes may be cut into tiny
 * segments (`fragment`), to test reassembly.
 *
 * @since 0.1.0
 */
import * as Net from "node:net"
import * as NodeInfo from "../domain/NodeInfo.ts"
import * as NodeKey from "../domain/NodeKey.ts"
import { FrameOpener, FrameSealer, nodeCryptoAead, SEALED_FRAME_SIZE, TOTAL_FRAME_SIZE } from "../wire/FrameCipher.ts"
import { decodePacket, encodePacketMsg, encodePing, type Packet } from "../wire/PacketCodec.ts"
import * as Crypto from "../wire/SecretConnectionCrypto.ts"
import { SecretReader, SecretWriter } from "../wire/SecretStream.ts"
import { encodeUvarint, UvarintDecoder } from "../wire/Uvarint.ts"

/** Byte strings joined. */
export const concat = (...parts: ReadonlyArray<Uint8Array>): Uint8Array => new Uint8Array(Buffer.concat(parts))

/** A uvarint length prefix and the body: how the handshake and MConnection frame messages. */
export const delimited = (body: Uint8Array): Uint8Array => concat(encodeUvarint(body.length), body)

/** The keys and buffers of an established SecretConnection. */
export interface Secure {
  readonly writer: SecretWriter
  readonly reader: SecretReader
  readonly sealer: FrameSealer
  readonly sendKey: Uint8Array
  readonly plain: Array<Uint8Array>
}

/** A socket speaking the protocol by hand. */
export class RawPeer {

  readonly socket: Net.Socket
  /** Resolves when the socket has closed (our side hung up, or it was destroyed). */
  readonly closed: Promise<void>
  #chunks: Array<Buffer> = []
  #buffered = 0
  #ended = false
  #waiters: Array<() => void> = []
  #secure: Secure | undefined

  constructor(socket: Net.Socket) {
    this.socket = socket
    socket.setNoDelay(true)
    socket.on("error", () => {})
    socket.on("data", (c: Buffer) => {
      this.#chunks.push(c)
      this.#buffered += c.length
      this.#notify()
    })
    socket.on("end", () => {
      this.#ended = true
      this.#notify()
    })
    this.closed = new Promise((resolve) =>
      socket.once("close", () => {
        this.#ended = true
        this.#notify()
        resolve()
      }))
  }

  /** Connects to `127.0.0.1:port` (from `localAddress`, when given: any 127.x.y.z plays another host). */
  static connect(port: number, localAddress?: string): Promise<RawPeer> {
    return new Promise((resolve, reject) => {
      const s = Net.connect({ host: "127.0.0.1", port, ...(localAddress === undefined ? {} : { localAddress }) })
      s.once("error", reject)
      s.once("connect", () => {
        s.off("error", reject)
        resolve(new RawPeer(s))
      })
    })
  }

  #notify() {
    const ws = this.#waiters
    this.#waiters = []
    for (const w of ws) w()
  }

  get isClosed(): boolean {
    return this.#ended
  }

  /** When set, every write is cut into pieces of 1..`fragment` bytes, each its own TCP segment. */
  fragment = 0
  #pump: Promise<void> = Promise.resolve()

  write(bytes: Uint8Array): void {
    if (this.fragment === 0) {
      if (!this.socket.destroyed) this.socket.write(bytes)
      return
    }
    const copy = new Uint8Array(bytes)
    const max = this.fragment
    this.#pump = this.#pump.then(async () => {
      for (let i = 0; i < copy.length;) {
        const n = 1 + Math.floor(Math.random() * max)
        if (this.socket.destroyed) return
        this.socket.write(copy.subarray(i, i + n))
        i += n
        await new Promise((r) => setTimeout(r, 0))
      }
    })
  }

  destroy(): void {
    this.socket.destroy()
  }

  /** Exactly `n` bytes off the wire. */
  async read(n: number): Promise<Uint8Array> {
    while (this.#buffered < n) {
      if (this.#ended) throw new Error(`raw peer: socket ended with ${this.#buffered} of ${n} bytes`)
      await new Promise<void>((r) => this.#waiters.push(r))
    }
    const all = Buffer.concat(this.#chunks)
    this.#chunks = all.length > n ? [all.subarray(n)] : []
    this.#buffered = all.length - n
    return new Uint8Array(all.subarray(0, n))
  }

  get secure(): Secure {
    if (this.#secure === undefined) throw new Error("raw peer: no SecretConnection yet")
    return this.#secure
  }

  /**
   * The SecretConnection handshake, done right unless told otherwise: `authSig` gives the
   * plaintext to send in place of our AuthSigMessage (it may be anything, even a bare prefix).
   * Returns our challenge and, when `verify` is set, the peer's checked AuthSig.
   */
  async secretHandshake(
    key: NodeKey.NodeKey,
    options: { readonly authSig?: (challenge: Uint8Array) => Uint8Array; readonly verify?: boolean } = {}
  ): Promise<{ readonly challenge: Uint8Array; readonly theirs?: Crypto.AuthSig }> {
    const eph = Crypto.generateEphemeralKeyPair()
    this.write(Crypto.encodeEphemeralKey(eph.publicKey))
    const remoteEph = Crypto.decodeEphemeralKey(await this.read(Crypto.EPHEMERAL_KEY_MESSAGE_LENGTH))
    const { lo, hi, locIsLeast } = Crypto.sort32(eph.publicKey, remoteEph)
    const dh = Crypto.computeSharedSecret(eph.secretKey, remoteEph)
    const secrets = Crypto.deriveSecrets(dh, locIsLeast)
    const challenge = Crypto.challenge(lo, hi, dh)
    const sealer = new FrameSealer(secrets.sendKey)
    this.#secure = {
      writer: new SecretWriter(sealer),
      reader: new SecretReader(new FrameOpener(secrets.recvKey)),
      sealer,
      sendKey: secrets.sendKey,
      plain: []
    }
    const authSig = options.authSig?.(challenge) ?? Crypto.encodeAuthSigMessage(key.publicKey, NodeKey.sign(key, challenge))
    this.sendPlain(authSig)
    if (options.verify === false) return { challenge }
    const theirs = Crypto.decodeAuthSigMessage(await this.readDelimited())
    Crypto.verifyAuthSig(theirs, challenge)
    return { challenge, theirs }
  }

  /** Sends our NodeInfo (or raw bytes in its place) and reads the peer's. */
  async exchangeNodeInfo(ours: NodeInfo.NodeInfo | Uint8Array, read = true): Promise<NodeInfo.NodeInfo | undefined> {
    this.sendPlain(ours instanceof Uint8Array ? ours : delimited(NodeInfo.encode(ours)))
    if (!read) return undefined
    const decoded = NodeInfo.decode(await this.readDelimited())
    if (decoded._tag === "Failure") throw new Error(`raw peer: bad NodeInfo from our side: ${decoded.failure.message}`)
    return decoded.success
  }

  /** Seals and sends plaintext (any bytes: the stream has no boundaries). */
  sendPlain(bytes: Uint8Array): void {
    this.write(this.secure.writer.seal(bytes))
  }

  /** Seals and sends one MConnection `PacketMsg` (its channel any int32 the codec can write, 0..255). */
  sendPacketMsg(channelId: number, eof: boolean, data: Uint8Array): void {
    this.sendPlain(encodePacketMsg(channelId, eof, data))
  }

  /** Seals and sends a `PacketPing`. */
  sendPing(): void {
    this.sendPlain(encodePing())
  }

  /** Seals one frame whose length field says `claimed` (valid AEAD, bad framing). */
  sendFrameClaiming(claimed: number): void {
    const { sealer, sendKey } = this.secure
    const pt = new Uint8Array(TOTAL_FRAME_SIZE)
    new DataView(pt.buffer).setUint32(0, claimed, true)
    const out = new Uint8Array(SEALED_FRAME_SIZE)
    nodeCryptoAead(sendKey).sealInto(pt, sealer.nonce.bytes, out, 0)
    sealer.nonce.increment()
    this.write(out)
  }

  /** Exactly `n` plaintext bytes, opening frames as needed. */
  async readPlain(n: number): Promise<Uint8Array> {
    const { reader, plain } = this.secure
    const available = () => plain.reduce((s, c) => s + c.length, 0)
    while (available() < n) reader.pushTo(await this.read(SEALED_FRAME_SIZE), plain)
    const all = Buffer.concat(plain)
    plain.length = 0
    if (all.length > n) plain.push(new Uint8Array(all.subarray(n)))
    return new Uint8Array(all.subarray(0, n))
  }

  /** One uvarint-length-delimited plaintext message. */
  async readDelimited(max = 1 << 20): Promise<Uint8Array> {
    const decoder = new UvarintDecoder(max)
    while (!decoder.decode(await this.readPlain(1), 0, 1)) {
      // more prefix bytes
    }
    return this.readPlain(decoder.value)
  }

  /** One MConnection packet. */
  async readPacket(): Promise<Packet> {
    return decodePacket(await this.readDelimited())
  }

  /** A correct handshake as `key` presenting `info`: SecretConnection, then NodeInfo both ways; the node's NodeInfo. */
  async handshake(key: NodeKey.NodeKey, info: NodeInfo.NodeInfo): Promise<NodeInfo.NodeInfo> {
    await this.secretHandshake(key)
    const theirs = await this.exchangeNodeInfo(info)
    if (theirs === undefined) throw new Error("raw peer: no NodeInfo")
    return theirs
  }
}


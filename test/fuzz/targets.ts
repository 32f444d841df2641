/**
 * What the fuzzers run: every decoder that reads a peer's bytes and every parser of an operator's
 * input, each with valid seeds to mutate and its invariants. A target's `check` returns normally
 * when the input was handled as the contract says (decoded, or refused with the decoder's typed
 * error) and throws otherwise: any other exception, an output over a stated limit, or a decode
 * that does not survive an encode and a second decode unchanged.
 */
import { create, fromBinary, toBinary } from "@bufbuild/protobuf"
import { StringValueSchema } from "@bufbuild/protobuf/wkt"
import { isDeepStrictEqual } from "node:util"
import { Result } from "effect"
import * as Config from "../../src/cli/Config.ts"
import * as Ban from "../../src/domain/Ban.ts"
import * as NodeAddress from "../../src/domain/NodeAddress.ts"
import * as NodeId from "../../src/domain/NodeId.ts"
import * as NodeInfo from "../../src/domain/NodeInfo.ts"
import * as NodeKey from "../../src/domain/NodeKey.ts"
import * as PeerRecord from "../../src/domain/PeerRecord.ts"
import * as Codec from "../../src/wire/MessageCodec.ts"
import { addrsMessage, fromNetAddress, netAddress, requestMessage } from "../../src/domain/PexWire.ts"
import { MessageSchema } from "../../src/proto/tendermint/p2p/pex_pb.ts"
import { FrameOpener, FrameOpenError, FrameSealer, nodeCryptoAead, DATA_MAX_SIZE, SEALED_FRAME_SIZE, TOTAL_FRAME_SIZE } from "../../src/wire/FrameCipher.ts"
import { decodePacket, encodePacketMsg, encodePing, encodePong, maxPacketMsgSize, PacketError, type Packet } from "../../src/wire/PacketCodec.ts"
import { PacketReader } from "../../src/wire/PacketReader.ts"
import { Reassembler, ReassemblyError } from "../../src/wire/Reassembler.ts"
import * as Crypto from "../../src/wire/SecretConnectionCrypto.ts"
import { SecretReader } from "../../src/wire/SecretStream.ts"
import { encodeUvarint, UvarintDecoder, UvarintError } from "../../src/wire/Uvarint.ts"

/** An input the target handled against its contract. */
export class Violation extends Error {}

/** A fuzz target. */
export interface Target {
  readonly name: string
  /** Valid inputs to mutate (text targets: UTF-8). */
  readonly seeds: () => ReadonlyArray<Uint8Array>
  /** Longest input generated. */
  readonly maxLength: number
  /** Runs the input; throws when an invariant breaks. */
  readonly check: (input: Uint8Array) => void
}

const fail = (message: string): never => {
  throw new Violation(message)
}
const same = (a: unknown, b: unknown, what: string) => {
  if (!isDeepStrictEqual(a, b)) fail(`${what}: not stable through an encode and a decode`)
}
/** Runs `f`, letting only errors of the given classes through as "refused". */
const refusing = <A>(f: () => A, ...allowed: ReadonlyArray<new (...args: Array<never>) => Error>): A | undefined => {
  try {
    return f()
  } catch (e) {
    if (allowed.some((c) => e instanceof c)) return undefined
    throw e
  }
}
const utf8 = (b: Uint8Array) => new TextDecoder().decode(b)
const bytesOf = (s: string) => new TextEncoder().encode(s)
const id = (n: number) => n.toString(16).padStart(40, "0")
const KEY = NodeKey.fromSeed(new Uint8Array(32).fill(7))

const MAX_PACKET = maxPacketMsgSize(1024)

/** The body of an encoded packet: without its uvarint length prefix. */
const body = (encoded: Uint8Array) => {
  const d = new UvarintDecoder(1 << 20)
  d.decode(encoded, 0, encoded.length)
  return encoded.subarray(encoded.length - d.value)
}

const samePacket = (p: Packet) => {
  if (p._tag !== "Msg") return
  if (p.data.length > MAX_PACKET) fail(`a packet of ${p.data.length} bytes passed the ${MAX_PACKET}-byte limit`)
  if (p.channelId < 0 || p.channelId > 255) {
    // Any int32 decodes; the reassembler must refuse a channel no one can register.
    if (refusing(() => new Reassembler([{ id: 0, recvMessageCapacity: 10 }]).onMsg(p.channelId, true, p.data), ReassemblyError) !== undefined) {
      fail(`channel ${p.channelId} passed the reassembler`)
    }
    return
  }
  same(decodePacket(body(encodePacketMsg(p.channelId, p.eof, p.data))), { ...p, data: new Uint8Array(p.data) }, "PacketMsg")
}

const nodeInfoSeed = () =>
  NodeInfo.make({ nodeId: KEY.nodeId, listenAddr: "tcp://10.0.0.1:26656", network: "chain-1", moniker: "seed", channels: [0x00, 0x20, 0x30], version: "0.38.0", other: { txIndex: "on", rpcAddress: "tcp://0.0.0.0:26657" } })

export const targets: ReadonlyArray<Target> = [
  {
    name: "uvarint",
    maxLength: 16,
    seeds: () => [encodeUvarint(0), encodeUvarint(127), encodeUvarint(1034), encodeUvarint(1035), encodeUvarint(2 ** 31), encodeUvarint(Number.MAX_SAFE_INTEGER)],
    check: (input) => {
      const d = new UvarintDecoder(1034)
      let done = false
      for (let i = 0; i < input.length && !done; i++) {
        const ok = refusing(() => d.decode(input, i, i + 1), UvarintError)
        if (ok === undefined) return
        done = ok
      }
      if (!done) return
      if (d.value > 1034) fail(`decoded ${d.value} over the maximum 1034`)
      const again = new UvarintDecoder(1034)
      const bytes = encodeUvarint(d.value)
      if (!again.decode(bytes, 0, bytes.length) || again.value !== d.value) fail("uvarint round trip")
    }
  },
  {
    name: "packet-codec",
    maxLength: 1100,
    seeds: () => [encodePing(), encodePong(), encodePacketMsg(0x30, true, bytesOf("hello")), encodePacketMsg(0, false, new Uint8Array(1024).fill(7)), encodePacketMsg(255, true, new Uint8Array(0))].map((p) => p.subarray(1)),
    check: (input) => {
      const p = refusing(() => decodePacket(input), PacketError)
      if (p !== undefined) samePacket(p)
    }
  },
  {
    name: "packet-reader",
    maxLength: 4096,
    seeds: () => [
      Uint8Array.from([...encodePing(), ...encodePacketMsg(0x30, true, bytesOf("hi")), ...encodePong()]),
      Uint8Array.from([...encodePacketMsg(0, false, new Uint8Array(1024).fill(1)), ...encodePacketMsg(0, true, new Uint8Array(3))])
    ],
    check: (input) => {
      const reader = new PacketReader({ maxPacketSize: MAX_PACKET })
      // The stream arrives in chunks cut where the input's bytes say.
      for (let at = 0; at < input.length;) {
        const size = 1 + ((input[at] ?? 0) % 97)
        const chunk = input.slice(at, at + size)
        at += size
        const done = refusing(() => {
          reader.push(chunk)
          for (const p of reader) samePacket(p)
          return true
        }, PacketError)
        if (done === undefined) return
        if (reader.bufferedBytes > MAX_PACKET) fail(`the reader holds ${reader.bufferedBytes} bytes, over ${MAX_PACKET}`)
      }
    }
  },
  {
    name: "reassembler",
    maxLength: 8192,
    seeds: () => [Uint8Array.from([0, 1, 5, 1, 2, 3, 4, 5, 1, 0, 200, ...new Uint8Array(200), 1, 1, 10, ...new Uint8Array(10)])],
    check: (input) => {
      // Records: channel (0..2), eof flag, length (one byte), data.
      const capacities = [100, 5000]
      const r = new Reassembler(capacities.map((recvMessageCapacity, id) => ({ id, recvMessageCapacity })))
      for (let at = 0; at + 3 <= input.length;) {
        const channel = input[at]! % 3
        const eof = (input[at + 1]! & 1) === 1
        const length = input[at + 2]!
        const data = input.slice(at + 3, at + 3 + length)
        at += 3 + length
        const message = refusing(() => r.onMsg(channel, eof, data), ReassemblyError)
        if (message === undefined) {
          if (channel === 2) continue // the unknown channel: refused, as it should be
          if (!eof) continue
          return // too large: refused; the connection is dead
        }
        if (message.length > capacities[channel]!) fail(`a ${message.length}-byte message on channel ${channel} passed its ${capacities[channel]}-byte capacity`)
      }
    }
  },
  {
    name: "ephemeral-key",
    maxLength: 64,
    seeds: () => [Crypto.encodeEphemeralKey(Crypto.generateEphemeralKeyPair().publicKey).subarray(1)],
    check: (input) => {
      const key = refusing(() => Crypto.decodeEphemeralKeyBody(input), Crypto.EphemeralKeyError)
      if (key === undefined) return
      if (key.length !== 32) fail(`an ephemeral key of ${key.length} bytes`)
      same(Crypto.decodeEphemeralKeyBody(Crypto.encodeEphemeralKey(key).subarray(1)), key, "ephemeral key")
    }
  },
  {
    name: "auth-sig",
    maxLength: 256,
    seeds: () => [body(Crypto.encodeAuthSigMessage(KEY.publicKey, NodeKey.sign(KEY, new Uint8Array(32))))],
    check: (input) => {
      const sig = refusing(() => Crypto.decodeAuthSigMessage(input), Crypto.AuthSigError)
      if (sig === undefined) return
      if (sig.publicKey.length !== 32 || sig.signature.length !== 64) fail("an AuthSig with wrong key or signature lengths")
      same(Crypto.decodeAuthSigMessageDelimited(Crypto.encodeAuthSigMessage(sig.publicKey, sig.signature)), sig, "AuthSig")
      refusing(() => Crypto.verifyAuthSig(sig, new Uint8Array(32)), Crypto.AuthSigError)
    }
  },
  {
    name: "secret-frames",
    maxLength: 3 * TOTAL_FRAME_SIZE,
    seeds: () => {
      const frame = new Uint8Array(TOTAL_FRAME_SIZE)
      new DataView(frame.buffer).setUint32(0, 5, true)
      frame.set(bytesOf("hello"), 4)
      return [frame]
    },
    check: (input) => {
      // Plaintext frames as the input says, sealed with a fixed key (so the length field, not only
      // the tag, is fuzzed); an odd first byte also corrupts the ciphertext.
      const key = new Uint8Array(32).fill(9)
      const aead = nodeCryptoAead(key)
      const nonce = new FrameSealer(key, { aead: nodeCryptoAead }).nonce
      const frames: Array<Uint8Array> = []
      for (let at = 0; at < input.length; at += TOTAL_FRAME_SIZE) {
        const pt = new Uint8Array(TOTAL_FRAME_SIZE)
        pt.set(input.subarray(at, at + TOTAL_FRAME_SIZE))
        const out = new Uint8Array(SEALED_FRAME_SIZE)
        aead.sealInto(pt, nonce.bytes, out, 0)
        nonce.increment()
        frames.push(out)
      }
      const sealed = Uint8Array.from(frames.flatMap((f) => [...f]))
      if (sealed.length > 0 && (input[0]! & 1) === 1) sealed[input[0]! % sealed.length]! ^= 0x40
      const reader = new SecretReader(new FrameOpener(key, { aead: nodeCryptoAead }))
      const out: Array<Uint8Array> = []
      for (let at = 0; at < sealed.length;) {
        const size = 1 + ((input[at % Math.max(1, input.length)] ?? 0) * 13) % 700
        const ok = refusing(() => reader.pushTo(sealed.slice(at, at + size), out), FrameOpenError)
        if (ok === undefined) return
        at += size
      }
      for (const chunk of out) if (chunk.length > DATA_MAX_SIZE) fail(`a frame opened to ${chunk.length} bytes, over ${DATA_MAX_SIZE}`)
    }
  },
  {
    name: "node-info",
    maxLength: 2048,
    seeds: () => [NodeInfo.encode(nodeInfoSeed()), NodeInfo.encode(NodeInfo.make({ nodeId: KEY.nodeId, listenAddr: "", network: "", moniker: "" }))],
    check: (input) => {
      const info = NodeInfo.decode(input)
      if (Result.isFailure(info)) return
      const valid = NodeInfo.validate(info.success)
      if (Result.isFailure(valid)) return
      same(Result.getOrThrow(NodeInfo.decode(NodeInfo.encode(valid.success))), valid.success, "NodeInfo")
      NodeInfo.compatibleWith(nodeInfoSeed(), valid.success)
    }
  },
  {
    name: "pex-message",
    maxLength: 4096,
    seeds: () => [
      toBinary(MessageSchema, requestMessage()),
      toBinary(MessageSchema, addrsMessage([netAddress(id(1), "10.0.0.1", 26656), netAddress(id(2), "::1", 1), netAddress(id(3), "0.0.0.0", 0)]))
    ],
    check: (input) => {
      // The router decodes each message of a channel with fromBinary and catches its errors
      // (the message is dropped); the PEX reactor then reads every address with fromNetAddress.
      let message
      try {
        message = fromBinary(MessageSchema, input)
      } catch (e) {
        if (e instanceof Error) return
        throw e
      }
      same(fromBinary(MessageSchema, Codec.encode(MessageSchema, message)), message, "PEX message")
      if (message.sum.case === "pexAddrs") {
        for (const a of message.sum.value.addrs) {
          const parsed = fromNetAddress(a, true)
          if (parsed._tag === "Address") same(Result.getOrThrow(NodeAddress.parseResult(NodeAddress.format(parsed.address))), parsed.address, "PEX address")
        }
      }
    }
  },
  {
    name: "router-message",
    maxLength: 512,
    seeds: () => [toBinary(StringValueSchema, create(StringValueSchema, { value: "hello" }))],
    check: (input) => {
      let message
      try {
        message = fromBinary(StringValueSchema, input)
      } catch (e) {
        if (e instanceof Error) return
        throw e
      }
      same(fromBinary(StringValueSchema, Codec.encode(StringValueSchema, message)), message, "StringValue")
    }
  },
  {
    name: "node-address",
    maxLength: 200,
    seeds: () => [`${id(1)}@127.0.0.1:26656`, `mconn://${id(2)}@[2001:db8::1]:26656`, `memory:${id(3)}`, `tcp://${id(4)}@seed.example.com:26656`].map(bytesOf),
    check: (input) => {
      const a = NodeAddress.parseResult(utf8(input))
      if (Result.isFailure(a)) return
      same(Result.getOrThrow(NodeAddress.parseResult(NodeAddress.format(a.success))), a.success, "NodeAddress")
    }
  },
  {
    name: "config-toml",
    maxLength: 4096,
    seeds: () => [bytesOf(Config.toToml(Config.defaults)), bytesOf(`moniker = "x"\n[p2p]\nladdr = "tcp://0.0.0.0:26656"\nseeds = "${id(1)}@10.0.0.1:26656"\nupnp = false\n[rpc]\nladdr = "tcp://127.0.0.1:26657"\n`)],
    check: (input) => {
      const file = Config.fromToml("fuzz.toml", utf8(input))
      if (Result.isFailure(file)) return
      const config = Config.resolve(file.success.values)
      const again = Config.fromToml("fuzz.toml", Config.toToml(config))
      if (Result.isFailure(again)) fail(`a configuration that read fine was written back unreadable: ${again.failure.message}`)
      else same(Config.resolve(again.success.values), config, "config.toml")
    }
  },
  {
    name: "node-key-json",
    maxLength: 512,
    seeds: () => [bytesOf(NodeKey.toJson(KEY))],
    check: (input) => {
      const key = NodeKey.fromJson(utf8(input), "fuzz.json")
      if (Result.isFailure(key)) return
      const again = Result.getOrThrow(NodeKey.fromJson(NodeKey.toJson(key.success), "fuzz.json"))
      if (again.nodeId !== key.success.nodeId || again.nodeId !== NodeId.fromPublicKey(again.publicKey)) fail("node key round trip")
    }
  },
  {
    name: "peer-store-row",
    maxLength: 1024,
    seeds: () => [
      PeerRecord.encode(PeerRecord.empty(NodeId.unsafeDecode(id(5)), {
        addresses: [{ ...PeerRecord.addressInfo(NodeAddress.unsafeParse(`${id(5)}@10.0.0.5:26656`)), dialFailures: 2, lastDialFailure: 1_700_000_000_000 }],
        lastConnected: 1_700_000_000_001,
        persistent: true,
        mutableScore: -3,
        source: NodeId.unsafeDecode(id(6))
      })),
      Ban.encode({ subject: Result.getOrThrow(Ban.parseSubject("10.0.0.0/24")), since: 1, until: 2, reason: "x" })
    ],
    check: (input) => {
      const record = PeerRecord.decode(input)
      if (Result.isSuccess(record)) same(Result.getOrThrow(PeerRecord.decode(PeerRecord.encode(record.success))), record.success, "PeerInfo row")
      const ban = Ban.decode(input)
      if (Result.isSuccess(ban)) same(Result.getOrThrow(Ban.decode(Ban.encode(ban.success))), ban.success, "Ban row")
    }
  }
]

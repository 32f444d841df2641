/**
 * A hand-written codec for MConnection packets (docs/PROTOCOL.md#packet-encoding), the hot path of every connection:
 * `tendermint.p2p.Packet { oneof sum { PacketPing packet_ping = 1; PacketPong packet_pong = 2;
 * PacketMsg packet_msg = 3 } }` with `PacketMsg { int32 channel_id = 1; bool eof = 2; bytes data = 3 }`,
 * each written with a uvarint length prefix.
 *
 * The encoder produces exactly the bytes of `@bufbuild/protobuf`'s generated `toBinary` (and of Go's
 * gogoproto): proto3 omits zero values, so channel 0 has no field 1, `eof=false` no field 2 and
 * empty data no field 3. It writes straight into a caller's buffer, so a sender packs a whole batch
 * of packets into one buffer with one copy of the payload. The decoder follows gogoproto's
 * `Unmarshal`: unknown fields are skipped (groups included), the last occurrence of a field wins,
 * a known field with the wrong wire type is an error, and a Packet with no oneof case set is an
 * "unknown packet type". `data` comes back as a view of the input, never a copy.
 *
 * Errors: bytes the peer got wrong throw {@link PacketError} (`"encoding"`,
 * `"unknown_packet_type"`; {@link PacketReader} adds `"too_large"`). Encoding a channel outside
 * 0..255, or into a target without room, throws `RangeError` (our bug).
 *
 * @since 0.1.0
 */
import { uvarintLength } from "./Uvarint.ts"

// ---------------------------------------------------------------------------------------------
// Errors

/** Why a peer's packet was refused. */
export type PacketErrorReason = "encoding" | "unknown_packet_type" | "too_large"

/**
 * A packet the peer got wrong: malformed protobuf (`"encoding"`), a Packet with none of
 * ping/pong/msg set (`"unknown_packet_type"`), or a length prefix above `maxPacketMsgSize` or
 * longer than a uvarint may be (`"too_large"`, from the packet reader). Fatal for the connection.
 */
export class PacketError extends Error {
  readonly _tag = "PacketError" as const
  readonly reason: PacketErrorReason
  constructor(reason: PacketErrorReason, message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = "PacketError"
    this.reason = reason
  }
}

// ---------------------------------------------------------------------------------------------
// Decoded packets

/** A `PacketPing`: the peer wants a pong. */
export interface PingPacket {
  readonly _tag: "Ping"
}

/** A `PacketPong`: the answer to our ping. */
export interface PongPacket {
  readonly _tag: "Pong"
}

/** A `PacketMsg`: one piece of a channel message; `eof` marks the last piece. */
export interface MsgPacket {
  readonly _tag: "Msg"
  /** As sent, an arbitrary int32. Only 0..255 and registered channels are valid; the reassembler checks. */
  readonly channelId: number
  readonly eof: boolean
  /** A view of the decoded bytes (not a copy); empty when the field is absent. */
  readonly data: Uint8Array
}

/** One decoded MConnection packet. */
export type Packet = PingPacket | PongPacket | MsgPacket

/** The one ping value {@link decodePacket} returns. */
export const PING: PingPacket = Object.freeze({ _tag: "Ping" })

/** The one pong value {@link decodePacket} returns. */
export const PONG: PongPacket = Object.freeze({ _tag: "Pong" })

// ---------------------------------------------------------------------------------------------
// Sizes

/** CometBFT's default `max_packet_msg_payload_size` (config.toml); its receive limit is derived from it. */
export const DEFAULT_MAX_PACKET_MSG_PAYLOAD_SIZE = 1024

/** Packet tags: field 1/2/3, wire type 2 (length-delimited). */
const TAG_PING = 0x0a
const TAG_PONG = 0x12
const TAG_MSG = 0x1a
/** PacketMsg tags. */
const TAG_CHANNEL = 0x08
const TAG_EOF = 0x10
const TAG_DATA = 0x1a

/** Wire length of a ping or pong, prefix included (`02 0a 00`, `02 12 00`). */
export const PING_PONG_WIRE_LENGTH = 3

const checkChannel = (channelId: number): void => {
  if (!(channelId >= 0 && channelId <= 255 && Number.isInteger(channelId))) {
    throw new RangeError(`channel id must be an integer in 0..255, got ${channelId}`)
  }
}

/** Size of the PacketMsg message itself (fields 1-3), for a channel in 0..255. */
const msgLength = (channelId: number, eof: boolean, dataLength: number): number =>
  (channelId === 0 ? 0 : channelId < 0x80 ? 2 : 3) +
  (eof ? 2 : 0) +
  (dataLength === 0 ? 0 : 1 + uvarintLength(dataLength) + dataLength)

/**
 * Marshaled size of `Packet{packet_msg: {channelId, eof, data of dataLength bytes}}`, without the
 * length prefix. `RangeError` for a channel outside 0..255 or a negative length.
 */
export const packetMsgBodyLength = (channelId: number, eof: boolean, dataLength: number): number => {
  checkChannel(channelId)
  if (!(dataLength >= 0 && Number.isSafeInteger(dataLength))) throw new RangeError(`bad data length ${dataLength}`)
  const m = msgLength(channelId, eof, dataLength)
  return 1 + uvarintLength(m) + m
}

/** {@link packetMsgBodyLength} plus its uvarint length prefix: the bytes the packet takes on the wire. */
export const packetMsgWireLength = (channelId: number, eof: boolean, dataLength: number): number => {
  const body = packetMsgBodyLength(channelId, eof, dataLength)
  return uvarintLength(body) + body
}

/**
 * The receive limit on a packet body (docs/PROTOCOL.md#packet-size-limit): the marshaled size of a Packet holding
 * `PacketMsg{channel_id: 1, eof: true, data: maxPayload bytes}`. 1034 for the default 1024.
 *
 * Like CometBFT, this assumes a one-byte channel id: an eof packet with a full payload on a channel
 * >= 128 is one byte larger and a CometBFT peer would refuse it (no standard channel is >= 128).
 */
export const maxPacketMsgSize = (maxPayload: number = DEFAULT_MAX_PACKET_MSG_PAYLOAD_SIZE): number =>
  packetMsgBodyLength(1, true, maxPayload)

// ---------------------------------------------------------------------------------------------
// Encoding

/** Writes a small uvarint (< 2^31) and returns the next offset. Bounds are the caller's job. */
const putVarint = (target: Uint8Array, offset: number, value: number): number => {
  while (value >= 0x80) {
    target[offset++] = (value & 0x7f) | 0x80
    value >>>= 7
  }
  target[offset++] = value
  return offset
}

/**
 * Writes one length-delimited `Packet{packet_msg: {channelId, eof, data[start, end)}}` at
 * `target[offset]` and returns the offset just past it. The payload is copied once, straight into
 * `target`; use {@link packetMsgWireLength} to size the target.
 *
 * Throws `RangeError` for a channel outside 0..255, a bad `start`/`end`, or too little room.
 */
export const encodePacketMsgInto = (
  target: Uint8Array,
  offset: number,
  channelId: number,
  eof: boolean,
  data: Uint8Array,
  start: number = 0,
  end: number = data.length
): number => {
  checkChannel(channelId)
  if (!(start >= 0 && start <= end && end <= data.length && Number.isInteger(start) && Number.isInteger(end))) {
    throw new RangeError(`bad data range [${start}, ${end}) of ${data.length} bytes`)
  }
  const dataLength = end - start
  const m = msgLength(channelId, eof, dataLength)
  const body = 1 + uvarintLength(m) + m
  if (!(offset >= 0 && Number.isInteger(offset)) || offset + uvarintLength(body) + body > target.length) {
    throw new RangeError("packet does not fit in target")
  }
  let o = putVarint(target, offset, body)
  target[o++] = TAG_MSG
  o = putVarint(target, o, m)
  if (channelId !== 0) {
    target[o++] = TAG_CHANNEL
    o = putVarint(target, o, channelId)
  }
  if (eof) {
    target[o++] = TAG_EOF
    target[o++] = 1
  }
  if (dataLength !== 0) {
    target[o++] = TAG_DATA
    o = putVarint(target, o, dataLength)
    target.set(start === 0 && end === data.length ? data : data.subarray(start, end), o)
    o += dataLength
  }
  return o
}

/** One length-delimited PacketMsg as a new array. `RangeError` as {@link encodePacketMsgInto}. */
export const encodePacketMsg = (channelId: number, eof: boolean, data: Uint8Array): Uint8Array => {
  const out = new Uint8Array(packetMsgWireLength(channelId, eof, data.length))
  encodePacketMsgInto(out, 0, channelId, eof, data)
  return out
}

const putPingPong = (target: Uint8Array, offset: number, tag: number): number => {
  if (!(offset >= 0 && Number.isInteger(offset)) || offset + PING_PONG_WIRE_LENGTH > target.length) {
    throw new RangeError("ping/pong does not fit in target")
  }
  target[offset] = 2
  target[offset + 1] = tag
  target[offset + 2] = 0
  return offset + PING_PONG_WIRE_LENGTH
}

/** Writes a length-delimited ping (`02 0a 00`) at `target[offset]`; returns the next offset. `RangeError` if it does not fit. */
export const encodePingInto = (target: Uint8Array, offset: number): number => putPingPong(target, offset, TAG_PING)

/** Writes a length-delimited pong (`02 12 00`) at `target[offset]`; returns the next offset. `RangeError` if it does not fit. */
export const encodePongInto = (target: Uint8Array, offset: number): number => putPingPong(target, offset, TAG_PONG)

/** A new length-delimited ping, `02 0a 00`. */
export const encodePing = (): Uint8Array => Uint8Array.of(2, TAG_PING, 0)

/** A new length-delimited pong, `02 12 00`. */
export const encodePong = (): Uint8Array => Uint8Array.of(2, TAG_PONG, 0)

// ---------------------------------------------------------------------------------------------
// Decoding (gogoproto's generated Unmarshal, in miniature)

const EMPTY: Uint8Array = new Uint8Array(0)

const fail = (message: string): never => {
  throw new PacketError("encoding", message)
}

/** Decoder cursor. Decoding is synchronous and not reentrant, so module state is safe. */
let pos = 0
/** Results of {@link readTag}. */
let fieldNumber = 0
let wireType = 0

/** Reads a varint as a JS number (exact below 2^53, which covers every length that can fit). */
const readVarint = (buf: Uint8Array, end: number): number => {
  let value = 0
  let scale = 1
  for (let i = 0; i < 10; i++) {
    if (pos >= end) return fail("unexpected end of packet in a varint")
    const b = buf[pos++]!
    value += (b & 0x7f) * scale
    if (b < 0x80) return value
    scale *= 0x80
  }
  return fail("varint overflows 64 bits")
}

/** Reads a varint and keeps its low 32 bits as a signed int32, as Go's `int32` decode. */
const readInt32 = (buf: Uint8Array, end: number): number => {
  let value = 0
  for (let shift = 0; shift < 70; shift += 7) {
    if (pos >= end) return fail("unexpected end of packet in a varint")
    const b = buf[pos++]!
    if (shift < 32) value |= (b & 0x7f) << shift
    if (b < 0x80) return value
  }
  return fail("varint overflows 64 bits")
}

/** Reads a varint and reports whether it is non-zero (a proto bool). */
const readBool = (buf: Uint8Array, end: number): boolean => {
  let nonZero = false
  for (let i = 0; i < 10; i++) {
    if (pos >= end) return fail("unexpected end of packet in a varint")
    const b = buf[pos++]!
    if ((b & 0x7f) !== 0) nonZero = true
    if (b < 0x80) return nonZero
  }
  return fail("varint overflows 64 bits")
}

/** Reads a field tag into `fieldNumber` (Go's `int32(wire >> 3)`) and `wireType`. */
const readTag = (buf: Uint8Array, end: number): void => {
  const b = buf[pos]!
  if (b < 0x80) {
    pos++
    fieldNumber = b >>> 3
    wireType = b & 7
  } else {
    let lo = 0
    let hi = 0
    let shift = 0
    for (;;) {
      if (shift >= 70) fail("varint overflows 64 bits")
      if (pos >= end) fail("unexpected end of packet in a tag")
      const c = buf[pos++]!
      if (shift < 28) lo |= (c & 0x7f) << shift
      else if (shift === 28) {
        lo |= (c & 0x0f) << 28
        hi = (c & 0x7f) >>> 4
      } else if (shift < 64) hi |= (c & 0x7f) << (shift - 32)
      shift += 7
      if (c < 0x80) break
    }
    fieldNumber = ((lo >>> 3) | (hi << 29)) | 0
    wireType = lo & 7
  }
  if (fieldNumber <= 0) fail(`illegal field number ${fieldNumber}`)
  if (wireType === 4) fail("end group for a non-group")
}

/** Reads a length and returns the end of the length-delimited field it starts. */
const readLengthEnd = (buf: Uint8Array, end: number): number => {
  const length = readVarint(buf, end)
  if (length > end - pos) fail("length-delimited field runs past the end of its message")
  return pos + length
}

/** Skips the field whose tag started at `tagStart` (gogoproto's `skipConn`, groups included). */
const skipField = (buf: Uint8Array, end: number, tagStart: number): void => {
  pos = tagStart
  let depth = 0
  do {
    if (pos >= end) fail("unexpected end of packet in a group")
    // Tags inside a skipped group are read raw: end-group tags are legal there.
    let wt: number
    const b = buf[pos]!
    if (b < 0x80) {
      pos++
      wt = b & 7
    } else {
      wt = b & 7
      readVarint(buf, end)
    }
    switch (wt) {
      case 0:
        readVarint(buf, end)
        break
      case 1:
        if (end - pos < 8) fail("unexpected end of packet in a fixed64")
        pos += 8
        break
      case 2:
        pos = readLengthEnd(buf, end)
        break
      case 3:
        depth++
        break
      case 4:
        if (depth === 0) fail("unexpected end group")
        depth--
        break
      case 5:
        if (end - pos < 4) fail("unexpected end of packet in a fixed32")
        pos += 4
        break
      default:
        fail(`illegal wire type ${wt}`)
    }
  } while (depth > 0)
}

/** Validates an empty message (PacketPing/PacketPong): fields it has are unknown and skipped. */
const skipMessage = (buf: Uint8Array, end: number): void => {
  while (pos < end) {
    const tagStart = pos
    readTag(buf, end)
    skipField(buf, end, tagStart)
  }
}

const decodeMsg = (buf: Uint8Array, end: number): MsgPacket => {
  let channelId = 0
  let eof = false
  let data: Uint8Array = EMPTY
  while (pos < end) {
    const tagStart = pos
    readTag(buf, end)
    switch (fieldNumber) {
      case 1:
        if (wireType !== 0) fail(`wrong wire type ${wireType} for PacketMsg.channel_id`)
        channelId = readInt32(buf, end)
        break
      case 2:
        if (wireType !== 0) fail(`wrong wire type ${wireType} for PacketMsg.eof`)
        eof = readBool(buf, end)
        break
      case 3: {
        if (wireType !== 2) fail(`wrong wire type ${wireType} for PacketMsg.data`)
        const dataEnd = readLengthEnd(buf, end)
        data = dataEnd === pos ? EMPTY : buf.subarray(pos, dataEnd)
        pos = dataEnd
        break
      }
      default:
        skipField(buf, end, tagStart)
    }
  }
  return { _tag: "Msg", channelId, eof, data }
}

/**
 * Decodes one Packet body (the bytes after its length prefix) from `buf[start, end)`. A message's
 * `data` is a view of `buf`: keep `buf` unchanged while the data is in use.
 *
 * Throws {@link PacketError}: `"encoding"` for malformed protobuf (truncated field, varint over
 * 10 bytes, field number 0, a stray end-group, an illegal wire type, or a known field with the
 * wrong wire type); `"unknown_packet_type"` when none of ping, pong or msg is present.
 * `RangeError` for a bad `start`/`end`.
 */
export const decodePacket = (buf: Uint8Array, start: number = 0, end: number = buf.length): Packet => {
  if (!(start >= 0 && start <= end && end <= buf.length)) throw new RangeError(`bad range [${start}, ${end}) of ${buf.length} bytes`)
  pos = start
  let packet: Packet | undefined
  while (pos < end) {
    const tagStart = pos
    readTag(buf, end)
    // Local copy: the nested decoders below overwrite the module-level tag state.
    const field = fieldNumber
    if (field >= 1 && field <= 3) {
      if (wireType !== 2) fail(`wrong wire type ${wireType} for Packet field ${field}`)
      const fieldEnd = readLengthEnd(buf, end)
      if (field === 3) {
        packet = decodeMsg(buf, fieldEnd)
      } else {
        skipMessage(buf, fieldEnd)
        packet = field === 1 ? PING : PONG
      }
      pos = fieldEnd
    } else {
      skipField(buf, end, tagStart)
    }
  }
  if (packet === undefined) throw new PacketError("unknown_packet_type", "unknown packet type: none of ping, pong or msg is set")
  return packet
}

/**
 * How the MConnection and the SecretConnection's plaintext inbox treat what the wire code throws:
 * a wire error (the peer's bytes were wrong) becomes a typed `ConnectionError`; anything else is a
 * bug of ours and stays a defect, instead of being blamed on the peer. Stream and cipher are fakes:
 * the decrypting reader throws what each case needs.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, Result } from "effect"
import { TestClock } from "effect/testing"
import * as ChannelDescriptor from "../../src/domain/ChannelDescriptor.ts"
import * as MConnection from "../../src/layers/tcp/MConnection.ts"
import type { ByteStream } from "../../src/layers/tcp/ByteStream.ts"
import { PlaintextInbox, type Secret } from "../../src/layers/tcp/SecretConnection.ts"
import { MessageSchema } from "../../src/proto/tendermint/p2p/pex_pb.ts"
import type { ConnectionClosed, ConnectionError } from "../../src/services/Transport.ts"
import { FrameOpenError } from "../../src/wire/FrameCipher.ts"
import { PacketError } from "../../src/wire/PacketCodec.ts"
import type { SecretReader, SecretWriter } from "../../src/wire/SecretStream.ts"

const REMOTE = "192.0.2.1:26656"

/** A stream that delivers one chunk (none when `silent`), pulled or pushed, then nothing; writes go nowhere. */
const oneChunkStream = (options: { readonly silent?: boolean } = {}): ByteStream => {
  let sent = options.silent === true
  const next = () => {
    if (sent) return undefined
    sent = true
    return Uint8Array.of(1, 2, 3)
  }
  return {
    read: Effect.suspend(() => {
      const chunk = next()
      return chunk === undefined ? Effect.never : Effect.succeed(chunk)
    }),
    push: ({ onChunk }) => {
      const chunk = next()
      if (chunk !== undefined) onChunk(chunk)
    },
    pause: () => {},
    resume: () => {},
    write: () => Effect.void,
    tryWrite: () => true,
    cancelDrained: () => {},
    close: Effect.void
  }
}

/** A reader whose decryption throws `thrown`. */
const throwingReader = (thrown: unknown) =>
  ({
    pushTo: () => {
      throw thrown
    }
  }) as unknown as SecretReader

/** An MConnection whose decryption throws `thrown` (unless a `reader` is given) and whose writes go through `sealRange`. */
const start = (thrown: unknown, options: { readonly stream?: ByteStream; readonly sealRange?: () => Uint8Array; readonly reader?: SecretReader } = {}) =>
  MConnection.make({
    stream: options.stream ?? oneChunkStream(),
    secret: {
      remotePublicKey: new Uint8Array(32),
      writer: { sealRange: options.sealRange ?? (() => new Uint8Array(0)) } as unknown as SecretWriter,
      reader: options.reader ?? throwingReader(thrown),
      inbox: { chunks: [] } as unknown as PlaintextInbox
    } satisfies Secret,
    channels: [ChannelDescriptor.make({ id: 0x00, messageType: MessageSchema })],
    peerChannels: new Set([0x00]),
    config: { ...MConnection.defaults },
    remote: REMOTE
  })

const errorOf = (exit: Exit.Exit<unknown, ConnectionClosed | ConnectionError>) => {
  assert.isTrue(Exit.isFailure(exit))
  if (Exit.isSuccess(exit)) throw new Error("unreachable")
  const error = Cause.findError(exit.cause)
  assert.isTrue(Result.isSuccess(error), `expected a typed error, got ${Cause.pretty(exit.cause)}`)
  if (Result.isFailure(error)) throw new Error("unreachable")
  return error.success
}

const defectOf = (exit: Exit.Exit<unknown, unknown>) => {
  assert.isTrue(Exit.isFailure(exit))
  if (Exit.isSuccess(exit)) throw new Error("unreachable")
  assert.isFalse(Cause.hasFails(exit.cause), `expected no typed error, got ${Cause.pretty(exit.cause)}`)
  const defect = Cause.findDefect(exit.cause)
  assert.isTrue(Result.isSuccess(defect), `expected a defect, got ${Cause.pretty(exit.cause)}`)
  return Result.isSuccess(defect) ? defect.success : undefined
}

describe("MConnection: what the wire code throws", () => {
  it.effect("a wire error from the receive path closes the connection with a ConnectionError naming its reason", () =>
    Effect.gen(function* () {
      const conn = yield* start(new FrameOpenError("authentication", "failed to decrypt SecretConnection frame"))
      const error = errorOf(yield* Effect.exit(conn.receive))
      assert.strictEqual(error._tag, "ConnectionError")
      if (error._tag === "ConnectionError") {
        assert.strictEqual(error.reason, "authentication")
        assert.include(error.message, REMOTE)
      }
      assert.strictEqual(errorOf(yield* Effect.exit(conn.send(0x00, Uint8Array.of(1))))._tag, "ConnectionError")
    }))

  it.effect("the ConnectionError keeps the wire error's reason", () =>
    Effect.gen(function* () {
      const conn = yield* start(new PacketError("unknown_packet_type", "unknown packet type"))
      const error = errorOf(yield* Effect.exit(conn.receive))
      assert.strictEqual(error._tag === "ConnectionError" ? error.reason : error._tag, "unknown_packet_type")
    }))

  it.effect("any other exception stays a defect: receive and send die with it, and the connection is closed", () =>
    Effect.gen(function* () {
      const bug = new TypeError("not a wire error")
      const conn = yield* start(bug)
      assert.strictEqual(defectOf(yield* Effect.exit(conn.receive)), bug)
      assert.strictEqual(defectOf(yield* Effect.exit(conn.send(0x00, Uint8Array.of(1)))), bug)
      yield* conn.awaitClosed
    }))
})

describe("MConnection: a write that throws", () => {
  it.effect("an exception while flushing (in a microtask, outside any fiber) closes the connection with it instead of reaching the process", () =>
    Effect.gen(function* () {
      const bug = new RangeError("sealing failed")
      const conn = yield* start(new TypeError("unused"), {
        stream: oneChunkStream({ silent: true }),
        sealRange: () => {
          throw bug
        }
      })
      yield* conn.send(0x00, Uint8Array.of(1, 2, 3))
      yield* conn.awaitClosed
      assert.strictEqual(defectOf(yield* Effect.exit(conn.receive)), bug)
    }))
})

describe("SecretConnection: the plaintext inbox", () => {
  it.effect("a frame that fails to open fails the read with ConnectionError decrypt", () =>
    Effect.gen(function* () {
      const inbox = new PlaintextInbox(oneChunkStream(), throwingReader(new FrameOpenError("authentication", "bad tag")), [], REMOTE)
      const error = errorOf(yield* Effect.exit(inbox.take(1)))
      assert.strictEqual(error._tag === "ConnectionError" ? error.reason : error._tag, "decrypt")
    }))

  it.effect("any other exception while decrypting stays a defect", () =>
    Effect.gen(function* () {
      const bug = new RangeError("not a wire error")
      const inbox = new PlaintextInbox(oneChunkStream(), throwingReader(bug), [], REMOTE)
      assert.strictEqual(defectOf(yield* Effect.exit(inbox.take(1))), bug)
    }))
})

describe("MConnection: recentlySent decay", () => {
  it.effect("decays by 0.8 every 2 s of the clock, applied when read (no timer per connection)", () =>
    Effect.gen(function* () {
      const conn = yield* start(undefined, { stream: oneChunkStream({ silent: true }), reader: { pushTo: () => 0 } as unknown as SecretReader })
      const sent = () => Effect.map(conn.status, (s) => s.channels[0]!.recentlySent)
      yield* conn.send(0x00, new Uint8Array(1000))
      yield* Effect.yieldNow
      // One PacketMsg: 1000 bytes of data, its fields and its length prefix.
      const first = yield* sent()
      assert.isAbove(first, 1000)
      yield* TestClock.adjust(1999)
      assert.strictEqual(yield* sent(), first)
      yield* TestClock.adjust(1)
      assert.strictEqual(yield* sent(), Math.floor(first * 0.8))
      // Two periods at once: two truncating steps, as Go's ticker would have made.
      yield* TestClock.adjust(4000)
      assert.strictEqual(yield* sent(), Math.floor(Math.floor(Math.floor(first * 0.8) * 0.8) * 0.8))
      yield* TestClock.adjust(600_000)
      assert.strictEqual(yield* sent(), 0)
    }))
})

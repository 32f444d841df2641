/**
 * A TCP socket as the TCP transport uses it: pull a chunk, write a buffer, close. Built on
 * `effect/socket` (`NodeSocket.fromDuplex`), whose reader is pull-based: bytes are read from the
 * kernel only when we ask, so a slow consumer backs up into the peer's TCP window.
 *
 * @since 0.1.0
 */
import * as NodeSocket from "@effect/platform-node/NodeSocket"
import * as Effect from "effect/Effect"
import * as Scope from "effect/Scope"
import type * as Socket from "effect/socket/Socket"
import type * as Net from "node:net"
import { ConnectionClosed, ConnectionError } from "../../services/Transport.ts"

/** A connected byte stream owned by a scope. */
export interface ByteStream {
  /** The next chunk of bytes; `ConnectionClosed` at end of stream. */
  readonly read: Effect.Effect<Uint8Array, ConnectionClosed | ConnectionError>
  /** Writes a buffer, waiting while the kernel buffer is full. */
  readonly write: (chunk: Uint8Array) => Effect.Effect<void, ConnectionClosed | ConnectionError>
  /**
   * Writes at once, from the caller (the latency path: no fiber hop). Returns false when the
   * kernel buffer is full: the bytes are queued, and `onDrained` is called once there is room
   * again. A closed stream drops the bytes and returns true.
   */
  readonly tryWrite: (chunk: Uint8Array, onDrained: () => void) => boolean
  /** Forgets an `onDrained` callback (on close). */
  readonly cancelDrained: (onDrained: () => void) => void
  /** Destroys the socket; idempotent. */
  readonly close: Effect.Effect<void>
}

/** Bytes read from the kernel per pull. */
const CHUNK_SIZE = 64 * 1024

/** Bytes queued in user space before `tryWrite` asks the caller to wait for `drain`. */
const WRITE_HIGH_WATER = 256 * 1024

/**
 * Bytes Node reads from the kernel ahead of our pulls. At Node's default (64 KiB) one full read
 * stops reading until the next pull, a fiber hop later, so the kernel sits idle between reads;
 * 1 MiB keeps a few reads in flight. Node has no public setter after construction, and the socket
 * comes from the transport's listener or dialer, so this sets the stream state's field.
 */
const READ_HIGH_WATER = 1024 * 1024

const raiseReadMark = (socket: Net.Socket) => {
  const state = (socket as unknown as { _readableState?: { highWaterMark?: number } })._readableState
  if (state !== undefined && typeof state.highWaterMark === "number" && state.highWaterMark < READ_HIGH_WATER) state.highWaterMark = READ_HIGH_WATER
}

// The reader is in binary mode: strings never come, but the type allows them.
const asBytes = (c: Uint8Array | string): Uint8Array => (typeof c === "string" ? Buffer.from(c) : c)

const isEnd = (e: Socket.SocketError) => e.reason._tag === "SocketCloseError"

/** Wraps a connected `net.Socket`. The socket is destroyed when `scope` closes. */
export const fromNetSocket = Effect.fnUntraced(function* (socket: Net.Socket, remote: string): Effect.fn.Return<ByteStream, never, Scope.Scope> {
  socket.setNoDelay(true)
  raiseReadMark(socket)
  const effectSocket = yield* NodeSocket.fromDuplex(Effect.succeed(socket), { chunkSize: CHUNK_SIZE })
  const reader = yield* effectSocket.reader.pipe(Effect.orDie)
  const writer = yield* effectSocket.writer
  let pending: ReadonlyArray<Uint8Array | string> = []
  let index = 0
  const closed = (message: string) => new ConnectionClosed({ remote, message })
  const mapError = (e: Socket.SocketError) =>
    isEnd(e) ? closed(`${remote} closed the connection`) : new ConnectionError({ remote, reason: "io", message: `connection to ${remote} failed: ${e.message}` })
  const close = Effect.sync(() => {
    if (!socket.destroyed) socket.destroy()
  })
  yield* Effect.addFinalizer(() => close)
  return {
    read: Effect.suspend(() => {
      if (index < pending.length) return Effect.succeed(asBytes(pending[index++]!))
      return Effect.map(Effect.mapError(reader.pull, mapError), (chunks) => {
        pending = chunks
        index = 1
        return asBytes(chunks[0])
      })
    }),
    write: (chunk) => (socket.destroyed ? Effect.fail(closed(`connection to ${remote} is closed`)) : Effect.mapError(writer.write(chunk), mapError)),
    tryWrite: (chunk, onDrained) => {
      if (socket.destroyed) return true
      // Past Node's 16 KiB writable mark `write` asks us to wait, but one packed 64 KiB write
      // already passes it: waiting then would leave the kernel idle between writes. Keep writing
      // until WRITE_HIGH_WATER is queued; `drain` comes once the queue empties (write said false).
      if (socket.write(chunk) || socket.writableLength <= WRITE_HIGH_WATER) return true
      socket.once("drain", onDrained)
      return false
    },
    cancelDrained: (onDrained) => void socket.off("drain", onDrained),
    close
  }
})

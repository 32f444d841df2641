/**
 * A TCP socket as the TCP transport uses it, in two modes:
 *
 * - pull (`read`), for the handshake: the next chunk, waiting for it. While nothing is waiting the
 *   socket is paused, so a slow reader backs up into the peer's TCP window.
 * - push (`push`), for the MConnection: every chunk goes to a callback, synchronously in the
 *   socket's own `data` event (no fiber hop between the kernel and the decoder), and the callback
 *   pauses and resumes the socket for backpressure. Flowing, Node reads as fast as the kernel
 *   delivers; paused, it holds at most its default 64 KiB (the rest waits in the kernel's buffer,
 *   then in the peer's), so a peer we stopped reading costs us little memory.
 *
 * Plain `node:net` events: `end` is the peer closing (`ConnectionClosed`), `error` an I/O failure
 * (`ConnectionError`), `close` without either our own `close`.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type * as Net from "node:net"
import { ConnectionClosed, ConnectionError } from "../../services/Transport.ts"

/** Where `push` sends what the socket reads. */
export interface PushHandlers {
  /** A chunk read from the socket, called in the socket's `data` event. */
  readonly onChunk: (chunk: Uint8Array) => void
  /**
   * The end of the stream or its failure, called once, after every chunk. The error is made on
   * demand: one closed by us needs none (an error is costly to build, and closes are frequent).
   */
  readonly onEnd: (error: () => ConnectionClosed | ConnectionError) => void
}

/** A connected byte stream owned by a scope. */
export interface ByteStream {
  /** The next chunk of bytes; `ConnectionClosed` at end of stream. Not after `push`. */
  readonly read: Effect.Effect<Uint8Array, ConnectionClosed | ConnectionError>
  /**
   * From now on hands every chunk to `handlers.onChunk` as the socket reads it (chunks read before
   * but not yet pulled come first, synchronously, in this call) and the end to `handlers.onEnd`.
   */
  readonly push: (handlers: PushHandlers) => void
  /** Stops reading (push mode): the kernel buffers, then the peer's TCP window fills. */
  readonly pause: () => void
  /** Reads again after `pause`. */
  readonly resume: () => void
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

/** Bytes queued in user space before `tryWrite` asks the caller to wait for `drain`. */
const WRITE_HIGH_WATER = 256 * 1024

type Resume = (effect: Effect.Effect<Uint8Array, ConnectionClosed | ConnectionError>) => void

/** Wraps a connected `net.Socket`. The socket is destroyed when the current scope closes. */
export const fromNetSocket = Effect.fnUntraced(function* (socket: Net.Socket, remote: string): Effect.fn.Return<ByteStream, never, Scope.Scope> {
  socket.setNoDelay(true)
  /** Chunks read but not yet pulled (pull mode, or before `push` hands them over). */
  const pending: Array<Uint8Array> = []
  let waiter: Resume | undefined
  let handlers: PushHandlers | undefined
  /** Why the stream ended, once it has (made on first use). */
  let ended: (() => ConnectionClosed | ConnectionError) | undefined
  /** Paused by the push consumer. */
  let paused = false

  const onData = (chunk: Uint8Array) => {
    if (handlers !== undefined) return handlers.onChunk(chunk)
    if (waiter !== undefined) {
      const resume = waiter
      waiter = undefined
      return resume(Effect.succeed(chunk))
    }
    pending.push(chunk)
    socket.pause()
  }
  const finish = (make: () => ConnectionClosed | ConnectionError) => {
    if (ended !== undefined) return
    let error: ConnectionClosed | ConnectionError | undefined
    ended = () => (error ??= make())
    if (handlers !== undefined) return handlers.onEnd(ended)
    if (waiter !== undefined && pending.length === 0) {
      const resume = waiter
      waiter = undefined
      resume(Effect.fail(ended()))
    }
  }
  const onEnd = () => finish(() => new ConnectionClosed({ remote, message: `${remote} closed the connection` }))
  const onError = (e: Error) => finish(() => new ConnectionError({ remote, reason: "io", message: `connection to ${remote} failed: ${e.message}` }))
  const onClose = () => finish(() => new ConnectionClosed({ remote, message: `connection to ${remote} is closed` }))
  socket.on("data", onData)
  socket.on("end", onEnd)
  socket.on("error", onError)
  socket.on("close", onClose)
  // Flowing, so that the peer's close is seen even before anyone reads (an accepted socket may
  // start paused); the first chunk nobody waits for pauses it again.
  socket.resume()

  const close = Effect.sync(() => {
    if (!socket.destroyed) socket.destroy()
  })
  yield* Effect.addFinalizer(() =>
    Effect.sync(() => {
      if (!socket.destroyed) socket.destroy()
      // A pull waiting in another fiber ends now rather than at the socket's `close` event.
      onClose()
    })
  )

  /** Waits until the socket takes writes again (or is gone: the reader reports why). */
  const awaitDrain = Effect.callback<void>((resume) => {
    const done = () => {
      socket.off("drain", done)
      socket.off("close", done)
      resume(Effect.void)
    }
    socket.on("drain", done)
    socket.on("close", done)
    return Effect.sync(() => {
      socket.off("drain", done)
      socket.off("close", done)
    })
  })

  const read = Effect.callback<Uint8Array, ConnectionClosed | ConnectionError>((resume) => {
    if (pending.length > 0) return resume(Effect.succeed(pending.shift()!))
    if (ended !== undefined) return resume(Effect.fail(ended()))
    waiter = resume
    socket.resume()
    return Effect.sync(() => {
      if (waiter === resume) waiter = undefined
    })
  })

  return {
    read,
    push: (next) => {
      handlers = next
      while (pending.length > 0) next.onChunk(pending.shift()!)
      if (ended !== undefined) next.onEnd(ended)
      else if (!paused) socket.resume()
    },
    pause: () => {
      paused = true
      socket.pause()
    },
    resume: () => {
      paused = false
      if (!socket.destroyed) socket.resume()
    },
    write: (chunk) =>
      Effect.suspend(() => {
        if (socket.destroyed) return Effect.fail(new ConnectionClosed({ remote, message: `connection to ${remote} is closed` }))
        return socket.write(chunk) ? Effect.void : awaitDrain
      }),
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

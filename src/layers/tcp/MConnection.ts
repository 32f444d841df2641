/**
 * The MConnection over an established SecretConnection (docs/PROTOCOL.md, MConnection packets):
 * messages are queued per channel, cut into PacketMsgs by the scheduler (least
 * `recentlySent / priority` first), packed into large sealed writes, and reassembled on the other
 * side. A ping goes out every `pingInterval`; silence longer than `pongTimeout` closes the
 * connection. Send and receive rates are limited. Every protocol error closes the connection with
 * a `ConnectionError` (docs/PROTOCOL.md, Connection errors); an exception that is not one of the
 * wire errors is a bug of ours, and closes the connection as a defect.
 *
 * Writes are flushed as soon as the send loop has nothing more to pack, which bounds latency far
 * below CometBFT's flush throttle while still filling 64 KiB writes under load.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Predicate from "effect/Predicate"
import * as Scope from "effect/Scope"
import type * as ChannelDescriptor from "../../domain/ChannelDescriptor.ts"
import { FlowMonitor } from "../../domain/FlowMonitor.ts"
import { ConnectionClosed, ConnectionError, type ConnectionStatus, type Received } from "../../services/Transport.ts"
import { ChannelScheduler } from "../../wire/ChannelScheduler.ts"
import { FrameOpenError, NonceOverflowError } from "../../wire/FrameCipher.ts"
import { encodePingInto, encodePongInto, maxPacketMsgSize, PacketError } from "../../wire/PacketCodec.ts"
import { PacketReader } from "../../wire/PacketReader.ts"
import { Reassembler, ReassemblyError } from "../../wire/Reassembler.ts"
import { UvarintError } from "../../wire/Uvarint.ts"
import * as TokenBucket from "../../domain/TokenBucket.ts"
import type { ByteStream } from "./ByteStream.ts"
import type { Config } from "./MConnectionConfig.ts"
import { ReceiveBuffer } from "./ReceiveBuffer.ts"
import * as Signal from "../Signal.ts"
import type { Secret } from "./SecretConnection.ts"

export { defaults, validateConfig, type Config } from "./MConnectionConfig.ts"

/** Size of one socket write. */
const WRITE_BUFFER = 64 * 1024
/** Packed writes the send loop makes before it yields to senders. */
const WRITES_PER_TURN = 4
/** How often `recentlySent` decays (CometBFT's updateStats). */
const DECAY_PERIOD = 2_000

/**
 * What the wire code throws for bytes the peer got wrong: the peer's fault, a `ConnectionError`.
 * Anything else it throws (a `RangeError`, say) is our bug and stays a defect.
 */
const WIRE_ERRORS = [PacketError, ReassemblyError, FrameOpenError, NonceOverflowError, UvarintError] as const

type WireError = InstanceType<(typeof WIRE_ERRORS)[number]>

const isWireError = (u: unknown): u is WireError => WIRE_ERRORS.some((wireError) => u instanceof wireError)

/** The running connection. */
export interface MConnection {
  readonly send: (channelId: number, data: Uint8Array) => Effect.Effect<void, ConnectionClosed | ConnectionError>
  readonly receive: Effect.Effect<Received, ConnectionClosed | ConnectionError>
  readonly close: Effect.Effect<void>
  readonly awaitClosed: Effect.Effect<void>
  /** Traffic so far and the channels' send queues. */
  readonly status: Effect.Effect<ConnectionStatus>
}

/**
 * Starts the MConnection in `scope`: channels are ours (what we accept); `peerChannels` are what
 * the peer listed (what we may send).
 */
export const make = Effect.fnUntraced(function* (options: {
  readonly stream: ByteStream
  readonly secret: Secret
  readonly channels: ReadonlyArray<ChannelDescriptor.ChannelDescriptor>
  readonly peerChannels: ReadonlySet<number>
  readonly config: Config
  readonly remote: string
}): Effect.fn.Return<MConnection, never, Scope.Scope> {
  const { stream, secret, config, remote } = options
  const scope = yield* Effect.scope
  const clock = yield* Clock.Clock
  const scheduler = new ChannelScheduler(
    options.channels.map((c) => ({ id: c.id, priority: c.priority, sendQueueCapacity: c.sendQueueCapacity })),
    { maxPacketMsgPayloadSize: config.maxPacketMsgPayloadSize }
  )
  const registered = new Set(options.channels.map((c) => c.id))
  const reassembler = new Reassembler(options.channels.map((c) => ({ id: c.id, recvMessageCapacity: c.recvMessageCapacity })))
  const packets = new PacketReader({ maxPacketSize: maxPacketMsgSize(config.maxPacketMsgPayloadSize) })
  const received = new ReceiveBuffer<Received, ConnectionClosed | ConnectionError>(config.receiveBuffer)
  const done = yield* Deferred.make<void>()
  /** Closed (by either side, or by an error). */
  let closed = false
  /**
   * Why: a typed error, or a defect (a bug of ours) that `send` and `receive` then die with. Made
   * on first use: an error costs ~5-30 µs to build (its stack), and most closes are never asked why.
   */
  let closedCause: () => Cause.Cause<ConnectionClosed | ConnectionError> = () => {
    throw new Error("MConnection: not closed")
  }
  /** The send loop's wake-up (work, room in the socket, a close). */
  const wakeSender = yield* Signal.make
  /** Senders waiting for room in a channel queue. */
  const wakeEnqueuers = yield* Signal.make
  /** The receive loop's wake-up (the socket callback needs it, the stream ended, a close). */
  const wakeReceiver = yield* Signal.make
  let pongPending = false
  /** Closed by the peer (end of stream) rather than by us or an error: buffered messages still drain. */
  let remoteEnded = false
  let pingPending = false
  let lastReceived = yield* Clock.currentTimeMillis
  const established = lastReceived
  const sendMonitor = new FlowMonitor(established)
  const recvMonitor = new FlowMonitor(established)

  /** Closes with `cause` (the first one wins; made on demand): fails pending receives and sends, destroys the socket. */
  const shutdownCause = (cause: () => Cause.Cause<ConnectionClosed | ConnectionError>) =>
    Effect.suspend(() => {
      if (closed) return Effect.void
      closed = true
      let made: Cause.Cause<ConnectionClosed | ConnectionError> | undefined
      closedCause = () => (made ??= cause())
      wakeSender.fireUnsafe()
      wakeEnqueuers.fireUnsafe()
      stream.cancelDrained(onDrain)
      received.close(closedCause, remoteEnded)
      wakeReceiver.fireUnsafe()
      return Effect.all([stream.close, Deferred.succeed(done, undefined)], { discard: true })
    })

  /** Closes with `error` (the first one wins). */
  const shutdown = (error: ConnectionClosed | ConnectionError) => shutdownCause(() => Cause.fail(error))

  const protocolError = (reason: string, message: string) => new ConnectionError({ remote, reason, message: `${remote}: ${message}` })

  // ---------------------------------------------------------------------------------------------
  // Sending. `flush` packs everything pending (pong, ping, packets) into one sealed write, straight
  // from the caller when the socket can take it: no fiber hop on the latency path. The send loop
  // only waits: for the kernel to drain, for the rate limit, or for work.
  const sendRate = TokenBucket.make(config.sendRate)
  const buffer = new Uint8Array(WRITE_BUFFER)
  const maxPacket = scheduler.maxPacketWireLength
  let draining = false
  let rateLimited = false
  const onDrain = () => {
    draining = false
    wakeSender.fireUnsafe()
  }

  const hasWork = () => pongPending || pingPending || scheduler.hasPending

  /**
   * CometBFT decays `recentlySent` every 2 s on a ticker; here the decays due are applied when the
   * counts are read (before packing, and for `status`): the same steps at the same times, without
   * a fiber and a timer per connection waking an idle node every 2 s.
   */
  let nextDecay = established + DECAY_PERIOD
  const catchUpDecay = (now: number) => {
    if (now < nextDecay) return
    const due = Math.floor((now - nextDecay) / DECAY_PERIOD) + 1
    // 0.8^200 is below 1e-19: after 200 steps every count is 0 whatever it was.
    for (let i = 0; i < Math.min(due, 200); i++) scheduler.decay()
    nextDecay += due * DECAY_PERIOD
  }

  /** Writes what is pending if the socket and the rate limit allow; true if it wrote. */
  const flush = (now: number): boolean => {
    if (closed || draining || !hasWork()) return false
    if (!sendRate.tryTake(WRITE_BUFFER, now)) {
      rateLimited = true
      wakeSender.fireUnsafe()
      return false
    }
    catchUpDecay(now)
    let offset = 0
    if (pongPending) {
      offset = encodePongInto(buffer, offset)
      pongPending = false
    }
    if (pingPending) {
      offset = encodePingInto(buffer, offset)
      pingPending = false
    }
    while (scheduler.hasPending && offset + maxPacket <= WRITE_BUFFER) {
      const next = scheduler.fill(buffer, offset, WRITE_BUFFER - offset)
      if (next === offset) break
      offset = next
    }
    // Charge what was actually written (the check above reserved a full buffer).
    sendRate.take(offset - WRITE_BUFFER, now)
    const sealed = secret.writer.sealRange(buffer, 0, offset)
    sendMonitor.update(sealed.length, now)
    if (!stream.tryWrite(sealed, onDrain)) draining = true
    wakeEnqueuers.fireUnsafe()
    // More than one buffer's worth pending: the send loop carries on.
    if (hasWork()) wakeSender.fireUnsafe()
    return true
  }

  /**
   * Flushes once the current synchronous run ends (a microtask): every message a fiber sends
   * before it yields goes into one packed write, and a lone message (a ping-pong) still leaves
   * without waiting for another fiber to be scheduled.
   */
  let flushScheduled = false
  let flushDefect: { readonly error: unknown } | undefined
  /** The scheduled flush, if it has not run yet. */
  const runScheduledFlush = () => {
    if (!flushScheduled) return
    flushScheduled = false
    // Outside any fiber: an exception here would reach the process. It goes to the send loop
    // instead, which ends the connection with it (a wire error) or dies with it (a bug).
    try {
      if (!flush(clock.currentTimeMillisUnsafe()) && hasWork()) wakeSender.fireUnsafe()
    } catch (e) {
      flushDefect = { error: e }
      wakeSender.fireUnsafe()
    }
  }
  const scheduleFlush = () => {
    if (flushScheduled) return
    flushScheduled = true
    queueMicrotask(runScheduledFlush)
  }

  const sendLoop = Effect.gen(function* () {
    while (!closed) {
      if (flushDefect !== undefined) return yield* Effect.die(flushDefect.error)
      if (rateLimited) {
        rateLimited = false
        yield* Effect.sleep(sendRate.delay(WRITE_BUFFER, yield* Clock.currentTimeMillis))
      }
      if (draining || !hasWork()) {
        yield* Deferred.await(wakeSender.get())
        continue
      }
      // Several packed writes while the socket takes them (the kernel stays busy), then let
      // senders add more before the next round.
      const now = yield* Clock.currentTimeMillis
      for (let i = 0; i < WRITES_PER_TURN && flush(now); i++) {
        if (draining) break
      }
      yield* Effect.yieldNow
    }
  })

  // ---------------------------------------------------------------------------------------------
  // Receiving. After the handshake the socket pushes each read into `onChunk`, which decrypts,
  // parses and reassembles it and hands the messages to a waiting `receive` at once, in the
  // socket's own callback: no fiber between the kernel and the consumer. When the receive buffer
  // is full, the receive rate is exceeded or the wire code throws, it pauses the socket and the
  // receive loop (a fiber) takes over until it can resume it: backpressure reaches the peer's TCP
  // window, and errors become the connection's.
  const recvRate = TokenBucket.make(config.recvRate)
  const plaintexts: Array<Uint8Array> = []
  /** Messages complete but not yet in the receive buffer (it was full); the receive loop delivers them. */
  let overflow: Array<Received> | undefined
  /** How long the receive rate asks to wait before reading more. */
  let rateWait = 0
  /** What the wire code threw in the socket's callback. */
  let recvThrown: { readonly error: unknown } | undefined
  /** Why the stream ended, once it has (made on demand). */
  let streamEnd: (() => ConnectionClosed | ConnectionError) | undefined
  /** The receive loop has paused the socket and handles what comes until it resumes it. */
  let holding = false
  /** Chunks that arrived while holding (a read already under way when the socket was paused). */
  const held: Array<Uint8Array> = []

  /**
   * Handles decrypted bytes synchronously (packets, pings, pongs, reassembly): complete messages
   * go into the receive buffer, and what does not fit into `overflow`, for the receive loop.
   * Pongs are coalesced: one per batch of bytes read, not one per ping, or each 3-byte ping
   * would cost a 1044-byte sealed frame (a flood of pings would make us send ~350 times what the
   * peer sends).
   */
  const consume = (chunks: ReadonlyArray<Uint8Array>) => {
    // One clock read per batch, not per packet (a 64 KiB read holds hundreds of small packets).
    let any = false
    for (const chunk of chunks) {
      packets.push(chunk)
      while (true) {
        const packet = packets.next()
        if (packet === undefined) break
        any = true
        if (packet._tag === "Ping") {
          pongPending = true
        } else if (packet._tag === "Msg") {
          // A one-packet message is a view of the read's plaintext (as Node's own reads are views
          // of its 64 KiB buffer pool, which keeping one keeps alive).
          const message = reassembler.onMsg(packet.channelId, packet.eof, packet.data)
          if (message !== undefined) {
            const item = { channelId: packet.channelId, data: message }
            if (overflow === undefined) {
              if (received.add(item)) continue
              if (received.hasTaker) {
                // Full, and the consumer is waiting: it takes what is buffered now, in this call
                // (it may close the connection meanwhile), and the message goes in after.
                received.wake()
                if (closed) return
                if (received.add(item)) continue
              }
            }
            ;(overflow ??= []).push(item)
          }
        }
      }
    }
    if (any) lastReceived = clock.currentTimeMillisUnsafe()
    if (pongPending) scheduleFlush()
  }

  /** One socket read: rate accounting, decryption, then `consume`. */
  const handleChunk = (chunk: Uint8Array) => {
    const now = clock.currentTimeMillisUnsafe()
    recvMonitor.update(chunk.length, now)
    rateWait = recvRate.take(chunk.length, now)
    plaintexts.length = 0
    secret.reader.pushTo(chunk, plaintexts)
    consume(plaintexts)
  }

  const hold = () => {
    holding = true
    stream.pause()
    wakeReceiver.fireUnsafe()
  }

  const onChunk = (chunk: Uint8Array) => {
    if (closed) return
    if (holding) {
      held.push(chunk)
      return
    }
    try {
      handleChunk(chunk)
    } catch (e) {
      // Outside any fiber: the receive loop ends the connection with it (or dies with it).
      recvThrown = { error: e }
      return hold()
    }
    // The consumer runs now, in this callback, and may close the connection.
    received.wake()
    // What it sent in answer (and our pong) leaves now, before Node unwinds the read: the same
    // packed write the microtask would make, a few microseconds sooner.
    runScheduledFlush()
    if (!closed && (overflow !== undefined || rateWait > 0)) hold()
  }

  const onEnd = (error: () => ConnectionClosed | ConnectionError) => {
    streamEnd = error
    wakeReceiver.fireUnsafe()
  }

  const recvLoop = Effect.gen(function* () {
    // Bytes that came with the handshake's last read; the socket pushes the rest.
    holding = true
    consume(secret.inbox.chunks.splice(0))
    received.wake()
    stream.push({ onChunk, onEnd })
    while (!closed) {
      if (holding) {
        if (recvThrown !== undefined) return yield* Effect.die(recvThrown.error)
        if (overflow !== undefined) {
          const items = overflow
          overflow = undefined
          // As many as fit, then one wake-up; waits while `receive` is behind (the socket stays paused).
          let i = 0
          while (i < items.length && !closed) {
            while (i < items.length && received.add(items[i]!)) i++
            received.wake()
            if (i < items.length) yield* received.awaitRoom
          }
          continue
        }
        if (rateWait > 0) {
          const wait = rateWait
          rateWait = 0
          yield* Effect.sleep(wait)
          continue
        }
        if (held.length > 0) {
          handleChunk(held.shift()!)
          received.wake()
          continue
        }
        holding = false
        stream.resume()
      }
      // The peer's end comes after everything it sent was handled.
      if (streamEnd !== undefined) return yield* Effect.fail(streamEnd())
      yield* Deferred.await(wakeReceiver.get())
    }
  })

  // ---------------------------------------------------------------------------------------------
  // A ping every `pingInterval`; if nothing at all arrives within `pongTimeout` of an unanswered
  // ping, the peer is gone. Any traffic counts as an answer (docs/PROTOCOL.md, Keepalive).
  let lastPingSent: number | undefined
  const keepalive = Effect.gen(function* () {
    while (!closed) {
      const now = yield* Clock.currentTimeMillis
      const awaiting = lastPingSent !== undefined && lastReceived < lastPingSent
      if (awaiting && now - lastPingSent! >= config.pongTimeout) {
        return yield* protocolError("pong_timeout", `pong timeout: nothing received for ${now - lastReceived} ms after a ping`)
      }
      const nextPing = (lastPingSent ?? lastReceived) + config.pingInterval
      if (now >= nextPing) {
        lastPingSent = now
        pingPending = true
        flush(now)
        continue
      }
      const nextCheck = awaiting ? lastPingSent! + config.pongTimeout : Number.POSITIVE_INFINITY
      yield* Effect.sleep(Math.max(1, Math.ceil(Math.min(nextPing, nextCheck) - now)))
    }
  })

  /** A wire error as a `ConnectionError` with the wire's reason (a nonce overflow has none: its tag). */
  const fromWireError = (e: WireError) => protocolError(Predicate.hasProperty(e, "reason") ? e.reason : e._tag, e.message)

  /**
   * Runs a loop; its failure, or a wire error thrown by the wire code, closes the connection with
   * a `ConnectionError`. Any other defect closes it too, and stays a defect: `send` and `receive`
   * die with it, and so does this fiber.
   */
  const supervise = (name: string, loop: Effect.Effect<unknown, ConnectionClosed | ConnectionError>) =>
    loop.pipe(
      Effect.catchDefect((defect) => {
        if (isWireError(defect)) return Effect.fail(fromWireError(defect))
        const cause = Cause.die(defect)
        return Effect.andThen(shutdownCause(() => cause), Effect.failCause(cause))
      }),
      Effect.matchEffect({
        onFailure: (error) => {
          // The peer hung up: messages it sent before that are still delivered, as CometBFT does.
          if (name === "receive" && error._tag === "ConnectionClosed") remoteEnded = true
          return shutdown(error)
        },
        onSuccess: () => shutdown(new ConnectionClosed({ remote, message: `connection to ${remote} is closed (${name} ended)` }))
      })
    )

  yield* Effect.forkIn(supervise("send", sendLoop), scope)
  yield* Effect.forkIn(supervise("receive", recvLoop), scope)
  yield* Effect.forkIn(supervise("keepalive", keepalive), scope)
  /** Our own close; its error is only made if this close is the first. */
  const close = shutdownCause(() => Cause.fail(new ConnectionClosed({ remote, message: `connection to ${remote} is closed` })))
  yield* Scope.addFinalizer(scope, close)

  const send = (channelId: number, data: Uint8Array, deadline?: number): Effect.Effect<void, ConnectionClosed | ConnectionError> =>
    Effect.suspend(() => {
      if (closed) return Effect.failCause(closedCause())
      if (!registered.has(channelId)) {
        return Effect.fail(new ConnectionError({ remote, reason: "unknown_channel", message: `channel ${channelId} is not one of this connection's channels` }))
      }
      // The peer did not list the channel: it would drop the connection, so the message goes nowhere.
      if (!options.peerChannels.has(channelId)) return Effect.void
      if (scheduler.tryEnqueue(channelId, data)) {
        scheduleFlush()
        return Effect.void
      }
      // Wait for room, but not forever: a peer that takes nothing for `sendTimeout` is stuck.
      if (deadline === undefined) deadline = clock.currentTimeMillisUnsafe() + config.sendTimeout
      const remaining = deadline - clock.currentTimeMillisUnsafe()
      if (remaining <= 0) {
        const error = protocolError("send_timeout", `no room to send on channel ${channelId} for ${config.sendTimeout} ms`)
        return Effect.andThen(shutdown(error), Effect.fail(error))
      }
      return Effect.andThen(
        Effect.raceFirst(Deferred.await(wakeEnqueuers.get()), Effect.sleep(Math.max(1, Math.ceil(remaining)))),
        send(channelId, data, deadline)
      )
    })

  return {
    send,
    // Once closed, the buffer fails takers at once, or after what it holds when the peer hung up.
    receive: received.take,
    close,
    awaitClosed: Deferred.await(done),
    status: Effect.sync((): ConnectionStatus => {
      const now = clock.currentTimeMillisUnsafe()
      catchUpDecay(now)
      return {
        duration: now - established,
        send: sendMonitor.status(now),
        receive: recvMonitor.status(now),
        channels: scheduler.stats().map((c) => ({
          id: c.id,
          priority: c.priority,
          sendQueueCapacity: c.capacity,
          sendQueueSize: c.queuedMessages,
          sendQueueBytes: c.queuedBytes,
          recentlySent: c.recentlySent
        }))
      }
    })
  }
})

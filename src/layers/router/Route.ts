/**
 * A peer's route, from registration to cleanup: the peer's entry in `peers` and its outbound
 * queue, then two loops raced against each other, one sending what reactors queued for the peer,
 * one handing what the peer sends to the channels' `messages`. Whichever ends first (the peer hung
 * up, broke the protocol, or was evicted) ends the other, and the cleanup closes the connection
 * and tells the PeerManager (docs/ARCHITECTURE.md, Router). A reactor's `send` may skip the send
 * loop (`entry.sendNow`) only while the queue's `unsent` is 0, so it never overtakes a message.
 *
 * @since 0.1.0
 */
import { fromBinary } from "@bufbuild/protobuf"
import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Metric from "effect/Metric"
import * as Queue from "effect/Queue"
import * as MessageType from "../../domain/router/MessageType.ts"
import type * as NodeInfo from "../../domain/NodeInfo.ts"
import type { Connection, Received } from "../../services/Transport.ts"
import * as Metrics from "../Metrics.ts"
import { channelLabel } from "./Metrics.ts"
import * as FastPath from "./FastPath.ts"
import * as PeerQueue from "./PeerQueue.ts"
import type { PeerEntry, State } from "./State.ts"

/** Reasons a connection can fail without the peer breaking the protocol. */
const BENIGN_CONNECTION_ERRORS: ReadonlySet<string> = new Set(["io", "pong_timeout", "send_timeout", "not_handshaken"])

/** Which side dialed. */
export type Direction = "incoming" | "outgoing"

/**
 * Routes an admitted peer until its connection ends; the caller added it to `admittedPeers`. The
 * queue exists before the PeerManager publishes the peer `up`, so a reactor may send the moment it
 * hears of it. An eviction asked for before the route registered ends it right after `ready`.
 */
// Untraced (no span, no stack frame): it runs once per connection, and a span per connection, with
// the frame every failure crossing the fiber gets annotated with, costs more at scale than it tells.
export const route = Effect.fnUntraced(function* (state: State, conn: Connection, info: NodeInfo.NodeInfo, direction: Direction) {
  const { options, advertised, peers, channels, peerManager, metrics } = state
  const { count, perChannel, dropped } = metrics
  const id = info.nodeId
  let capacity = options.peerQueueSize
  for (const d of advertised.values()) capacity = Math.max(capacity, d.sendQueueCapacity)
  const queue = yield* PeerQueue.make(options.queueType, capacity)
  const fast = FastPath.of(conn)
  const countSent = (channelId: number, data: Uint8Array, messageType: string) => {
    const ch = channels.get(channelId)
    if (ch !== undefined) count(ch.sentMsgs, 1)
    count(perChannel(entry.sentBytes, Metrics.peerSendBytesTotal, id, channelId), data.length)
    count(metrics.sendBytesByType(messageType), data.length)
  }
  const countClosed = (ok: boolean) => {
    if (!ok) count(dropped.closed, 1)
    return Effect.void
  }
  const entry: PeerEntry = {
    nodeId: id,
    nodeInfo: info,
    remoteEndpoint: conn.remoteEndpoint,
    direction,
    channels: new Set(info.channels),
    queue,
    connection: conn,
    sentBytes: new Map(),
    receivedBytes: new Map(),
    pendingBytes: Metric.withAttributes(Metrics.peerPendingSendBytes, { peer_id: id }),
    sendNow: fast === undefined ? () => false : (channelId, data, messageType) => {
      if (queue.unsent() !== 0 || queue.isClosed() || !fast.sendUnsafe(channelId, data)) return false
      countSent(channelId, data, messageType)
      return true
    }
  }
  const cleanup = Effect.gen(function* () {
    if (peers.get(id) === entry) {
      peers.delete(id)
      state.routedView = undefined
    }
    metrics.forget(entry)
    state.admittedPeers.delete(id)
    state.evictRequested.delete(id)
    yield* queue.close
    yield* conn.close
    yield* Metric.update(Metrics.peers, peers.size)
    yield* peerManager.disconnected(id)
    yield* Effect.logDebug(`peer ${id} disconnected`)
  })
  return yield* Effect.gen(function* () {
    peers.set(id, entry)
    state.routedView = undefined
    state.admittedPeers.delete(id)
    // Its pending-bytes gauge appears at the next flush.
    metrics.touch()
    yield* Metric.update(Metrics.peers, peers.size)
    yield* peerManager.ready(id, entry.channels)
    if (state.evictRequested.delete(id)) return
    // Both loops run per message: plain `Effect.gen` loops, no span per message. Each, once woken,
    // goes through everything that waits for it before it waits again: with a fast path
    // (`router/FastPath.ts`), without an effect per message while the connection has room.
    const sendMessages = Effect.gen(function* () {
      while (true) {
        let item: PeerQueue.Outgoing | undefined = yield* queue.take
        while (item !== undefined) {
          if (fast === undefined || !fast.sendUnsafe(item.channelId, item.data)) yield* conn.send(item.channelId, item.data)
          queue.sent()
          countSent(item.channelId, item.data, item.messageType)
          item = queue.pollUnsafe()
        }
      }
    })
    // A channel opened after this connection was made is not one of its channels: our doing, not
    // the peer's, so that message is dropped and sending goes on. Caught around the loop, not per
    // message, to keep the per-message path as it is.
    const sendLoop: typeof sendMessages = sendMessages.pipe(
      Effect.catchIf((e) => e._tag === "ConnectionError" && e.reason === "unknown_channel", () => {
        queue.sent()
        count(dropped.noChannel, 1)
        return Effect.suspend(() => sendLoop)
      })
    )
    /** The receive loop's work for one message: an effect only when it must wait for room or report the peer. */
    const handle = (m: Received): Effect.Effect<void> | undefined => {
      const ch = channels.get(m.channelId)
      if (ch === undefined) {
        count(dropped.unknownChannel, 1)
        return undefined
      }
      count(ch.receivedMsgs, 1)
      count(perChannel(entry.receivedBytes, Metrics.peerReceiveBytesTotal, id, m.channelId), m.data.length)
      let message: unknown
      try {
        message = fromBinary(ch.descriptor.messageType, m.data)
      } catch (e) {
        count(dropped.undecodable, 1)
        return Effect.andThen(
          Effect.logDebug(`peer ${id} sent an undecodable message on channel ${channelLabel(m.channelId)}: ${(e as Error).message}`),
          Effect.ignore(peerManager.errored(id, false))
        )
      }
      count(metrics.receiveBytesByType(MessageType.label(ch.descriptor.messageType, message)), m.data.length)
      // Waits while the reactor is behind: backpressure reaches the connection and the peer.
      const envelope = { from: id, channelId: m.channelId, message }
      if (Queue.offerUnsafe(ch.inbound, envelope)) return undefined
      return Effect.flatMap(Queue.offer(ch.inbound, envelope), countClosed)
    }
    const receiveLoop = Effect.gen(function* () {
      while (true) {
        let m: Received | undefined = yield* conn.receive
        while (m !== undefined) {
          const wait = handle(m)
          if (wait !== undefined) yield* wait
          m = fast?.receiveUnsafe()
        }
      }
    })
    // The first loop to end ends the route with its exit, as `raceFirst` would, with one fiber
    // fewer: the receive loop runs in a child fiber and, when it ends, closes the queue so the send
    // loop (in this fiber) stops taking; when the send loop ends first, the child is interrupted.
    type LoopError = Effect.Error<typeof sendLoop> | Effect.Error<typeof receiveLoop>
    const received = Deferred.makeUnsafe<Exit.Exit<never, LoopError>>()
    const receiver = yield* Effect.forkChild(Effect.flatMap(Effect.exit(receiveLoop), (e) => {
      Deferred.doneUnsafe(received, Exit.succeed(e))
      return queue.close
    }), { startImmediately: true })
    const sent = yield* Effect.exit(sendLoop)
    const first = Deferred.isDoneUnsafe(received) ? yield* Deferred.await(received) : sent
    if (receiver.pollUnsafe() === undefined) yield* Fiber.interrupt(receiver)
    const exit: Exit.Exit<never, LoopError> = first
    if (Exit.isFailure(exit)) {
      // A defect is our bug, not the peer's doing: logged where an operator sees it.
      if (Cause.hasDies(exit.cause)) yield* Effect.logError(`peer ${id}: the route ended with a defect; the connection is closed`, exit.cause)
      else yield* Effect.logDebug(`peer ${id} route ended`, exit.cause)
      // A protocol violation (not a hang-up, an I/O error or a timeout) counts as misbehaviour.
      const error = Exit.findErrorOption(exit)
      if (error._tag === "Some" && error.value._tag === "ConnectionError" && !BENIGN_CONNECTION_ERRORS.has(error.value.reason)) {
        yield* Effect.ignore(peerManager.errored(id, true))
      }
    }
  }).pipe(Effect.ensuring(cleanup))
})

/**
 * An in-process connection pair (docs/ARCHITECTURE.md#memory-transport): two directions crossed
 * between the ends, one shared closer, and a handshake that proves key possession, so tests
 * exercise the same checks as TCP. In one process the proof is the key itself: each side hands
 * over its `NodeKey`, and the receiver accepts it when its public key is the one presented and
 * the key signs and verifies (checked once per key object and remembered): an Ed25519 signature
 * per connection side cost a 1,000-node simulation 15% of its time and proved nothing more.
 *
 * Each direction runs over a `Wire`, the network's view of the directed link it crosses. On a
 * perfect link a message goes straight into the receiver's queue. Otherwise it is held in flight
 * with the time it arrives (latency, jitter, retransmissions of losses, queueing behind earlier
 * messages at the link's bandwidth; never before a message sent earlier, as on a stream) and a
 * delivery fiber owned by the network hands it over on time; while the link is cut nothing is
 * delivered, and `kick` resumes it. Backpressure covers both: a sender waits while `bufferSize`
 * messages are in flight or unread.
 *
 * Each end also registers a `router/FastPath.ts`: `send` and `receive` without an effect when they
 * would not wait, which lets the router skip a fiber hop per message.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Queue from "effect/Queue"
import * as Result from "effect/Result"
import type { SchedulerDispatcher } from "effect/Scheduler"
import * as Endpoint from "../domain/Endpoint.ts"
import { FlowMonitor } from "../domain/FlowMonitor.ts"
import * as NodeInfo from "../domain/NodeInfo.ts"
import * as NodeKey from "../domain/NodeKey.ts"
import type { LinkConditions, Pair } from "../services/MemoryNetwork.ts"
import * as Handshake from "./Handshake.ts"
import * as FastPath from "./router/FastPath.ts"
import {
  ConnectionClosed,
  HandshakeAuthFailed,
  InvalidPeerNodeInfo,
  type Connection,
  type ConnectionStatus,
  type HandshakeOptions,
  type Peer,
  type Received
} from "../services/Transport.ts"

type Hello = { readonly _tag: "Hello"; readonly nodeInfo: Uint8Array; readonly publicKey: Uint8Array }
type Auth = { readonly _tag: "Auth"; readonly key: NodeKey.NodeKey }
type HandshakeRecord = Hello | Auth

/** The network's view of the directed link a direction crosses. */
export interface Wire {
  /** True while the link is perfect and flowing: messages skip the in-flight stage. */
  readonly ideal: () => boolean
  /** True unless the link is cut, stalled or an end is paused. */
  readonly flows: () => boolean
  readonly conditions: () => LinkConditions
  /** The network's seeded generator, in [0, 1). */
  readonly random: () => number
  /** Runs a delivery fiber owned by the network. */
  readonly fork: (effect: Effect.Effect<void>) => void
}

/** A pair the network can resume once a cut link flows again. */
export interface WiredPair extends Pair {
  /** Restarts delivery of what is held in flight (after a heal, an unstall, a resume). */
  readonly kick: () => void
}

/** A message or handshake record on its way, and when it arrives (`undefined` until the link lets it through). */
interface InFlight {
  readonly message: Received | undefined
  readonly record: HandshakeRecord | undefined
  readonly size: number
  at: number | undefined
}

/** Bytes a handshake record counts for on a link with limited bandwidth. */
const RECORD_SIZE = 256
/** Retransmission timeouts double up to this (TCP's maximum RTO is 60 s as well). */
const MAX_RETRANSMIT = 60_000

const DOMAIN = new TextEncoder().encode("effect-p2p/memory-handshake/v1")

/** Keys shown to hold the private half of their public key (a signature made and verified once). */
const proven = new WeakSet<NodeKey.NodeKey>()

/** Whether `key` is a key pair whose public half is `publicKey`. */
const holds = (key: NodeKey.NodeKey, publicKey: Uint8Array): boolean => {
  if (key.publicKey.length !== publicKey.length || !key.publicKey.every((b, i) => b === publicKey[i])) return false
  if (proven.has(key)) return true
  let ok = false
  try {
    ok = NodeKey.verify(key.publicKey, DOMAIN, NodeKey.sign(key, DOMAIN))
  } catch {
    ok = false
  }
  if (ok) proven.add(key)
  return ok
}

export type { Pair } from "../services/MemoryNetwork.ts"

/**
 * One direction: what has arrived for the receiver, what is in flight to it, and the sender's wait
 * for room. Arrived messages are a plain array the receiver takes whole (no effect or `Exit` per
 * message); a receiver waiting for one is woken by a task on the fiber dispatcher, as a waiting
 * `Queue.take` would be, so a burst of sends wakes it once.
 */
/** A one-shot wake-up, made only when someone waits (most messages find nobody waiting). */
class Wakeup {
  #waiting: Deferred.Deferred<void> | undefined = undefined

  get waiting(): boolean {
    return this.#waiting !== undefined
  }

  wait(): Effect.Effect<void> {
    this.#waiting ??= Deferred.makeUnsafe<void>()
    return Deferred.await(this.#waiting)
  }

  fire(): void {
    const waiting = this.#waiting
    if (waiting !== undefined) {
      this.#waiting = undefined
      Deferred.doneUnsafe(waiting, Exit.void)
    }
  }
}

class Direction {
  readonly inflight: Array<InFlight | undefined> = []
  head = 0
  pumping = false
  /** When the link finishes sending what is queued on it (bandwidth). */
  linkFreeAt = 0
  /** Arrival time of the last message scheduled (a stream never reorders). */
  lastAt = 0
  /** A sender waiting for room. */
  readonly room = new Wakeup()
  readonly wire: Wire
  readonly handshake: Queue.Queue<HandshakeRecord, ConnectionClosed>
  readonly dispatcher: SchedulerDispatcher
  constructor(wire: Wire, handshake: Queue.Queue<HandshakeRecord, ConnectionClosed>, dispatcher: SchedulerDispatcher) {
    this.wire = wire
    this.handshake = handshake
    this.dispatcher = dispatcher
  }

  /** Messages that arrived and the receiver has not taken yet. */
  arrived: Array<Received> = []
  /** What the receiver took from `arrived` in one go and has not handed out yet. */
  batch: ReadonlyArray<Received> = []
  batchIndex = 0
  /** A receiver waiting for a message, and whether its wake-up is already scheduled. */
  readonly arrival = new Wakeup()
  wakeScheduled = false

  /** Messages in flight or unread: the sender waits while this is `bufferSize`. */
  occupancy() {
    return this.arrived.length + this.inflight.length - this.head + this.batch.length - this.batchIndex
  }

  /** The next unread message, taking everything arrived at once when the batch is used up. */
  next(): Received | undefined {
    if (this.batchIndex === this.batch.length) {
      if (this.arrived.length === 0) return undefined
      this.batch = this.arrived
      this.batchIndex = 0
      this.arrived = []
    }
    return this.batch[this.batchIndex++]
  }

  arrive(message: Received) {
    this.arrived.push(message)
    if (this.arrival.waiting && !this.wakeScheduled) {
      this.wakeScheduled = true
      this.dispatcher.scheduleTask(this.wake, 0)
    }
  }

  /** Wakes a waiting receiver now (it checks again what there is, or whether the connection closed). */
  readonly wake = () => {
    this.wakeScheduled = false
    this.arrival.fire()
  }

  /** Arrival time of an item leaving now, from the link's current conditions. */
  schedule(item: InFlight, now: number) {
    const c = this.wire.conditions()
    let t = now
    if (c.bandwidth > 0) {
      t = Math.max(t, this.linkFreeAt) + (item.size * 1000) / c.bandwidth
      this.linkFreeAt = t
    }
    t += c.latency
    if (c.jitter > 0) t += this.wire.random() * c.jitter
    if (c.loss > 0) {
      for (let rto = c.retransmitAfter; this.wire.random() < c.loss; rto = Math.min(rto * 2, MAX_RETRANSMIT)) t += rto
    }
    // Whole milliseconds, as the clock counts them.
    t = Math.max(Math.ceil(t), this.lastAt)
    this.lastAt = t
    item.at = t
  }

  deliver(item: InFlight) {
    if (item.message !== undefined) this.arrive(item.message)
    else Queue.offerUnsafe(this.handshake, item.record!)
  }
}

/** Creates a connection pair between two endpoints, each direction over its wire, buffering `bufferSize` messages. */
export const makePair = Effect.fn("MemoryConnection.makePair")(function* (
  dialerEndpoint: Endpoint.Endpoint,
  acceptorEndpoint: Endpoint.Endpoint,
  bufferSize: number,
  wires: { readonly toAcceptor: Wire; readonly toDialer: Wire; readonly onClose?: () => void }
): Effect.fn.Return<WiredPair> {
  const dispatcher = yield* Effect.withFiber((fiber) => Effect.succeed(fiber.currentDispatcher))
  // The gate in `send` keeps messages in flight plus unread at `bufferSize`.
  const makeDirection = (wire: Wire) =>
    Effect.map(Queue.bounded<HandshakeRecord, ConnectionClosed>(4), (handshake) => new Direction(wire, handshake, dispatcher))
  const toAcceptor = yield* makeDirection(wires.toAcceptor)
  const toDialer = yield* makeDirection(wires.toDialer)
  const closed = yield* Deferred.make<void>()
  const clock = yield* Clock.Clock
  const created = clock.currentTimeMillisUnsafe()
  let isClosed = false

  const close = Effect.sync(() => {
    if (isClosed) return
    isClosed = true
    for (const [d, remote] of [[toAcceptor, acceptorEndpoint], [toDialer, dialerEndpoint]] as const) {
      const text = Endpoint.format(remote)
      const error = new ConnectionClosed({ remote: text, message: `connection to ${text} is closed` })
      d.inflight.length = 0
      d.head = 0
      d.batch = []
      d.batchIndex = 0
      d.arrived = []
      Queue.failCauseUnsafe(d.handshake, Cause.fail(error))
      d.room.fire()
      d.wake()
    }
    Deferred.doneUnsafe(closed, Exit.void)
    wires.onClose?.()
  })

  /** Hands over, in order and on time, what is in flight on `d`; stops while the link is cut. */
  const pump = (d: Direction): Effect.Effect<void> =>
    Effect.suspend(() => {
      while (!isClosed && d.head < d.inflight.length) {
        if (!d.wire.flows()) break
        const item = d.inflight[d.head]!
        const now = clock.currentTimeMillisUnsafe()
        if (item.at === undefined) d.schedule(item, now)
        if (item.at! > now) return Effect.andThen(Effect.sleep(item.at! - now), pump(d))
        d.inflight[d.head++] = undefined
        d.deliver(item)
      }
      if (d.head === d.inflight.length) {
        d.inflight.length = 0
        d.head = 0
      }
      d.pumping = false
      return Effect.void
    })

  const startPump = (d: Direction) => {
    if (d.pumping || isClosed || d.head === d.inflight.length || !d.wire.flows()) return
    d.pumping = true
    d.wire.fork(pump(d))
  }

  /** Sends an item on `d`: straight to the receiver on a perfect idle link, else in flight. */
  const put = (d: Direction, item: InFlight) => {
    if (d.head === d.inflight.length && d.wire.ideal()) return d.deliver(item)
    if (d.wire.flows()) d.schedule(item, clock.currentTimeMillisUnsafe())
    d.inflight.push(item)
    startPump(d)
  }

  const end = (local: Endpoint.Endpoint, remote: Endpoint.Endpoint, outbound: Direction, inbound: Direction): Connection => {
    const remoteText = Endpoint.format(remote)
    const closedError = () => new ConnectionClosed({ remote: remoteText, message: `connection to ${remoteText} is closed` })
    /** A sender waiting for room is woken once this few messages are in flight or unread. */
    const lowWater = Math.floor(bufferSize / 2)
    const failIfClosed = Effect.suspend(() => (isClosed ? Effect.fail(closedError()) : Effect.void))
    const sent = new FlowMonitor(created)
    const received = new FlowMonitor(created)
    const delivered = (item: Received) => {
      received.update(item.data.length, clock.currentTimeMillisUnsafe())
      return item
    }

    // A message counts against the sender's buffer until it is handed out; a waiting sender is
    // woken once half the buffer is free, not at every message (a wake-up per message cost
    // router-memory a third of its throughput).
    const receiveUnsafe = (): Received | undefined => {
      if (isClosed) return undefined
      const item = inbound.next()
      if (item === undefined) return undefined
      if (inbound.occupancy() <= lowWater) inbound.room.fire()
      return delivered(item)
    }

    const sendRecord = (record: HandshakeRecord) =>
      Effect.suspend(() => {
        if (isClosed) return Effect.fail(closedError())
        put(outbound, { message: undefined, record, size: RECORD_SIZE, at: undefined })
        return Effect.void
      })

    /** Sends at once if there is room; `false` (nothing sent) if the buffer is full or the connection closed. */
    const sendUnsafe = (channelId: number, data: Uint8Array): boolean => {
      if (isClosed || outbound.occupancy() >= bufferSize) return false
      sent.update(data.length, clock.currentTimeMillisUnsafe())
      const message: Received = { channelId, data }
      // A perfect idle link hands the message over as is; only one in flight needs the wrapper.
      if (outbound.head === outbound.inflight.length && outbound.wire.ideal()) outbound.arrive(message)
      else put(outbound, { message, record: undefined, size: data.length, at: undefined })
      return true
    }

    const send = (channelId: number, data: Uint8Array): Effect.Effect<void, ConnectionClosed> =>
      Effect.suspend(() => {
        if (sendUnsafe(channelId, data)) return Effect.void
        if (isClosed) return Effect.fail(closedError())
        return Effect.andThen(outbound.room.wait(), send(channelId, data))
      })

    const exchange = Effect.fn("MemoryConnection.exchange")(function* (options: HandshakeOptions): Effect.fn.Return<Peer, ConnectionClosed | HandshakeAuthFailed | InvalidPeerNodeInfo> {
      yield* failIfClosed
      yield* sendRecord({
        _tag: "Hello",
        nodeInfo: NodeInfo.encode(options.nodeInfo),
        publicKey: options.nodeKey.publicKey
      })
      const hello = yield* Queue.take(inbound.handshake)
      if (hello._tag !== "Hello") {
        return yield* new HandshakeAuthFailed({ remote: remoteText, message: `${remoteText} sent its signature before its hello` })
      }
      const info = NodeInfo.decode(hello.nodeInfo)
      if (Result.isFailure(info)) {
        return yield* new InvalidPeerNodeInfo({ remote: remoteText, nodeId: "", reason: info.failure.reason, message: `handshake with ${remoteText}: ${info.failure.message}` })
      }
      yield* sendRecord({ _tag: "Auth", key: options.nodeKey })
      const auth = yield* Queue.take(inbound.handshake)
      if (auth._tag !== "Auth" || !holds(auth.key, hello.publicKey)) {
        return yield* new HandshakeAuthFailed({ remote: remoteText, message: `${remoteText} could not prove it holds the key it presented` })
      }
      return { nodeInfo: info.success, publicKey: hello.publicKey }
    })

    const receive: Effect.Effect<Received, ConnectionClosed> = Effect.suspend(() => {
      if (isClosed) return Effect.fail(closedError())
      const item = receiveUnsafe()
      return item === undefined ? Effect.andThen(inbound.arrival.wait(), receive) : Effect.succeed(item)
    })

    const connection: Connection = {
      localEndpoint: local,
      remoteEndpoint: remote,
      handshake: (options) => Handshake.run(remoteText, options, exchange(options)),
      send,
      receive,
      close,
      awaitClosed: Deferred.await(closed),
      status: Effect.sync((): ConnectionStatus => {
        const now = clock.currentTimeMillisUnsafe()
        return { duration: now - created, send: sent.status(now), receive: received.status(now), channels: [] }
      })
    }
    FastPath.register(connection, { sendUnsafe, receiveUnsafe })
    return connection
  }

  return {
    dialer: end(dialerEndpoint, acceptorEndpoint, toAcceptor, toDialer),
    acceptor: end(acceptorEndpoint, dialerEndpoint, toDialer, toAcceptor),
    close,
    isClosed: () => isClosed,
    kick: () => {
      startPump(toAcceptor)
      startPump(toDialer)
    }
  }
})

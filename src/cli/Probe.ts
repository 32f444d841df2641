/**
 * The probe reactor, on its own channel (`0x7f`): reactor traffic whose delivery a receiver can
 * account for exactly (lost, duplicated and reordered messages), and link round-trip times.
 * `effect-p2p testnet` runs it on every node (one message to each peer a second, every one a ping)
 * for its live view; `effect-p2p start --probe` runs it on a real node (a message to each peer
 * every 100 ms, `--probe-interval`, one of them a ping each second) so end-to-end tests can read
 * its counters on `/metrics`.
 *
 * Wire form: a `google.protobuf.BytesValue` whose `value` is 21 bytes, big-endian:
 *
 * | bytes | field |
 * |---|---|
 * | 0 | kind: 1 ping, 2 pong, 3 tick |
 * | 1-4 | epoch: u32 the sender drew at random when its probe started (a restarted sender has a new one) |
 * | 5-12 | seq: u64 per destination; 1 for the first message the sender sent that peer, +1 for each one after, kept across reconnects |
 * | 13-20 | time: u64 nanoseconds; a ping and a tick carry the sender's clock when sent, a pong echoes the time of the ping it answers |
 *
 * A ping is answered at once with a pong (which has its own seq from the answering side); the
 * pinger times the round trip from the echoed time. Ticks are only counted. A longer value is read
 * by its first 21 bytes (room for fields to come); a shorter one, or an unknown kind, is ignored
 * and not counted.
 *
 * Accounting, per sender node ID: the receiver keeps the sender's epoch and the last seq it took.
 * The first message from a sender, or one with another epoch, sets the baseline (nothing before it
 * is counted); seq = last + 1 is in order; seq > last + 1 counts seq - last - 1 missing; seq <= last
 * counts one duplicate or reordered message and leaves last where it is. A seq is drawn when the
 * message is handed to the router, so a message lost with a connection (queued when it closed) is
 * counted missing once the sender's next message arrives.
 *
 * Each destination has its own outbox (16 messages) and sender fiber, so a stalled peer never
 * delays the others; a message that finds its outbox full is not sent and draws no seq. Times come
 * from `Clock`, so under `TestClock` everything is virtual.
 *
 * @since 0.1.0
 */
import { create } from "@bufbuild/protobuf"
import { BytesValueSchema, type BytesValue } from "@bufbuild/protobuf/wkt"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FiberMap from "effect/FiberMap"
import * as Metric from "effect/Metric"
import * as Queue from "effect/Queue"
import * as Random from "effect/Random"
import * as Stream from "effect/Stream"
import type * as Scope from "effect/Scope"
import * as ChannelDescriptor from "../domain/ChannelDescriptor.ts"
import * as Envelope from "../domain/Envelope.ts"
import type * as NodeId from "../domain/NodeId.ts"
import type { Router } from "../services/Router.ts"

/** The probe channel ID: high enough to stay clear of CometBFT's reactors (0x00-0x61). */
export const CHANNEL_ID = 0x7f

/** The probe channel: small messages, a few queued per peer. */
export const descriptor: ChannelDescriptor.ChannelDescriptor<typeof BytesValueSchema> = ChannelDescriptor.make({
  id: CHANNEL_ID,
  name: "probe",
  messageType: BytesValueSchema,
  priority: 1,
  sendQueueCapacity: 16,
  recvMessageCapacity: 64,
  recvBufferCapacity: 1024
})

/** How often a ping goes to each peer, in ms (and how often `testnet` sends at all). */
export const PING_INTERVAL = 1_000

/** How often a message goes to each peer by default (`effect-p2p start --probe`), in ms. */
export const DEFAULT_INTERVAL = 100

/** Messages waiting for one destination; more are not sent until it drains. */
export const OUTBOX_CAPACITY = 16

/**
 * Peers whose sequence state is kept, as senders and as destinations; beyond this the least
 * recently heard (or sent to) is forgotten. A forgotten sender starts a new baseline; a forgotten
 * destination starts again at seq 1 (its receiver then counts duplicates until it passes the old
 * seq), so counts are exact for any node that meets fewer peers than this.
 */
export const MAX_TRACKED_PEERS = 10_000

/** Bytes of a probe message's value. */
export const MESSAGE_SIZE = 21

const KINDS = { ping: 1, pong: 2, tick: 3 } as const

/** A probe message. */
export interface Probe {
  readonly kind: "ping" | "pong" | "tick"
  /** The sender's epoch (u32). */
  readonly epoch: number
  /** The sender's sequence number for this destination (u64). */
  readonly seq: bigint
  /** Nanoseconds: the sender's clock (ping, tick), or the echoed ping time (pong). */
  readonly time: bigint
}

/** The wire form of a probe message. */
export const encode = (probe: Probe): BytesValue => {
  const value = new Uint8Array(MESSAGE_SIZE)
  const view = new DataView(value.buffer)
  value[0] = KINDS[probe.kind]
  view.setUint32(1, probe.epoch >>> 0)
  view.setBigUint64(5, BigInt.asUintN(64, probe.seq))
  view.setBigUint64(13, BigInt.asUintN(64, probe.time))
  return create(BytesValueSchema, { value })
}

/** Reads a probe message; a value shorter than {@link MESSAGE_SIZE} or of an unknown kind gives `undefined`. */
export const decode = (message: BytesValue): Probe | undefined => {
  const v = message.value
  if (v.length < MESSAGE_SIZE) return undefined
  const kind = v[0] === KINDS.ping ? "ping" : v[0] === KINDS.pong ? "pong" : v[0] === KINDS.tick ? "tick" : undefined
  if (kind === undefined) return undefined
  const view = new DataView(v.buffer, v.byteOffset, v.byteLength)
  return { kind, epoch: view.getUint32(1), seq: view.getBigUint64(5), time: view.getBigUint64(13) }
}

// ---------------------------------------------------------------------------------------------
// Accounting
// ---------------------------------------------------------------------------------------------

/** What a receiver knows of one sender: its epoch and the last seq taken. */
export interface SenderState {
  readonly epoch: number
  readonly last: bigint
}

/** How one message fits the sender's sequence. */
export type Verdict =
  | { readonly _tag: "Baseline" }
  | { readonly _tag: "InOrder" }
  | { readonly _tag: "Gap"; readonly missing: bigint }
  | { readonly _tag: "DuplicateOrReordered" }

/** Where a message from a sender in `state` (none yet: `undefined`) with `epoch` and `seq` leaves it. */
export const account = (state: SenderState | undefined, epoch: number, seq: bigint): { readonly state: SenderState; readonly verdict: Verdict } => {
  if (state === undefined || state.epoch !== epoch) return { state: { epoch, last: seq }, verdict: { _tag: "Baseline" } }
  if (seq === state.last + 1n) return { state: { epoch, last: seq }, verdict: { _tag: "InOrder" } }
  if (seq > state.last) return { state: { epoch, last: seq }, verdict: { _tag: "Gap", missing: seq - state.last - 1n } }
  return { state, verdict: { _tag: "DuplicateOrReordered" } }
}

/** A map that forgets its least recently used entry beyond `max`. */
const touch = <K, V>(map: Map<K, V>, key: K, value: V, max: number) => {
  map.delete(key)
  map.set(key, value)
  if (map.size > max) map.delete(map.keys().next().value as K)
}

/** The receiving side's state for every sender, bounded by `maxSenders`. */
export class Accounting {
  private readonly senders = new Map<string, SenderState>()
  readonly maxSenders: number
  constructor(maxSenders: number = MAX_TRACKED_PEERS) {
    this.maxSenders = maxSenders
  }

  /** Takes one message from `from` and says how it fits. */
  record(from: string, epoch: number, seq: bigint): Verdict {
    const { state, verdict } = account(this.senders.get(from), epoch, seq)
    touch(this.senders, from, state, this.maxSenders)
    return verdict
  }

  /** The state kept for a sender, if any. */
  get(from: string): SenderState | undefined {
    return this.senders.get(from)
  }

  get size(): number {
    return this.senders.size
  }
}

// ---------------------------------------------------------------------------------------------
// Metrics
// ---------------------------------------------------------------------------------------------

/** Probe messages handed to the router (pings, pongs and ticks); each drew a seq. */
export const sentTotal = Metric.counter("p2p_probe_sent_total", { description: "Probe messages sent (each with the next sequence number of its destination).", incremental: true })
/** Probe messages received (duplicates included); malformed ones are not counted. */
export const receivedTotal = Metric.counter("p2p_probe_received_total", { description: "Probe messages received.", incremental: true })
/** Gaps in senders' sequence numbers: messages sent to this node that did not arrive (or not yet). */
export const missingTotal = Metric.counter("p2p_probe_missing_total", { description: "Probe messages missing from senders' sequences.", incremental: true })
/** Messages whose seq was not above the last one taken from their sender. */
export const duplicateOrReorderedTotal = Metric.counter("p2p_probe_duplicate_or_reordered_total", { description: "Probe messages received twice or out of order.", incremental: true })

/** The probe's metrics, in the order the README lists them. */
export const metrics = [sentTotal, receivedTotal, missingTotal, duplicateOrReorderedTotal] as const

// ---------------------------------------------------------------------------------------------
// The reactor
// ---------------------------------------------------------------------------------------------

/** What {@link run} is told. */
export interface Options {
  /** How often a message goes to each peer. Default {@link DEFAULT_INTERVAL} ms. */
  readonly interval?: Duration.Input
  /** How often one of those messages is a ping (the others are ticks). Default {@link PING_INTERVAL} ms. */
  readonly pingInterval?: Duration.Input
  /** The epoch; default drawn from `Random` (u32). */
  readonly epoch?: number
}

/** What a node's probe counted since the last {@link Handle.take}. */
export interface Counts {
  /** Probe messages received (pings, pongs and ticks). */
  readonly received: number
  /** Probe messages sent (pings, pongs and ticks). */
  readonly sent: number
  /** Round-trip times of the pongs received, in ms. */
  readonly rtts: ReadonlyArray<number>
  /** Messages missing from senders' sequences. */
  readonly missing: number
  /** Messages received twice or out of order. */
  readonly duplicateOrReordered: number
}

/** A running probe. */
export interface Handle {
  /** This probe's epoch. */
  readonly epoch: number
  /** The counts since the previous call, resetting them. */
  readonly take: Effect.Effect<Counts>
}

/** Why the probe channel could not be opened (the router's `openChannel` errors). */
export type OpenError = Effect.Error<ReturnType<Router["Service"]["openChannel"]>>

interface Outgoing {
  readonly kind: Probe["kind"]
  readonly time: bigint
}

/**
 * Opens the probe channel on `router` and runs the reactor in the caller's scope: a fiber reading
 * the channel (accounting, answering pings, timing pongs), one sending to every connected peer
 * that serves the channel every `interval`, and a sender fiber per peer. Fails if the channel is
 * already open.
 */
export const run = Effect.fn("Probe.run")(function* (router: Router["Service"], options: Options = {}): Effect.fn.Return<Handle, OpenError, Scope.Scope> {
  const interval = Math.max(1, Duration.toMillis(options.interval ?? DEFAULT_INTERVAL))
  const pingEvery = Math.max(1, Math.round(Duration.toMillis(options.pingInterval ?? PING_INTERVAL) / interval))
  const epoch = options.epoch === undefined ? yield* Random.nextIntBetween(0, 2 ** 32, { halfOpen: true }) : options.epoch >>> 0
  const channel = yield* router.openChannel(descriptor)
  for (const m of metrics) yield* Metric.update(m, 0) // on /metrics from the start, at 0
  const accounting = new Accounting()
  const nextSeq = new Map<NodeId.NodeId, bigint>()
  const outboxes = new Map<NodeId.NodeId, Queue.Queue<Outgoing>>()
  const senders = yield* FiberMap.make<NodeId.NodeId>()
  let received = 0
  let sent = 0
  let missing = 0
  let duplicateOrReordered = 0
  let rtts: Array<number> = []

  // One message at a time to `to`, in order: the seq is drawn as it is handed to the router.
  const sendLoop = (to: NodeId.NodeId, outbox: Queue.Queue<Outgoing>) =>
    Effect.forever(Effect.gen(function* () {
      const out = yield* Queue.take(outbox)
      const seq = (nextSeq.get(to) ?? 0n) + 1n
      touch(nextSeq, to, seq, MAX_TRACKED_PEERS)
      sent++
      yield* Metric.update(sentTotal, 1)
      yield* channel.send(Envelope.to(to, encode({ kind: out.kind, epoch, seq, time: out.time })))
    }))

  const enqueue = (to: NodeId.NodeId, out: Outgoing) =>
    Effect.gen(function* () {
      let outbox = outboxes.get(to)
      if (outbox === undefined) {
        const made = yield* Queue.dropping<Outgoing>(OUTBOX_CAPACITY)
        outbox = outboxes.get(to) // another fiber may have made one meanwhile
        if (outbox === undefined) {
          outbox = made
          outboxes.set(to, made)
          yield* FiberMap.run(senders, to, sendLoop(to, made))
        }
      }
      Queue.offerUnsafe(outbox, out)
    })

  const close = (peer: NodeId.NodeId) =>
    Effect.suspend(() => {
      outboxes.delete(peer)
      return FiberMap.remove(senders, peer)
    })

  const receive = Stream.runForEach(channel.messages, (envelope) =>
    Effect.gen(function* () {
      const probe = decode(envelope.message)
      if (probe === undefined) return
      received++
      yield* Metric.update(receivedTotal, 1)
      const verdict = accounting.record(envelope.from, probe.epoch, probe.seq)
      if (verdict._tag === "Gap") {
        missing += Number(verdict.missing)
        yield* Metric.update(missingTotal, Number(verdict.missing))
      } else if (verdict._tag === "DuplicateOrReordered") {
        duplicateOrReordered++
        yield* Metric.update(duplicateOrReorderedTotal, 1)
      }
      if (probe.kind === "ping") {
        yield* enqueue(envelope.from, { kind: "pong", time: probe.time })
      } else if (probe.kind === "pong") {
        const now = yield* Clock.currentTimeNanos
        rtts.push(Number(now - probe.time) / 1e6)
      }
    }))

  const tick = Effect.gen(function* () {
    for (let n = 0; ; n++) {
      const peers = (yield* router.peers).filter((p) => p.channels.has(CHANNEL_ID))
      const connected = new Set<string>(peers.map((p) => p.nodeId))
      for (const id of [...outboxes.keys()]) if (!connected.has(id)) yield* close(id)
      const time = yield* Clock.currentTimeNanos
      const kind = n % pingEvery === 0 ? "ping" : "tick"
      for (const peer of peers) yield* enqueue(peer.nodeId, { kind, time })
      yield* Effect.sleep(interval)
    }
  })

  yield* Effect.forkScoped(receive)
  yield* Effect.forkScoped(tick)

  return {
    epoch,
    take: Effect.sync(() => {
      const counts: Counts = { received, sent, rtts, missing, duplicateOrReordered }
      received = 0
      sent = 0
      missing = 0
      duplicateOrReordered = 0
      rtts = []
      return counts
    })
  }
})

/**
 * A peer's outbound queue: bounded, with backpressure (`offer` waits while full), closed when the
 * peer goes. `fifo` keeps arrival order; `priority` serves higher-priority channels first and FIFO
 * within a channel, so a flood on a bulk channel cannot starve consensus votes.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import type { QueueType } from "../../services/Router.ts"

/** An encoded message bound for a peer. */
export interface Outgoing {
  readonly channelId: number
  readonly priority: number
  readonly data: Uint8Array
  /** The `message_type` metric label of the message. */
  readonly messageType: string
}

/** A peer queue. Closing drops what is buffered: the peer is gone. */
export interface PeerQueue {
  /**
   * Waits for room; `false` if the queue is closed, or closes while it waits. Call it only to run
   * the effect at once: an item that fits is queued by the call itself (no effect is allocated).
   */
  readonly offer: (item: Outgoing) => Effect.Effect<boolean>
  /** Queues `item` at once if there is room; `false` (nothing queued) if full or closed. */
  readonly offerUnsafe: (item: Outgoing) => boolean
  /** Waits for an item; fails with `Closed` once the queue is closed. */
  readonly take: Effect.Effect<Outgoing, Closed>
  /**
   * The next item if `take` would return it without waiting or waking anyone (a `fifo` queue: from
   * the batch its last `take` drained); `undefined` otherwise: then `take`.
   */
  readonly pollUnsafe: () => Outgoing | undefined
  /** The send loop has written an item it took: it no longer counts in `unsent`. */
  readonly sent: () => void
  /**
   * Items accepted (or waiting for room) and not yet reported `sent`: those queued, those the send
   * loop holds, and those of senders waiting for room. While it is 0, a message written straight to
   * the connection overtakes nothing.
   */
  readonly unsent: () => number
  readonly size: () => number
  /** Messages it holds at most: `offer` waits once `size()` reaches it. */
  readonly capacity: number
  /** Payload bytes queued (for `p2p_peer_pending_send_bytes`). */
  readonly bytes: () => number
  /** Whether `close` has run. */
  readonly isClosed: () => boolean
  readonly close: Effect.Effect<void>
}

/** The queue was closed. */
export class Closed {
  readonly _tag = "Closed"
}

const succeedTrue = Effect.succeed(true)
const succeedFalse = Effect.succeed(false)

const fifo = (capacity: number): Effect.Effect<PeerQueue> =>
  Effect.map(Queue.bounded<Outgoing, Closed>(capacity), (q) => {
    // The sender takes everything queued at once and drains it locally: one wake-up per batch.
    let batch: ReadonlyArray<Outgoing> = []
    let index = 0
    let bytes = 0
    let unsent = 0
    let closed = false
    const taken = (item: Outgoing) => {
      bytes -= item.data.length
      return item
    }
    // Counted before it waits: a message waiting for room is not overtaken by `unsent() === 0`.
    // Uncounted if it ends up not queued (closed, or interrupted while waiting).
    const unqueued = Effect.sync(() => {
      if (!closed) unsent--
    })
    const queued = (item: Outgoing) => (ok: boolean) => {
      if (ok) bytes += item.data.length
      else if (!closed) unsent--
      return ok
    }
    return {
      // Fast path: room available, no waiting, no effect allocated.
      offer: (item) => {
        if (Queue.offerUnsafe(q, item)) {
          bytes += item.data.length
          unsent++
          return succeedTrue
        }
        unsent++
        return Effect.onInterrupt(Effect.map(Queue.offer(q, item), queued(item)), () => unqueued)
      },
      offerUnsafe: (item) => {
        if (!Queue.offerUnsafe(q, item)) return false
        bytes += item.data.length
        unsent++
        return true
      },
      pollUnsafe: () => (index < batch.length ? taken(batch[index++]!) : undefined),
      take: Effect.suspend(() => {
        if (index < batch.length) return Effect.succeed(taken(batch[index++]!))
        return Effect.map(Queue.takeAll(q), (items) => {
          batch = items
          index = 1
          return taken(items[0])
        })
      }),
      sent: () => {
        if (unsent > 0) unsent--
      },
      unsent: () => unsent,
      size: () => Queue.sizeUnsafe(q) + batch.length - index,
      capacity,
      bytes: () => bytes,
      isClosed: () => closed,
      // `Queue.fail` alone would leave senders waiting for room suspended forever: nobody takes from
      // a dead peer's queue. Shutting down after failing releases them with `false`, drops what is
      // buffered (the peer is gone) and keeps `Closed` as the error of every later take.
      close: Effect.sync(() => {
        closed = true
        batch = []
        index = 0
        bytes = 0
        unsent = 0
        Queue.failCauseUnsafe(q, Cause.fail(new Closed()))
        Queue.shutdownUnsafe(q)
      })
    }
  })

/**
 * Priority: one bucket per priority level; `take` serves the highest non-empty bucket. An item is
 * published only once there is room for it, so a sender interrupted while waiting leaves nothing
 * behind (a token-per-item design let an interrupted sender's message be sent anyway and leave an
 * item without a token). Waiters sleep on a signal that the next change fires, then re-check.
 */
const priority = (capacity: number): Effect.Effect<PeerQueue> =>
  Effect.sync(() => {
    const buckets = new Map<number, Array<Outgoing>>()
    let levels: Array<number> = []
    let count = 0
    let bytes = 0
    // Published only with room, so there is no waiting item to count: `count` plus what the loop holds.
    let unsent = 0
    let closed = false
    // Created only when someone waits, so the fast paths allocate nothing.
    let changed: Deferred.Deferred<void> | undefined
    const signal = () => (changed ??= Deferred.makeUnsafe<void>())
    const fire = () => {
      if (changed === undefined) return
      const fired = changed
      changed = undefined
      Deferred.doneUnsafe(fired, Effect.void)
    }
    const offerUnsafe = (item: Outgoing): boolean => {
      if (closed || count >= capacity) return false
      let bucket = buckets.get(item.priority)
      if (bucket === undefined) {
        bucket = []
        buckets.set(item.priority, bucket)
        levels = [...buckets.keys()].sort((a, b) => b - a)
      }
      bucket.push(item)
      count++
      unsent++
      bytes += item.data.length
      fire()
      return true
    }
    const offer = (item: Outgoing): Effect.Effect<boolean> =>
      Effect.suspend(() => {
        if (closed) return succeedFalse
        if (offerUnsafe(item)) return succeedTrue
        return Effect.andThen(Deferred.await(signal()), offer(item))
      })
    const pollUnsafe = (): Outgoing | undefined => {
      if (count === 0) return undefined
      for (const level of levels) {
        const bucket = buckets.get(level)!
        if (bucket.length > 0) {
          const item = bucket.shift()!
          count--
          bytes -= item.data.length
          fire()
          return item
        }
      }
      throw new Error("PeerQueue: count without item")
    }
    const take: Effect.Effect<Outgoing, Closed> = Effect.suspend(() => {
      if (count === 0) return closed ? Effect.fail(new Closed()) : Effect.andThen(Deferred.await(signal()), take)
      return Effect.succeed(pollUnsafe()!)
    })
    return {
      offer,
      offerUnsafe,
      take,
      pollUnsafe,
      sent: () => {
        if (unsent > 0) unsent--
      },
      unsent: () => unsent,
      size: () => count,
      capacity,
      bytes: () => bytes,
      isClosed: () => closed,
      close: Effect.sync(() => {
        if (closed) return
        closed = true
        buckets.clear()
        levels = []
        count = 0
        unsent = 0
        bytes = 0
        fire()
      })
    }
  })

/** A queue of `capacity` messages of the given type. */
export const make = (type: QueueType, capacity: number): Effect.Effect<PeerQueue> => (type === "fifo" ? fifo(capacity) : priority(capacity))

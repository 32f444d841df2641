/**
 * A peer's outbound queue: bounded, with backpressure (`offer` waits while full), closed when the
 * peer goes. `fifo` keeps arrival order; `priority` serves higher-priority channels first and FIFO
 * within a channel, so a flood on a bulk channel cannot starve consensus votes.
 *
 * @since 0.1.0
 */
import { Effect, Queue } from "effect"
import type { QueueType } from "../../services/Router.ts"

/** An encoded message bound for a peer. */
export interface Outgoing {
  readonly channelId: number
  readonly priority: number
  readonly data: Uint8Array
}

/** A peer queue. `take` fails with `Cause.Done`-like `Closed` once closed and drained. */
export interface PeerQueue {
  /** Waits for room; `false` if the queue is closed. */
  readonly offer: (item: Outgoing) => Effect.Effect<boolean>
  /** Waits for an item; fails once the queue is closed. */
  readonly take: Effect.Effect<Outgoing, Closed>
  readonly size: () => number
  readonly close: Effect.Effect<void>
}

/** The queue was closed. */
export class Closed {
  readonly _tag = "Closed"
}

const succeedTrue = Effect.succeed(true)

const fifo = (capacity: number): Effect.Effect<PeerQueue> =>
  Effect.map(Queue.bounded<Outgoing, Closed>(capacity), (q) => {
    // The sender takes everything queued at once and drains it locally: one wake-up per batch.
    let batch: ReadonlyArray<Outgoing> = []
    let index = 0
    return {
      // Fast path: room available, no waiting, no effect allocated.
      offer: (item) => (Queue.offerUnsafe(q, item) ? succeedTrue : Queue.offer(q, item)),
      take: Effect.suspend(() => {
        if (index < batch.length) return Effect.succeed(batch[index++]!)
        return Effect.map(Queue.takeAll(q), (items) => {
          batch = items
          index = 1
          return items[0]
        })
      }),
      size: () => Queue.sizeUnsafe(q) + batch.length - index,
      close: Effect.asVoid(Queue.fail(q, new Closed()))
    }
  })

/**
 * Priority: one bucket per priority level; `take` serves the highest non-empty bucket. A bounded
 * queue of tokens does the waiting (one token per item), so backpressure and wake-ups are Effect's own.
 */
const priority = (capacity: number): Effect.Effect<PeerQueue> =>
  Effect.map(Queue.bounded<true, Closed>(capacity), (tokens) => {
    const buckets = new Map<number, Array<Outgoing>>()
    let levels: Array<number> = []
    return {
      offer: (item) =>
        Effect.suspend(() => {
          let bucket = buckets.get(item.priority)
          if (bucket === undefined) {
            bucket = []
            buckets.set(item.priority, bucket)
            levels = [...buckets.keys()].sort((a, b) => b - a)
          }
          // Publish the item before its token: there are always at least as many items as tokens, so
          // `take` always finds one (perhaps a better one than the token's own).
          bucket.push(item)
          const b = bucket
          return Effect.map(Queue.offer(tokens, true), (ok) => {
            if (!ok) {
              const i = b.indexOf(item)
              if (i >= 0) b.splice(i, 1)
            }
            return ok
          })
        }),
      take: Effect.map(Queue.take(tokens), () => {
        for (const level of levels) {
          const bucket = buckets.get(level)!
          if (bucket.length > 0) return bucket.shift()!
        }
        throw new Error("PeerQueue: token without item")
      }),
      size: () => Queue.sizeUnsafe(tokens),
      close: Effect.asVoid(Queue.fail(tokens, new Closed()))
    }
  })

/** A queue of `capacity` messages of the given type. */
export const make = (type: QueueType, capacity: number): Effect.Effect<PeerQueue> => (type === "fifo" ? fifo(capacity) : priority(capacity))

/**
 * The MConnection's bounded buffer of received messages, between the socket's `data` callback and
 * the fibers calling `receive`.
 *
 * Unlike an Effect `Queue`, which wakes a waiting taker on the scheduler (a `setImmediate` later),
 * `wake` resumes a waiting taker at once, in the caller's tick: a message read from the socket is
 * in the consumer's hands before the callback returns, as in a plain Node `data` handler. The
 * callback adds every message a read completes first, then wakes once, so a consumer takes a
 * whole read's messages in one run without suspending in between.
 *
 * Bounded: `add` refuses past `capacity`; `awaitRoom` (for the fiber that takes over when the
 * buffer is full) waits until a take frees a slot. Closing fails waiting takers; with `drain`,
 * what is buffered is still handed out first.
 *
 * @since 0.2.0
 */
import type * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"

type Resume<A, E> = (effect: Effect.Effect<A, E>) => void

export class ReceiveBuffer<A, E> {
  readonly capacity: number
  #items: Array<A> = []
  #head = 0
  readonly #takers: Array<Resume<A, E>> = []
  readonly #roomWaiters: Array<() => void> = []
  /** Why it closed (made on first use). */
  #closed: (() => Cause.Cause<E>) | undefined

  constructor(capacity: number) {
    this.capacity = capacity
  }

  get size(): number {
    return this.#items.length - this.#head
  }

  /** Adds without waking anyone (call `wake` after a batch); false when full or closed. */
  add(item: A): boolean {
    if (this.#closed !== undefined || this.size >= this.capacity) return false
    this.#items.push(item)
    return true
  }

  /** Hands buffered items to waiting takers, which run now, in this call. */
  wake(): void {
    while (this.#takers.length > 0 && this.size > 0) this.#takers.shift()!(Effect.succeed(this.#shift()))
    if (this.#closed !== undefined && this.size === 0 && this.#takers.length > 0) {
      const cause = this.#closed()
      for (const resume of this.#takers.splice(0)) resume(Effect.failCause(cause))
    }
  }

  /** Whether a taker is waiting (a `wake` would run it). */
  get hasTaker(): boolean {
    return this.#takers.length > 0
  }

  /** The next item; waits for one; fails with the close cause once closed and empty. */
  readonly take: Effect.Effect<A, E> = Effect.suspend(() => (this.size > 0 ? Effect.succeed(this.#shift()) : this.#wait))

  readonly #wait: Effect.Effect<A, E> = Effect.callback<A, E>((resume) => {
    if (this.size > 0) return resume(Effect.succeed(this.#shift()))
    if (this.#closed !== undefined) return resume(Effect.failCause(this.#closed()))
    this.#takers.push(resume)
    return Effect.sync(() => {
      const i = this.#takers.indexOf(resume)
      if (i >= 0) this.#takers.splice(i, 1)
    })
  })

  /**
   * Closes: takers fail with `cause` once the buffer is empty (at once unless `drain`). The cause
   * is made when a taker needs it (the caller memoizes it).
   */
  close(cause: () => Cause.Cause<E>, drain: boolean): void {
    if (this.#closed !== undefined) return
    this.#closed = cause
    if (!drain) {
      this.#items = []
      this.#head = 0
    }
    this.wake()
    for (const resume of this.#roomWaiters.splice(0)) resume()
  }

  /** Waits until there is room (at once if there is, or once closed). */
  readonly awaitRoom: Effect.Effect<void> = Effect.callback<void>((resume) => {
    if (this.#closed !== undefined || this.size < this.capacity) return resume(Effect.void)
    const waiter = () => resume(Effect.void)
    this.#roomWaiters.push(waiter)
    return Effect.sync(() => {
      const i = this.#roomWaiters.indexOf(waiter)
      if (i >= 0) this.#roomWaiters.splice(i, 1)
    })
  })

  #shift(): A {
    const item = this.#items[this.#head]!
    this.#items[this.#head++] = undefined as A
    if (this.#head === this.#items.length) {
      this.#items.length = 0
      this.#head = 0
    } else if (this.#head >= 1024 && this.#head * 2 >= this.#items.length) {
      this.#items = this.#items.slice(this.#head)
      this.#head = 0
    }
    // A slot freed: a fiber waiting to add goes on.
    if (this.#roomWaiters.length > 0) this.#roomWaiters.shift()!()
    return item
  }
}

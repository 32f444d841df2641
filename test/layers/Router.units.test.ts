/**
 * docs/ARCHITECTURE.md#router: the Router's construction and unit pieces — option resolution (83), the inbound IP
 * filter (84), the per-IP connection tracker (85-87) — and the per-peer send queues.
 */
import { assert, describe, it } from "@effect/vitest"
import { Clock, Effect, Exit, Fiber, Queue, Stream } from "effect"
import * as Endpoint from "../../src/domain/Endpoint.ts"
import * as ConnTracker from "../../src/domain/router/ConnTracker.ts"
import * as PeerQueue from "../../src/layers/router/PeerQueue.ts"
import { resolveOptions } from "../../src/layers/Router.ts"
import { defaults, FilterRejected, type OptionsInput as Options } from "../../src/services/Router.ts"
import * as Assertions from "../../src/testing/Assertions.ts"
import { settle, within } from "../../src/testing/Within.ts"
import * as F from "./Router.fixtures.ts"

const base: Options = { nodeInfo: { network: "test", moniker: "unit" } }

/** The resolved options, or the error of resolving them. */
const resolve = (extra: Partial<Options>) => resolveOptions({ ...base, ...extra })

/** Whether a forked fiber is still suspended once everything runnable has run. */
const suspended = <A, E>(fiber: Fiber.Fiber<A, E>) => Effect.map(settle(1), () => fiber.pollUnsafe() === undefined)

describe("Router options", () => {
  it.effect("no options resolve to the documented defaults (queue type \"priority\", the node's default)", () =>
    Effect.gen(function* () {
      const o = yield* resolve({})
      assert.deepStrictEqual(o, {
        nodeInfo: base.nodeInfo,
        channels: [],
        queueType: defaults.queueType,
        dialTimeout: defaults.dialTimeout,
        handshakeTimeout: defaults.handshakeTimeout,
        resolveTimeout: defaults.resolveTimeout,
        maxConcurrentDials: defaults.maxConcurrentDials,
        maxConcurrentHandshakes: defaults.maxConcurrentHandshakes,
        maxPendingHandshakesPerIp: defaults.maxPendingHandshakesPerIp,
        maxPendingHandshakesPerSubnet: defaults.maxPendingHandshakesPerSubnet,
        maxIncomingConnectionAttempts: defaults.maxIncomingConnectionAttempts,
        maxIncomingConnectionsPerSubnet: defaults.maxIncomingConnectionsPerSubnet,
        incomingConnectionWindow: defaults.incomingConnectionWindow,
        peerQueueSize: defaults.peerQueueSize,
        broadcastTimeout: defaults.broadcastTimeout
      })
      assert.strictEqual(o.queueType, "priority")
    }))

  it.effect("queue types fifo and priority are accepted", () =>
    Effect.gen(function* () {
      assert.strictEqual((yield* resolve({ queueType: "fifo" })).queueType, "fifo")
      assert.strictEqual((yield* resolve({ queueType: "priority" })).queueType, "priority")
    }))

  it.effect("an unsupported queue type fails with InvalidRouterOptions naming queueType and the value", () =>
    Effect.gen(function* () {
      for (const queueType of ["fast", "wdrr", ""]) {
        const e = yield* Effect.flip(resolve({ queueType: queueType as "fifo" }))
        assert.strictEqual(e._tag, "InvalidRouterOptions")
        assert.strictEqual(e.option, "queueType")
        assert.include(e.message, JSON.stringify(queueType))
      }
    }))

  it.effect("a zero, negative, fractional-to-zero or non-finite number fails naming the option", () =>
    Effect.gen(function* () {
      const cases: ReadonlyArray<readonly [keyof Options, number]> = [
        ["dialTimeout", 0],
        ["dialTimeout", -1],
        ["handshakeTimeout", Number.NaN],
        ["handshakeTimeout", Number.POSITIVE_INFINITY],
        ["resolveTimeout", -5],
        ["maxConcurrentDials", 0],
        ["maxConcurrentDials", 0.5],
        ["maxConcurrentHandshakes", 0.9],
        ["maxIncomingConnectionAttempts", 0.5],
        ["maxIncomingConnectionAttempts", -1],
        ["incomingConnectionWindow", 0],
        ["peerQueueSize", 0.25],
        ["peerQueueSize", 0]
      ]
      for (const [option, value] of cases) {
        const exit = yield* Effect.exit(resolve({ [option]: value }))
        assert.isTrue(Exit.isFailure(exit), `${option}: ${value} should be refused`)
        const e = yield* Effect.flip(resolve({ [option]: value }))
        assert.strictEqual(e.option, option)
        assert.include(e.message, option)
      }
    }))

  it.effect("an incoming connection window below 1 ms is an error", () =>
    Effect.gen(function* () {
      const e = yield* Effect.flip(resolve({ incomingConnectionWindow: 0.5 }))
      assert.strictEqual(e.option, "incomingConnectionWindow")
      assert.strictEqual((yield* resolve({ incomingConnectionWindow: 1 })).incomingConnectionWindow, 1)
    }))

  it.effect("an empty moniker fails naming nodeInfo.moniker", () =>
    Effect.gen(function* () {
      const e = yield* Effect.flip(resolveOptions({ nodeInfo: { network: "test", moniker: "" } }))
      assert.strictEqual(e.option, "nodeInfo.moniker")
    }))

  it.effect("building a router with a bad option fails with the same error", () =>
    Effect.gen(function* () {
      const e = yield* Effect.flip(F.makeNode({ router: { queueType: "fast" as "fifo" } }))
      assert.strictEqual((e as { _tag: string })._tag, "InvalidRouterOptions")
    }).pipe(Effect.scoped))

  it.effect("building a router with an invalid declared channel fails with InvalidChannelDescriptor", () =>
    Effect.gen(function* () {
      const e = yield* Effect.flip(F.makeNode({ channels: [F.stringChannel(1, { priority: 0 })] }))
      assert.strictEqual((e as { _tag: string })._tag, "InvalidChannelDescriptor")
    }).pipe(Effect.scoped))
})

describe("Router inbound IP filter", () => {
  it.effect("a rejecting IP filter is called exactly once, with the remote endpoint, and the connection is never handshaken", () =>
    Effect.gen(function* () {
      const seen: Array<Endpoint.Endpoint> = []
      const node = yield* F.makeNode({
        router: {
          filterPeerByIp: (endpoint) =>
            Effect.suspend(() => {
              seen.push(endpoint)
              return Effect.fail(new FilterRejected({ message: "not on the allow list" }))
            })
        }
      })
      const conn = yield* F.makeConnection(F.presents(F.peerOf(F.key(1))))
      yield* node.transport.incoming(conn)
      yield* within(100, "the filtered connection to close", conn.awaitClosed)
      yield* settle(10)
      assert.strictEqual(seen.length, 1)
      assert.strictEqual(Endpoint.format(seen[0]!), Endpoint.format(conn.remoteEndpoint))
      assert.strictEqual(conn.handshakes(), 0)
      assert.deepStrictEqual(yield* node.router.peers, [])
      assert.deepStrictEqual(yield* node.peerManager.peers, [])
    }).pipe(Effect.scoped))

  it.effect("an accepting IP filter lets the connection through to the handshake", () =>
    Effect.gen(function* () {
      let calls = 0
      const node = yield* F.makeNode({ router: { filterPeerByIp: () => Effect.sync(() => void calls++) } })
      const peer = F.key(2)
      const conn = yield* F.makeConnection(F.presents(F.peerOf(peer)))
      yield* node.transport.incoming(conn)
      yield* within(100, "the peer to be routed", Effect.repeat(node.router.peers, { until: (ps) => ps.length === 1 }))
      assert.strictEqual(calls, 1)
      assert.strictEqual(conn.handshakes(), 1)
      assert.isFalse(conn.isClosed())
    }).pipe(Effect.scoped))
})

describe("ConnTracker", () => {
  /** IPs with at least one open connection: the original's `Len()`. */
  const live = (t: ConnTracker.ConnTracker) => [...t.entries.values()].filter((e) => e.count > 0).length
  const ip = (n: number) => `127.0.${n >> 8}.${n & 0xff}`
  const admit = (t: ConnTracker.ConnTracker, address: string, now: number) => {
    const r = ConnTracker.add(t, address, now)
    if ("rejected" in r) throw new Error(`expected ${address} to be admitted at ${now}: ${r.rejected}`)
    return r.tracker
  }

  for (const [name, max, window] of [["small (10, 1 s)", 10, 1_000], ["large (100, 1 h)", 100, 3_600_000]] as const) {
    describe(name, () => {
      it("a new tracker is empty", () => {
        const t = ConnTracker.make(max, window)
        assert.strictEqual(ConnTracker.size(t), 0)
        assert.strictEqual(live(t), 0)
      })

      it("adding one IP 101 times tracks one IP, capped at max connections", () => {
        let t = ConnTracker.make(max, window)
        let admitted = 0
        for (let i = 0; i < 101; i++) {
          const r = ConnTracker.add(t, "10.0.0.1", 0)
          if ("tracker" in r) {
            t = r.tracker
            admitted++
          } else assert.include(r.rejected, "maximum")
        }
        assert.strictEqual(admitted, max)
        assert.strictEqual(ConnTracker.size(t), 1)
        assert.strictEqual(t.entries.get("10.0.0.1")!.count, max)
      })

      it("100 distinct IPs are 100 entries", () => {
        let t = ConnTracker.make(max, window)
        for (let i = 0; i < 100; i++) t = admit(t, ip(i), 0)
        assert.strictEqual(ConnTracker.size(t), 100)
        assert.strictEqual(live(t), 100)
      })

      it("100 add/remove cycles leave no IP with an open connection", () => {
        let t = ConnTracker.make(max, window)
        for (let i = 0; i < 100; i++) {
          t = admit(t, ip(i), i)
          t = ConnTracker.remove(t, ip(i), i)
        }
        assert.strictEqual(live(t), 0)
      })

      it("idle IPs are forgotten once their window has passed, so the map stays bounded", () => {
        let t = ConnTracker.make(max, window)
        for (let i = 0; i < 100; i++) {
          t = admit(t, ip(i), 0)
          t = ConnTracker.remove(t, ip(i), 0)
        }
        // Within the window every idle IP is remembered (it may not reconnect yet)...
        assert.strictEqual(ConnTracker.size(t), 100)
        // ...and the next release after the window forgets them all.
        t = admit(t, "10.9.9.9", window)
        t = ConnTracker.remove(t, "10.9.9.9", window)
        assert.strictEqual(ConnTracker.size(t), 1)
      })
    })
  }

  it("86: with a 1 µs window, add, 2 µs later add again: both succeed", () => {
    let t = ConnTracker.make(10, 0.001)
    t = admit(t, "10.0.0.1", 0)
    t = admit(t, "10.0.0.1", 0.002)
    assert.strictEqual(t.entries.get("10.0.0.1")!.count, 2)
  })

  it("87: with a 100 ms window, add, remove, add fails; after the window, add succeeds", () => {
    let t = ConnTracker.make(10, 100)
    t = admit(t, "10.0.0.1", 0)
    t = ConnTracker.remove(t, "10.0.0.1", 0)
    const again = ConnTracker.add(t, "10.0.0.1", 99)
    assert.isTrue("rejected" in again)
    assert.include((again as { rejected: string }).rejected, "within 100 ms")
    t = admit(t, "10.0.0.1", 100)
    assert.strictEqual(t.entries.get("10.0.0.1")!.count, 1)
  })

  it("the window applies only to an IP with no open connection", () => {
    let t = ConnTracker.make(10, 100)
    t = admit(t, "10.0.0.1", 0)
    t = admit(t, "10.0.0.1", 1)
    t = ConnTracker.remove(t, "10.0.0.1", 2)
    t = admit(t, "10.0.0.1", 3)
    assert.strictEqual(t.entries.get("10.0.0.1")!.count, 2)
  })

  it("a full IP may connect again as soon as one of its connections closes", () => {
    let t = ConnTracker.make(2, 100)
    t = admit(t, "10.0.0.1", 0)
    t = admit(t, "10.0.0.1", 0)
    assert.isTrue("rejected" in ConnTracker.add(t, "10.0.0.1", 0))
    t = ConnTracker.remove(t, "10.0.0.1", 0)
    t = admit(t, "10.0.0.1", 0)
    assert.strictEqual(t.entries.get("10.0.0.1")!.count, 2)
  })

  it("IPs are independent", () => {
    let t = ConnTracker.make(1, 100)
    t = admit(t, "10.0.0.1", 0)
    t = admit(t, "10.0.0.2", 0)
    assert.isTrue("rejected" in ConnTracker.add(t, "10.0.0.1", 0))
  })

  it("releasing an unknown IP changes nothing", () => {
    const t = ConnTracker.make(1, 100)
    assert.strictEqual(ConnTracker.remove(t, "10.0.0.1", 0), t)
  })

  it("the tracker is immutable: add and remove return new trackers", () => {
    const t0 = ConnTracker.make(1, 100)
    const t1 = admit(t0, "10.0.0.1", 0)
    assert.strictEqual(ConnTracker.size(t0), 0)
    ConnTracker.remove(t1, "10.0.0.1", 0)
    assert.strictEqual(t1.entries.get("10.0.0.1")!.count, 1)
  })
})

describe("PeerQueue", () => {
  const item = (channelId: number, priority: number, n: number): PeerQueue.Outgoing => ({ channelId, priority, data: Uint8Array.of(n), messageType: "test_Message" })
  const drain = (q: PeerQueue.PeerQueue, n: number) =>
    Effect.forEach(Array.from({ length: n }), () => Effect.map(q.take, (i) => `${i.channelId}:${i.data[0]}`))

  it.effect("fifo keeps arrival order across channels", () =>
    Effect.gen(function* () {
      const q = yield* PeerQueue.make("fifo", 8)
      for (const [c, p, n] of [[1, 1, 0], [2, 9, 1], [1, 1, 2], [3, 5, 3]] as const) assert.isTrue(yield* q.offer(item(c, p, n)))
      assert.deepStrictEqual(yield* drain(q, 4), ["1:0", "2:1", "1:2", "3:3"])
    }))

  it.effect("priority serves higher-priority channels first and FIFO within a channel", () =>
    Effect.gen(function* () {
      const q = yield* PeerQueue.make("priority", 8)
      for (const [c, p, n] of [[1, 1, 0], [2, 9, 1], [1, 1, 2], [3, 5, 3], [2, 9, 4]] as const) assert.isTrue(yield* q.offer(item(c, p, n)))
      assert.strictEqual(q.size(), 5)
      assert.deepStrictEqual(yield* drain(q, 5), ["2:1", "2:4", "3:3", "1:0", "1:2"])
    }))

  for (const type of ["fifo", "priority"] as const) {
    describe(type, () => {
      it.effect("offer waits while the queue is full (backpressure), and resumes after a take", () =>
        Effect.gen(function* () {
          const q = yield* PeerQueue.make(type, 2)
          yield* q.offer(item(1, 1, 0))
          yield* q.offer(item(1, 1, 1))
          const blocked = yield* Effect.forkChild(q.offer(item(1, 1, 2)))
          assert.isTrue(yield* suspended(blocked))
          yield* q.take
          assert.isTrue(yield* Fiber.join(blocked))
          assert.strictEqual(q.size(), 2)
        }))

      it.effect("take waits for an item", () =>
        Effect.gen(function* () {
          const q = yield* PeerQueue.make(type, 2)
          const taker = yield* Effect.forkChild(q.take)
          assert.isTrue(yield* suspended(taker))
          yield* q.offer(item(1, 1, 7))
          assert.strictEqual((yield* Fiber.join(taker)).data[0], 7)
        }))

      it.effect("after close, offer returns false and take fails with Closed", () =>
        Effect.gen(function* () {
          const q = yield* PeerQueue.make(type, 2)
          yield* q.close
          assert.isFalse(yield* q.offer(item(1, 1, 0)))
          const e = yield* Effect.flip(q.take)
          assert.instanceOf(e, PeerQueue.Closed)
          yield* q.close // idempotent
        }))

      it.effect("close wakes a waiting take with Closed", () =>
        Effect.gen(function* () {
          const q = yield* PeerQueue.make(type, 2)
          const taker = yield* Effect.forkChild(Effect.flip(q.take))
          assert.isTrue(yield* suspended(taker))
          yield* q.close
          assert.instanceOf(yield* Fiber.join(taker), PeerQueue.Closed)
        }))

      it.effect("close releases a sender waiting on a full queue with false (the peer is gone; the message is dropped)", () =>
        Effect.gen(function* () {
          const q = yield* PeerQueue.make(type, 1)
          yield* q.offer(item(1, 1, 0))
          const blocked = yield* Effect.forkChild(q.offer(item(1, 1, 1)))
          assert.isTrue(yield* suspended(blocked))
          yield* q.close
          const result = yield* within(10, "the blocked sender to be released", Fiber.join(blocked))
          assert.isFalse(result)
        }))

      it.effect("an interrupted offer leaves nothing behind: the message is not sent later", () =>
        Effect.gen(function* () {
          const q = yield* PeerQueue.make(type, 1)
          yield* q.offer(item(1, 1, 0))
          const blocked = yield* Effect.forkChild(q.offer(item(1, 1, 1)))
          assert.isTrue(yield* suspended(blocked))
          yield* Fiber.interrupt(blocked)
          yield* q.offer(item(1, 1, 2)).pipe(Effect.forkChild)
          assert.deepStrictEqual(yield* drain(q, 2), ["1:0", "1:2"])
          const extra = yield* Effect.forkChild(q.take)
          assert.isTrue(yield* suspended(extra), "no third item may remain")
          assert.strictEqual(q.size(), 0)
        }))

      it.effect("bytes() counts the payload bytes queued, through waiting offers, takes and close", () =>
        Effect.gen(function* () {
          const q = yield* PeerQueue.make(type, 2)
          const sized = (n: number): PeerQueue.Outgoing => ({ channelId: 1, priority: 1, data: new Uint8Array(n), messageType: "test_Message" })
          yield* q.offer(sized(10))
          yield* q.offer(sized(20))
          const blocked = yield* Effect.forkChild(q.offer(sized(40)))
          assert.isTrue(yield* suspended(blocked))
          assert.strictEqual(q.bytes(), 30)
          assert.strictEqual((yield* q.take).data.length, 10)
          assert.isTrue(yield* within(10, "the waiting offer", Fiber.join(blocked)))
          assert.strictEqual(q.bytes(), 60)
          yield* q.take
          assert.strictEqual(q.bytes(), 40)
          yield* q.close
          assert.strictEqual(q.bytes(), 0)
        }))
    })
  }
})

describe("Assertions.probe", () => {
  it.effect("reports a stream that ends with an interruption as ended, at once, not as a timeout", () =>
    Effect.gen(function* () {
      const q = yield* Queue.bounded<number>(1)
      const p = yield* Assertions.probe(Stream.fromQueue(q))
      yield* Queue.shutdown(q)
      const start = yield* Clock.currentTimeMillis
      const e = yield* Effect.flip(Assertions.receive(p, 1, 1_000))
      assert.include(e.message, "stream ended")
      assert.isBelow((yield* Clock.currentTimeMillis) - start, 10)
    }).pipe(Effect.scoped))
})

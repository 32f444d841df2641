/**
 * The PeerManager service: a thin effectful shell around the pure transitions in `domain/peermanager/`.
 * It serialises transitions, writes changed peers through the `PeerStore` before committing them,
 * publishes updates to per-subscriber bounded queues, and wakes `dialNext`/`evictNext` on state
 * changes and at the next retry or cooldown deadline (through `Clock`, so `TestClock` drives it).
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Random from "effect/Random"
import * as Result from "effect/Result"
import * as Semaphore from "effect/Semaphore"
import * as Stream from "effect/Stream"
import type * as Scope from "effect/Scope"
import * as Ban from "../domain/Ban.ts"
import type * as NodeAddress from "../domain/NodeAddress.ts"
import type * as NodeId from "../domain/NodeId.ts"
import * as PeerRecord from "../domain/PeerRecord.ts"
import type * as PeerUpdate from "../domain/PeerUpdate.ts"
import * as Metrics from "./Metrics.ts"
import { NodeIdentity } from "../services/NodeIdentity.ts"
import {
  ConnectionRejected,
  InvalidPeerAddress,
  InvalidSelfId,
  PeerManager,
  SubscriberLagged,
  decodeOptions,
  defaults,
  type InvalidPeerManagerOptions,
  type OptionsInput,
  type PeerStatus
} from "../services/PeerManager.ts"
import { PeerStore, type PeerStoreError } from "../services/PeerStore.ts"
import * as Advertise from "../domain/peermanager/Advertise.ts"
import * as Bans from "../domain/peermanager/Bans.ts"
import * as Connections from "../domain/peermanager/Connections.ts"
import * as Dialing from "../domain/peermanager/Dialing.ts"
import * as Peers from "../domain/peermanager/Peers.ts"
import * as State from "../domain/peermanager/State.ts"
import * as Signal from "./Signal.ts"

export * from "../services/PeerManager.ts"


/** `before`, less the dialing marks and upgrade reservations that `after` dropped. */
const releasesOnly = (before: State.State, after: State.State): State.State => ({
  ...before,
  dialing: new Set([...before.dialing].filter((id) => after.dialing.has(id))),
  upgrading: new Map([...before.upgrading].filter(([from, to]) => after.upgrading.get(from) === to))
})

/** Builds a PeerManager for `self` over the `PeerStore`, loading the stored peers. */
export const make = Effect.fn("PeerManager.make")(function* (
  self: NodeId.NodeId,
  input: OptionsInput = {}
): Effect.fn.Return<PeerManager["Service"], InvalidPeerManagerOptions | InvalidSelfId | PeerStoreError, PeerStore | Scope.Scope> {
  if (!/^[0-9a-f]{40}$/.test(self)) return yield* new InvalidSelfId({ message: `PeerManager self ID ${JSON.stringify(self)} is not a node ID` })
  const options = yield* Effect.fromResult(decodeOptions(input))
  const store = yield* PeerStore
  const scope = yield* Effect.scope
  const clock = yield* Clock.Clock
  const lock = yield* Semaphore.make(1)
  const dialSignal = yield* Signal.make
  const evictSignal = yield* Signal.make
  const subscribers = new Set<Queue.Queue<PeerUpdate.PeerUpdate, SubscriberLagged | Cause.Done>>()
  /** Set when the manager's scope closes: waiters stop (interrupted) instead of blocking forever. */
  let closed = false
  let state = State.empty(self, options)

  const publish = (updates: ReadonlyArray<PeerUpdate.PeerUpdate>) => {
    for (const update of updates) {
      for (const q of subscribers) {
        if (!Queue.offerUnsafe(q, update)) {
          subscribers.delete(q)
          Queue.failCauseUnsafe(q, Cause.fail(new SubscriberLagged({
            capacity: options.subscriberBufferSize,
            message: `peer-update subscriber fell ${options.subscriberBufferSize} updates behind and was dropped; subscribe again`
          })))
        }
      }
    }
  }

  // The gauges follow the state after every commit, but only a value that changed is written: a
  // metric update costs more than most transitions. They are written to the registry of the
  // context the manager was built in (a memory node's own, in simulations).
  const metricsContext = yield* Effect.context<never>()
  const bansOfNodes = Metric.withAttributes(Metrics.bans, { kind: "node" })
  const bansOfNetworks = Metric.withAttributes(Metrics.bans, { kind: "network" })
  const gauges = { stored: -1, incoming: -1, outgoing: -1, banNodes: -1, banNetworks: -1 }
  const setGauge = (key: keyof typeof gauges, metric: Metric.Metric<number, unknown>, value: number) => {
    if (gauges[key] === value) return
    gauges[key] = value
    metric.updateUnsafe(value, metricsContext)
  }
  // Peers on grace are about to go: they are not counted as connected here.
  const recordMetrics = (now: number) => {
    const counts = State.connectionCounts(state)
    setGauge("stored", Metrics.peersStored, state.peers.size)
    setGauge("incoming", Metrics.peersConnectedIncoming, counts.incomingNotOnGrace)
    setGauge("outgoing", Metrics.peersConnectedOutgoing, counts.outgoingNotOnGrace)
    if (state.bans.size === 0 && gauges.banNodes === 0 && gauges.banNetworks === 0) return
    let nodes = 0
    let networks = 0
    for (const b of state.bans.values()) {
      if (!Ban.isActive(b, now)) continue
      if (b.subject._tag === "Node") nodes++
      else networks++
    }
    setGauge("banNodes", bansOfNodes, nodes)
    setGauge("banNetworks", bansOfNetworks, networks)
  }

  /** Counts and logs a ban the manager made on its own (repeated misbehaviour or failed handshakes). */
  const announceBan = (b: Ban.Ban | undefined) =>
    b === undefined
      ? Effect.void
      : Effect.andThen(Metric.update(Metrics.bansAdded, 1), Effect.logWarning(`banned ${Ban.formatSubject(b.subject)} until ${new Date(b.until).toISOString()}: ${b.reason}`))

  /** A subject and a duration from a caller, checked. */
  const banOf = Effect.fn("PeerManager.banOf")(function* (subject: string, duration: Duration.Input | undefined, reason: string, now: number) {
    const parsed = yield* Effect.fromResult(Ban.parseSubject(subject))
    const d = duration === undefined ? Option.some(defaults.banDuration) : Duration.fromInput(duration)
    if (Option.isNone(d) || Duration.toMillis(d.value) <= 0) {
      return yield* new Ban.InvalidBanSubject({ subject, message: `cannot ban ${subject} for ${JSON.stringify(duration)}: use a positive duration such as "1 hour", or Infinity` })
    }
    const ms = Duration.toMillis(d.value)
    return { subject: parsed, since: now, until: Number.isFinite(ms) ? now + ms : Number.POSITIVE_INFINITY, reason } satisfies Ban.Ban
  })

  /** The rows an outcome writes, in order: peers, removals, bans, ban removals. */
  const write = (outcome: State.Outcome<unknown>): Effect.Effect<void, PeerStoreError> =>
    Effect.gen(function* () {
      for (const p of outcome.persist) yield* store.put(p)
      for (const id of outcome.remove) yield* store.remove(id)
      for (const b of outcome.persistBans) yield* store.putBan(b)
      for (const key of outcome.removeBans) yield* store.removeBan(key)
    })

  /** After the state moved: publish, wake, update the gauges. */
  const announce = (outcome: State.Outcome<unknown>, now: number) => {
    publish(outcome.updates)
    if (outcome.wakeDial) dialSignal.fireUnsafe()
    if (outcome.wakeEvict) evictSignal.fireUnsafe()
    recordMetrics(now)
  }

  /**
   * Writes the outcome's rows, then commits it. When a write fails, the state stays as it was
   * (memory never moves ahead of disk) except for releases: dials that ended and upgrade
   * reservations given up, so no slot leaks. A connection whose record could not be written is
   * therefore not admitted, matching the error the caller gets (it closes the connection). An
   * outcome that writes nothing (most dial and evict decisions) commits without suspending.
   * Call it under the lock, from inside an effect.
   */
  const commit = <A>(outcome: State.Outcome<A>, now: number): Effect.Effect<A, PeerStoreError> => {
    if (outcome.persist.length === 0 && outcome.remove.length === 0 && outcome.persistBans.length === 0 && outcome.removeBans.length === 0) {
      state = outcome.state
      announce(outcome, now)
      return Effect.succeed(outcome.value)
    }
    const before = state
    return Effect.flatMap(Effect.exit(write(outcome)), (written) => {
      state = written._tag === "Success" ? outcome.state : releasesOnly(before, outcome.state)
      announce(outcome, now)
      return written._tag === "Failure" ? Effect.failCause(written.cause) : Effect.succeed(outcome.value)
    })
  }

  /** The `Clock` time (the manager's clock, from the context it was built in), read without an effect of its own. */
  const withNow = <A, E>(f: (now: number) => Effect.Effect<A, E>): Effect.Effect<A, E> =>
    Effect.suspend(() => f(clock.currentTimeMillisUnsafe()))

  /** Runs a transition under the lock with the current time. */
  const transition = <A>(f: (s: State.State, now: number) => State.Outcome<A>): Effect.Effect<A, PeerStoreError> =>
    lock.withPermit(withNow((now) => commit(f(state, now), now)))

  /** Like `transition` for outcomes that write nothing. */
  const transitionPure = <A>(f: (s: State.State, now: number) => State.Outcome<A>): Effect.Effect<A> =>
    Effect.orDie(transition(f))

  // Load the stored peers and bans.
  const loaded = yield* store.load
  yield* transition((s, now) => Peers.load(s, loaded, now))
  const loadedBans = yield* store.loadBans
  yield* transition((s, now) => Bans.load(s, loadedBans, now))

  const tryDialNext = transitionPure((s, now) => Dialing.tryDialNext(s, now))

  /**
   * A loop in the caller's fiber: under the lock, the `try` transition; when it yields nothing,
   * the current signal and the next deadline, then a wait for the signal, which a timer of the
   * manager's scope fires at the deadline (`Signal.timer`: one timer for every waiter and every
   * wait whose deadline has not moved).
   */
  const waitLoop = <A>(signal: Signal.Signal, attempt: (s: State.State, now: number) => State.Outcome<A | undefined>, deadline: (s: State.State, now: number) => number | undefined): Effect.Effect<A> => {
    const arm = Signal.timer(signal, scope)
    type Step = { readonly value: A | undefined; readonly signal: Deferred.Deferred<void>; readonly wakeAt: number | undefined; readonly now: number }
    const step: Effect.Effect<Step> = lock.withPermit(withNow((now) =>
      Effect.map(Effect.orDie(commit(attempt(state, now), now)), (value): Step => ({
        value,
        signal: signal.get(),
        wakeAt: value === undefined ? deadline(state, now) : undefined,
        now
      }))))
    const loop: Effect.Effect<A> = Effect.suspend(() => {
      if (closed) return Effect.interrupt
      return Effect.flatMap(step, (s) => {
        if (s.value !== undefined) return Effect.succeed(s.value)
        const wait = Deferred.await(s.signal)
        return Effect.andThen(s.wakeAt === undefined ? wait : Effect.andThen(arm(s.wakeAt, s.now), wait), loop)
      })
    })
    return loop
  }

  const dialNext: Effect.Effect<NodeAddress.NodeAddress> = waitLoop(dialSignal, Dialing.tryDialNext, Dialing.nextWakeAt)

  const tryEvictNext = transitionPure((s, now) => Connections.tryEvictNext(s, now))

  const evictNext: Effect.Effect<NodeId.NodeId> = waitLoop(evictSignal, Connections.tryEvictNext, (s) => Connections.nextEvictAt(s))

  const statusOf = (s: State.State, p: PeerRecord.PeerRecord): PeerStatus => ({
    nodeId: p.id,
    score: PeerRecord.score(p),
    state: s.ready.has(p.id) ? "ready" : s.connected.has(p.id) ? "connected" : s.dialing.has(p.id) ? "dialing" : "candidate",
    direction: s.connected.get(p.id),
    addresses: p.addresses.map((a) => a.address),
    persistent: p.persistent,
    inactive: p.inactive
  })

  const subscribe = Effect.gen(function* () {
    const q = yield* Queue.bounded<PeerUpdate.PeerUpdate, SubscriberLagged | Cause.Done>(options.subscriberBufferSize)
    // Ending (rather than shutting down) the queue ends the subscriber's stream normally instead of
    // interrupting the fiber that reads it.
    yield* Effect.acquireRelease(
      Effect.sync(() => {
        if (closed) Queue.endUnsafe(q)
        else subscribers.add(q)
      }),
      () => Effect.andThen(Effect.sync(() => subscribers.delete(q)), Queue.end(q))
    )
    return Stream.fromQueue(q)
  })

  // Closing the manager ends every subscription's stream and stops every waiting dialNext and
  // evictNext (nothing keeps running after close).
  yield* Effect.addFinalizer(() =>
    Effect.sync(() => {
      closed = true
      for (const q of subscribers) Queue.endUnsafe(q)
      subscribers.clear()
      dialSignal.fireUnsafe()
      evictSignal.fireUnsafe()
    })
  )

  return PeerManager.of({
    options,
    add: (address, options) =>
      lock.withPermit(withNow((now): Effect.Effect<boolean, InvalidPeerAddress | PeerStoreError> => {
        const outcome = Peers.add(state, address, now, options?.source)
        return Result.isFailure(outcome) ? Effect.fail(new InvalidPeerAddress(outcome.failure)) : commit(outcome.success, now)
      })),
    addAll: (addresses, options) => transition((s, now) => Peers.addAll(s, addresses, now, options?.source)),
    dialNext,
    tryDialNext,
    dialFailed: (address) =>
      Effect.tap(
        // Randomness through the `Random` service, like time through `Clock`, so tests can seed it.
        Effect.flatMap(Random.next, (jitter) => transition((s, now) => Dialing.dialFailed(s, address, now, jitter))),
        () => Metric.update(Metrics.peersConnectedFailure, 1)
      ),
    dialed: (address, ip) =>
      Effect.flatMap(transition((s, now) => Dialing.dialed(s, address, now, ip)), (rejected) =>
        rejected === undefined ? Metric.update(Metrics.peersConnectedSuccess, 1) : Effect.fail(new ConnectionRejected(rejected))),
    accepted: (nodeId, ip) =>
      Effect.flatMap(transition((s, now) => Connections.accepted(s, nodeId, now, ip)), (rejected) => (rejected === undefined ? Effect.void : Effect.fail(new ConnectionRejected(rejected)))),
    ready: (nodeId, channels) => transitionPure((s) => Connections.ready(s, nodeId, channels)),
    disconnected: (nodeId) =>
      Effect.flatMap(Random.next, (jitter) => transitionPure((s, now) => Connections.disconnected(s, nodeId, now, jitter))),
    evictNext,
    tryEvictNext,
    errored: (nodeId, fatal, misbehaviour = true) => Effect.flatMap(transition((s, now) => Connections.errored(s, nodeId, fatal, now, misbehaviour)), announceBan),
    ban: (subject, options = {}) =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        const b = yield* banOf(subject, options.duration, options.reason ?? "banned", now)
        yield* transition((s, at) => Bans.ban(s, b, at))
        yield* Metric.update(Metrics.bansAdded, 1)
        yield* Effect.logInfo(`banned ${Ban.formatSubject(b.subject)} ${Number.isFinite(b.until) ? `until ${new Date(b.until).toISOString()}` : "for good"}: ${b.reason}`)
        return b
      }),
    unban: (subject) =>
      Effect.flatMap(Effect.fromResult(Ban.parseSubject(subject)), (parsed) => transition((s, now) => Bans.unban(s, parsed, now))),
    bans: Effect.flatMap(Clock.currentTimeMillis, (now) => Effect.sync(() => Bans.active(state, now))),
    checkIp: (ip) => Effect.flatMap(Clock.currentTimeMillis, (now) => Effect.sync(() => Bans.ipBan(state, ip, now))),
    handshakeFailed: (ip) => Effect.flatMap(transition((s, now) => Connections.handshakeFailed(s, ip, now)), announceBan),
    report: (nodeId, status) => transition((s) => Connections.report(s, nodeId, status)),
    inactivate: (nodeId) =>
      Effect.tap(transition((s) => Connections.inactivate(s, nodeId)), () => Metric.update(Metrics.peersInactivated, 1)),
    advertise: (requester, limit) =>
      Effect.withFiber((fiber) => {
        const random = fiber.getRef(Random.Random)
        const now = fiber.getRef(Clock.Clock).currentTimeMillisUnsafe()
        return Effect.succeed(Advertise.advertise(state, requester, limit, () => random.nextDoubleUnsafe(), now))
      }),
    subscribe,
    status: (nodeId) => Effect.sync(() => (state.ready.has(nodeId) ? "up" : "down")),
    peers: Effect.sync(() => State.ranked(state).map((p) => statusOf(state, p))),
    peerCount: Effect.sync(() => state.peers.size),
    scores: Effect.sync(() => new Map(State.ranked(state).map((p) => [p.id, PeerRecord.score(p)] as const))),
    addresses: (nodeId) => Effect.sync(() => state.peers.get(nodeId)?.addresses.map((a) => a.address) ?? []),
    isFull: Effect.sync(() => Connections.isFull(state)),
    onGrace: (nodeId) => Effect.sync(() => state.grace.has(nodeId))
  })
})

/** The PeerManager of the node `NodeIdentity` names, over the `PeerStore`. */
export const layer = (
  options: OptionsInput = {}
): Layer.Layer<PeerManager, InvalidPeerManagerOptions | InvalidSelfId | PeerStoreError, PeerStore | NodeIdentity> =>
  Layer.effect(PeerManager, Effect.gen(function* () {
    const { key } = yield* NodeIdentity
    return yield* make(key.nodeId, options)
  }))

/**
 * The PeerManager service: a thin effectful shell around the pure transitions in `domain/peermanager/`.
 * It serialises transitions, writes changed peers through the `PeerStore` before committing them,
 * publishes updates to per-subscriber bounded queues, and wakes `dialNext`/`evictNext` on state
 * changes and at the next retry or cooldown deadline (through `Clock`, so `TestClock` drives it).
 *
 * @since 0.1.0
 */
import { Cause, Clock, Deferred, Duration, Effect, Layer, Metric, Option, Queue, Random, Result, Semaphore, Stream, type Scope } from "effect"
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

  // Peers on grace are about to go: they are not counted as connected here.
  const recordMetrics = Effect.suspend(() => {
    let incoming = 0
    let outgoing = 0
    for (const [id, d] of state.connected) {
      if (state.grace.has(id)) continue
      if (d === "incoming") incoming++
      else outgoing++
    }
    return Effect.all([
      Metric.update(Metrics.peersStored, state.peers.size),
      Metric.update(Metrics.peersConnectedIncoming, incoming),
      Metric.update(Metrics.peersConnectedOutgoing, outgoing),
      recordBanMetrics
    ], { discard: true })
  })

  const recordBanMetrics = Effect.flatMap(Clock.currentTimeMillis, (now) => {
    let nodes = 0
    let networks = 0
    for (const b of state.bans.values()) {
      if (!Ban.isActive(b, now)) continue
      if (b.subject._tag === "Node") nodes++
      else networks++
    }
    return Effect.all([
      Metric.update(Metric.withAttributes(Metrics.bans, { kind: "node" }), nodes),
      Metric.update(Metric.withAttributes(Metrics.bans, { kind: "network" }), networks)
    ], { discard: true })
  })

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

  /**
   * Writes the outcome's rows, then commits it. When a write fails, the state stays as it was
   * (memory never moves ahead of disk) except for releases: dials that ended and upgrade
   * reservations given up, so no slot leaks. A connection whose record could not be written is
   * therefore not admitted, matching the error the caller gets (it closes the connection).
   */
  const commit = <A>(outcome: State.Outcome<A>): Effect.Effect<A, PeerStoreError> =>
    Effect.gen(function* () {
      const before = state
      const written = yield* Effect.exit(Effect.gen(function* () {
        for (const p of outcome.persist) yield* store.put(p)
        for (const id of outcome.remove) yield* store.remove(id)
        for (const b of outcome.persistBans) yield* store.putBan(b)
        for (const key of outcome.removeBans) yield* store.removeBan(key)
      }))
      state = written._tag === "Success" ? outcome.state : releasesOnly(before, outcome.state)
      publish(outcome.updates)
      if (outcome.wakeDial) yield* dialSignal.fire
      if (outcome.wakeEvict) yield* evictSignal.fire
      yield* recordMetrics
      if (written._tag === "Failure") return yield* Effect.failCause(written.cause)
      return outcome.value
    })

  /** Runs a transition under the lock with the current time. */
  const transition = <A>(f: (s: State.State, now: number) => State.Outcome<A>): Effect.Effect<A, PeerStoreError> =>
    lock.withPermit(Effect.flatMap(Clock.currentTimeMillis, (now) => commit(f(state, now))))

  /** Like `transition` for outcomes that write nothing. */
  const transitionPure = <A>(f: (s: State.State, now: number) => State.Outcome<A>): Effect.Effect<A> =>
    Effect.orDie(transition(f))

  // Load the stored peers and bans.
  const loaded = yield* store.load
  yield* transition((s) => Peers.load(s, loaded))
  const loadedBans = yield* store.loadBans
  yield* transition((s, now) => Bans.load(s, loadedBans, now))

  const tryDialNext = transitionPure((s, now) => Dialing.tryDialNext(s, now))

  const dialNext: Effect.Effect<NodeAddress.NodeAddress> = Effect.gen(function* () {
    while (true) {
      if (closed) return yield* Effect.interrupt
      const step = yield* lock.withPermit(Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        const address = yield* Effect.orDie(commit(Dialing.tryDialNext(state, now)))
        return { address, signal: dialSignal.get(), wakeAt: address === undefined ? Dialing.nextWakeAt(state, now) : undefined, now }
      }))
      if (step.address !== undefined) return step.address
      const wait = Deferred.await(step.signal)
      yield* step.wakeAt === undefined ? wait : Effect.raceFirst(wait, Effect.sleep(Math.max(1, Math.ceil(step.wakeAt - step.now))))
    }
  })

  const tryEvictNext = transitionPure((s, now) => Connections.tryEvictNext(s, now))

  const evictNext: Effect.Effect<NodeId.NodeId> = Effect.gen(function* () {
    while (true) {
      if (closed) return yield* Effect.interrupt
      const step = yield* lock.withPermit(Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        const id = yield* Effect.orDie(commit(Connections.tryEvictNext(state, now)))
        return { id, signal: evictSignal.get(), wakeAt: id === undefined ? Connections.nextEvictAt(state) : undefined, now }
      }))
      if (step.id !== undefined) return step.id
      const wait = Deferred.await(step.signal)
      yield* step.wakeAt === undefined ? wait : Effect.raceFirst(wait, Effect.sleep(Math.max(1, Math.ceil(step.wakeAt - step.now))))
    }
  })

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
    Effect.gen(function* () {
      closed = true
      for (const q of subscribers) Queue.endUnsafe(q)
      subscribers.clear()
      yield* dialSignal.fire
      yield* evictSignal.fire
    })
  )

  return PeerManager.of({
    options,
    add: (address, options) =>
      lock.withPermit(Effect.gen(function* () {
        const outcome = Peers.add(state, address, yield* Clock.currentTimeMillis, options?.source)
        if (Result.isFailure(outcome)) return yield* new InvalidPeerAddress(outcome.failure)
        return yield* commit(outcome.success)
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

/**
 * The memory network: a registry of in-memory transports by node ID and the simulated links
 * between them (docs/SIMULATION.md). This module is the `MemoryNetwork` namespace: it re-exports
 * the service.
 *
 * A healthy network costs nothing extra: while no link is shaped, cut or paused, messages go
 * straight from sender to receiver. Shaped links hold messages in flight and deliver them from
 * fibers the network owns (one per direction with something in flight); a cut connection gets one
 * keepalive timer. All of it is released with the scope the network was made in.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberSet from "effect/FiberSet"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import type * as Scope from "effect/Scope"
import type * as Endpoint from "../domain/Endpoint.ts"
import * as Seeded from "../domain/Seeded.ts"
import type * as NodeId from "../domain/NodeId.ts"
import {
  DuplicateNode,
  decodeLinkConditions,
  decodeOptions,
  idealLink,
  MemoryNetwork,
  type Event,
  type InvalidNetworkOptions,
  type Link,
  type LinkConditions,
  type Member,
  type OptionsInput,
  type Service
} from "../services/MemoryNetwork.ts"
import * as MemoryConnection from "./MemoryConnection.ts"

export * from "../services/MemoryNetwork.ts"


/** An open connection as the network tracks it: its ends and its keepalive timer, if cut. */
interface Tracked {
  readonly pair: MemoryConnection.WiredPair
  readonly dialer: NodeId.NodeId
  readonly acceptor: NodeId.NodeId
  readonly created: number
  /** Bumped whenever the pending keepalive close is called off; a timer fires only for its own generation. */
  generation: number
  keepalive: boolean
}

const key = (from: NodeId.NodeId, to: NodeId.NodeId) => `${from}>${to}`

const describe = (c: Partial<LinkConditions>) =>
  Object.entries(c).map(([k, v]) => `${k} ${typeof v === "number" && k !== "loss" && k !== "bandwidth" ? `${v} ms` : String(v)}`).join(", ")

/** Creates a network value (for `Node.layerMemory(network, config)` and the test kit), owned by the scope. */
export const make = (input: OptionsInput = {}): Effect.Effect<Service, InvalidNetworkOptions, Scope.Scope> =>
  Effect.gen(function* () {
    const decoded = decodeOptions(input)
    if (Result.isFailure(decoded)) return yield* decoded.failure
    const options = decoded.success
    const clock = yield* Clock.Clock
    const run = yield* FiberSet.makeRuntime<never, void, never>()
    const fork = (effect: Effect.Effect<void>) => void run(effect)
    const random = Seeded.generator(options.seed)

    const members = new Map<NodeId.NodeId, Member>()
    /** Links whose conditions are not perfect. */
    const shaped = new Map<string, LinkConditions>()
    /** Partition group of each node in one (nodes in no group reach everyone). */
    let groups = new Map<NodeId.NodeId, number>()
    /** One-way cuts. */
    let cuts: Array<{ readonly from: ReadonlySet<NodeId.NodeId>; readonly to: ReadonlySet<NodeId.NodeId> }> = []
    const paused = new Set<NodeId.NodeId>()
    /** Shaped links + partitions + cuts + paused nodes: 0 means every link is perfect (the fast path). */
    const faults = () => shaped.size + groups.size + cuts.length + paused.size
    const tracked = new Set<Tracked>()
    /** Dials waiting for a cut path to heal. */
    let waiters: Array<Deferred.Deferred<void>> = []
    const logs = new Map<NodeId.NodeId, Array<Event>>()

    const recordNow = (nodeId: NodeId.NodeId, what: string) => {
      if (options.eventLogSize === 0) return
      let log = logs.get(nodeId)
      if (log === undefined) logs.set(nodeId, (log = []))
      log.push({ at: clock.currentTimeMillisUnsafe(), nodeId, what })
      if (log.length > options.eventLogSize) log.splice(0, log.length - options.eventLogSize)
    }

    const cut = (from: NodeId.NodeId, to: NodeId.NodeId) => {
      const g = groups.get(from)
      const h = groups.get(to)
      if (g !== undefined && h !== undefined && g !== h) return true
      for (const c of cuts) if (c.from.has(from) && c.to.has(to)) return true
      return false
    }
    const flows = (from: NodeId.NodeId, to: NodeId.NodeId) => {
      if (faults() === 0) return true
      if (paused.has(from) || paused.has(to) || cut(from, to)) return false
      return shaped.get(key(from, to))?.stalled !== true
    }
    const wire = (from: NodeId.NodeId, to: NodeId.NodeId): MemoryConnection.Wire => ({
      ideal: () => faults() === 0 || (!shaped.has(key(from, to)) && flows(from, to)),
      flows: () => flows(from, to),
      conditions: () => shaped.get(key(from, to)) ?? idealLink,
      random,
      fork
    })

    /** Next keepalive ping of a connection at or after `now`, and the close `pongTimeout` later if it goes unanswered. */
    const keepaliveCloseAt = (t: Tracked, now: number) => {
      const k = Math.floor((now - t.created) / options.pingInterval) + 1
      return t.created + k * options.pingInterval + options.pongTimeout
    }

    /** Resumes a connection whose path flows; arms the keepalive close of one that is cut. */
    const consider = (t: Tracked) => {
      // Even a half-cut path delivers what may pass.
      t.pair.kick()
      if (flows(t.dialer, t.acceptor) && flows(t.acceptor, t.dialer)) {
        if (t.keepalive) {
          t.keepalive = false
          t.generation++
        }
        return
      }
      if (t.keepalive) return
      t.keepalive = true
      const generation = t.generation
      const now = clock.currentTimeMillisUnsafe()
      fork(Effect.andThen(Effect.sleep(keepaliveCloseAt(t, now) - now), Effect.suspend(() => {
        if (t.generation !== generation || t.pair.isClosed()) return Effect.void
        recordNow(t.dialer, `keepalive: no pong from ${t.acceptor}, connection closed`)
        recordNow(t.acceptor, `keepalive: no pong from ${t.dialer}, connection closed`)
        return t.pair.close
      })))
    }

    /** After any change: every connection reconsidered, every waiting dial retried. */
    const reconsider = () => {
      for (const t of tracked) consider(t)
      const woken = waiters
      waiters = []
      for (const w of woken) Deferred.doneUnsafe(w, Exit.void)
    }

    const nodeOf = (endpoint: Endpoint.Endpoint) => endpoint.path as NodeId.NodeId

    const open = (from: Endpoint.Endpoint, to: Endpoint.Endpoint) =>
      Effect.gen(function* () {
        const a = nodeOf(from)
        const b = nodeOf(to)
        // A dial across a cut gets no answer: it waits (until the dialer's timeout interrupts it).
        let announced = false
        while (paused.has(a) || paused.has(b) || cut(a, b) || cut(b, a)) {
          if (!announced) recordNow(a, `dial to ${b} unanswered: the path is cut`)
          announced = true
          const w = Deferred.makeUnsafe<void>()
          waiters.push(w)
          yield* Deferred.await(w)
        }
        let t: Tracked | undefined
        const pair = yield* MemoryConnection.makePair(from, to, options.bufferSize, {
          toAcceptor: wire(a, b),
          toDialer: wire(b, a),
          onClose: () => {
            if (t !== undefined) tracked.delete(t)
          }
        })
        t = { pair, dialer: a, acceptor: b, created: clock.currentTimeMillisUnsafe(), generation: 0, keepalive: false }
        recordNow(a, `connection to ${b} opened`)
        if (!pair.isClosed()) {
          tracked.add(t)
          if (faults() > 0) consider(t)
        }
        return pair
      })

    const changed = (nodes: ReadonlyArray<NodeId.NodeId>, what: string) =>
      Effect.sync(() => {
        for (const n of nodes) recordNow(n, what)
        reconsider()
      })

    const link = (from: NodeId.NodeId, to: NodeId.NodeId): Link => ({
      from,
      to,
      set: (input) =>
        Effect.suspend(() => {
          const decoded = decodeLinkConditions(input)
          if (Result.isFailure(decoded)) return Effect.fail(decoded.failure)
          const next = { ...(shaped.get(key(from, to)) ?? idealLink), ...decoded.success }
          const perfect = (Object.keys(idealLink) as Array<keyof LinkConditions>).every((k) => next[k] === idealLink[k])
          if (perfect) shaped.delete(key(from, to))
          else shaped.set(key(from, to), next)
          return changed([from, to], `link ${from} -> ${to}: ${describe(decoded.success) || "unchanged"}`)
        }),
      reset: Effect.suspend(() => {
        shaped.delete(key(from, to))
        return changed([from, to], `link ${from} -> ${to}: reset`)
      }),
      conditions: Effect.sync(() => shaped.get(key(from, to)) ?? idealLink)
    })

    const service: Service = {
      options,
      bufferSize: options.bufferSize,
      register: (member) =>
        Effect.suspend(() => {
          if (members.has(member.nodeId)) {
            return Effect.fail(new DuplicateNode({ nodeId: member.nodeId, message: `node ${member.nodeId} is already on the memory network` }))
          }
          members.set(member.nodeId, member)
          recordNow(member.nodeId, "joined the network")
          return Effect.void
        }),
      unregister: (member) =>
        Effect.sync(() => {
          if (members.get(member.nodeId) === member) {
            members.delete(member.nodeId)
            recordNow(member.nodeId, "left the network")
          }
        }),
      lookup: (nodeId) => Effect.sync(() => Option.fromNullishOr(members.get(nodeId))),
      nodes: Effect.sync(() => [...members.keys()]),
      remove: (nodeId) =>
        Effect.suspend(() => {
          const member = members.get(nodeId)
          if (member === undefined) return Effect.void
          members.delete(nodeId)
          recordNow(nodeId, "removed from the network: connections dropped")
          return member.shutdown
        }),
      open,
      link,
      partition: (partition) =>
        Effect.suspend(() => {
          groups = new Map(partition.flatMap((group, i) => group.map((n) => [n, i] as const)))
          const text = `partition ${partition.map((g) => `[${g.join(", ")}]`).join(" | ")}`
          return changed(partition.flat(), text)
        }),
      cut: (from, to) =>
        Effect.suspend(() => {
          cuts = [...cuts, { from: new Set(from), to: new Set(to) }]
          return changed([...from, ...to], `one-way cut [${from.join(", ")}] -> [${to.join(", ")}]`)
        }),
      heal: Effect.suspend(() => {
        const nodes = [...groups.keys(), ...cuts.flatMap((c) => [...c.from, ...c.to])]
        groups = new Map()
        cuts = []
        return changed([...new Set(nodes)], "partitions healed")
      }),
      pause: (nodeId) =>
        Effect.suspend(() => {
          paused.add(nodeId)
          return changed([nodeId], "paused")
        }),
      resume: (nodeId) =>
        Effect.suspend(() => {
          paused.delete(nodeId)
          return changed([nodeId], "resumed")
        }),
      flows,
      record: (nodeId, what) => Effect.sync(() => recordNow(nodeId, what)),
      events: (nodeId) =>
        Effect.sync(() =>
          nodeId !== undefined
            ? [...(logs.get(nodeId) ?? [])]
            : [...logs.values()].flat().sort((x, y) => x.at - y.at)
        ),
      connections: Effect.sync(() => tracked.size)
    }
    return service
  })

/** A fresh network for the nodes of one test. */
export const layer: Layer.Layer<MemoryNetwork> = Layer.effect(MemoryNetwork, Effect.orDie(make()))

/** A fresh network with options; bad options fail the layer with `InvalidNetworkOptions`. */
export const layerWith = (options: OptionsInput): Layer.Layer<MemoryNetwork, InvalidNetworkOptions> => Layer.effect(MemoryNetwork, make(options))

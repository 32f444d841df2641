/**
 * Deterministic network simulations (docs/SIMULATION.md): full nodes (`Node.layerMemory`: Router,
 * PeerManager, PEX, the CometBFT connection limits) on one `MemoryNetwork` whose links, partitions
 * and nodes a test shapes while it runs, all under `TestClock` and a seed, so a failing run replays
 * exactly.
 *
 * ```ts
 * it.effect("a partition heals", () =>
 *   Effect.gen(function* () {
 *     const sim = yield* Simulation.make({ nodes: 6, network: { pingInterval: "10 seconds", pongTimeout: "5 seconds" } })
 *     yield* sim.eventually("30 seconds", "every node has 3 peers", sim.everyNode((n) => n.peerCount >= 3))
 *     yield* sim.partition([0, 1, 2], [3, 4, 5])
 *     yield* sim.link(0, 1).set({ latency: "50 millis", loss: 0.1 })
 *     yield* sim.crash(2)
 *     yield* sim.run("1 minute")
 *     yield* sim.heal
 *     yield* sim.restart(2)
 *     yield* sim.eventually("2 minutes", "the mesh is whole again", sim.everyNode((n) => n.peerCount >= 3))
 *   }).pipe(Effect.scoped))
 * ```
 *
 * A wait that runs out fails with `SimulationTimedOut`, whose message is a report of every node
 * (state, peers, last events); `sim.events(n)` is a node's event log for post-mortems.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Random from "effect/Random"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as NodeAddress from "../domain/NodeAddress.ts"
import type * as NodeId from "../domain/NodeId.ts"
import * as NodeKey from "../domain/NodeKey.ts"
import * as MemoryNetwork from "../layers/MemoryNetwork.ts"
import * as MemoryTransport from "../layers/MemoryTransport.ts"
import * as Node from "../layers/Node.ts"
import * as PeerStoreMemory from "../layers/PeerStoreMemory.ts"
import type { PeerStore } from "../services/PeerStore.ts"
import { PeerManager } from "../services/PeerManager.ts"
import { Router, type RoutedPeer } from "../services/Router.ts"

/** A wait ran out of virtual time; the message carries a report of every node. */
export class SimulationTimedOut extends Schema.TaggedError<SimulationTimedOut>()("SimulationTimedOut", {
  what: Schema.String,
  millis: Schema.Number,
  report: Schema.String,
  message: Schema.String
}) {}

/** The simulation was used in a way it cannot honour (no TestClock, an unknown node, a node in the wrong state). */
export class SimulationError extends Schema.TaggedError<SimulationError>()("SimulationError", {
  message: Schema.String
}) {}

/** A node's configuration in a simulation: `Node.Config` with peers named by index. */
export type NodeConfig = Partial<Omit<Node.Config, "nodeKey" | "persistentPeers" | "bootstrapPeers">> & {
  /** Indexes of the node's persistent peers. */
  readonly persistentPeers?: ReadonlyArray<number>
  /** Indexes of the peers the node is told of at start. Default: node 0 (for every node but node 0). */
  readonly bootstrapPeers?: ReadonlyArray<number>
}

/** Options of a simulation. */
export interface Options {
  /** Number of nodes. */
  readonly nodes: number
  /** Seeds node keys, link jitter and loss, and the nodes' `Random` (retry jitter, PEX). Default 1. */
  readonly seed?: number
  /** Options of the memory network (buffer size, keepalive, event log size); its seed is the simulation's. */
  readonly network?: Omit<MemoryNetwork.OptionsInput, "seed">
  /** Configuration of node `index`, over the defaults (network "sim", moniker `n<index>`, bootstrap node 0). */
  readonly node?: (index: number) => NodeConfig
}

/** Where a node is in its life. */
export type NodeState = "up" | "paused" | "crashed"

/** One node of a simulation, across its restarts. */
export interface SimNode {
  readonly index: number
  /** `n<index>`: used in reports and event logs instead of the node ID. */
  readonly name: string
  readonly nodeId: NodeId.NodeId
  readonly key: NodeKey.NodeKey
  readonly address: NodeAddress.NodeAddress
  readonly state: NodeState
  /** The running incarnation's services; fail with `SimulationError` while the node is crashed. */
  readonly router: Effect.Effect<Router["Service"], SimulationError>
  readonly peerManager: Effect.Effect<PeerManager["Service"], SimulationError>
  /** The node's peer store: the same one across restarts. */
  readonly peerStore: PeerStore["Service"]
  /** Times the node was restarted. */
  readonly restarts: number
}

/** What `everyNode` and reports see of a node at one moment. */
export interface Snapshot {
  readonly index: number
  readonly name: string
  readonly state: NodeState
  /** Connected peers (none while crashed). */
  readonly peers: ReadonlyArray<RoutedPeer>
  readonly peerCount: number
  readonly outbound: number
  readonly inbound: number
}

/** Names a node by index or by value. */
export type NodeRef = number | SimNode

/** A running simulation. */
export interface Simulation {
  readonly nodes: ReadonlyArray<SimNode>
  readonly network: MemoryNetwork.Service
  readonly node: (ref: NodeRef) => SimNode
  /** The directed link from `a` to `b`: `set({ latency, jitter, loss, bandwidth, stalled })`, `reset`. */
  readonly link: (a: NodeRef, b: NodeRef) => MemoryNetwork.Link
  /** Both directions between `a` and `b` at once. */
  readonly links: (a: NodeRef, b: NodeRef) => {
    readonly set: (conditions: MemoryNetwork.LinkConditionsInput) => Effect.Effect<void, MemoryNetwork.InvalidNetworkOptions>
    readonly reset: Effect.Effect<void>
  }
  /** Splits the network into groups (links between groups cut both ways). */
  readonly partition: (...groups: ReadonlyArray<ReadonlyArray<NodeRef>>) => Effect.Effect<void>
  /** Cuts the links from every node of `from` to every node of `to`, one way. */
  readonly cut: (from: ReadonlyArray<NodeRef>, to: ReadonlyArray<NodeRef>) => Effect.Effect<void>
  /** Cuts a node off from every other. */
  readonly isolate: (ref: NodeRef) => Effect.Effect<void>
  /** Removes every partition and cut. */
  readonly heal: Effect.Effect<void>
  /** The node's connections drop at once (no goodbye) and it stops. */
  readonly crash: (ref: NodeRef) => Effect.Effect<void, SimulationError>
  /** Starts a crashed node again with the same key and peer store. */
  readonly restart: (ref: NodeRef) => Effect.Effect<void, SimulationError>
  /** The node neither sends nor receives until `resume`; its peers see silence. */
  readonly pause: (ref: NodeRef) => Effect.Effect<void, SimulationError>
  readonly resume: (ref: NodeRef) => Effect.Effect<void, SimulationError>
  /** Lets virtual time pass. */
  readonly run: (duration: Duration.Input) => Effect.Effect<void>
  /**
   * Lets virtual time pass until `check` holds (checked every `every`, default 100 ms), failing with
   * `SimulationTimedOut` and a report of every node after `duration`.
   */
  readonly eventually: <E, R>(duration: Duration.Input, what: string, check: Effect.Effect<boolean, E, R>, every?: Duration.Input) => Effect.Effect<void, E | SimulationTimedOut, R>
  /** A check for `eventually`: `predicate` holds for every node that is up (or for those `filter` picks). */
  readonly everyNode: (predicate: (node: Snapshot) => boolean, filter?: (node: Snapshot) => boolean) => Effect.Effect<boolean>
  /** A node as it is now. */
  readonly snapshot: (ref: NodeRef) => Effect.Effect<Snapshot>
  /** Whether `a` has `b` as a connected peer. */
  readonly connected: (a: NodeRef, b: NodeRef) => Effect.Effect<boolean>
  /** A node's event log as lines (`12.345 s  peer n3 up`), oldest first; every node's, interleaved, without a node. */
  readonly events: (ref?: NodeRef) => Effect.Effect<ReadonlyArray<string>>
  /** Every node: state, peers, last events. */
  readonly report: Effect.Effect<string>
}

/** The key of node `index` in a simulation seeded `seed`: the same in every run. */
export const keyOf = (seed: number, index: number): NodeKey.NodeKey => {
  const bytes = new Uint8Array(32)
  const view = new DataView(bytes.buffer)
  view.setUint32(0, seed >>> 0)
  view.setUint32(4, index >>> 0)
  bytes[31] = 0x5e
  return NodeKey.fromSeed(bytes)
}

interface Incarnation {
  readonly scope: Scope.Closeable
  readonly router: Router["Service"]
  readonly peerManager: PeerManager["Service"]
}

interface Slot {
  readonly index: number
  readonly name: string
  readonly key: NodeKey.NodeKey
  readonly address: NodeAddress.NodeAddress
  readonly peerStore: PeerStore["Service"]
  readonly config: Node.Config
  state: NodeState
  restarts: number
  running: Incarnation | undefined
}

type Adjustable = Clock.Clock & { readonly adjust: (d: Duration.Input) => Effect.Effect<void> }

const seconds = (ms: number) => `${(ms / 1000).toFixed(3).padStart(9)} s`

/** Builds a simulation whose nodes live until the caller's scope closes. Needs `TestClock`. */
export const make = Effect.fn("Simulation.make")(function* (options: Options): Effect.fn.Return<Simulation, SimulationError | MemoryNetwork.InvalidNetworkOptions, Scope.Scope> {
  const clock = yield* Clock.Clock
  if (!("adjust" in clock)) return yield* new SimulationError({ message: "Simulation needs TestClock: run it in it.effect or provide TestClock.layer()" })
  const testClock = clock as Adjustable
  if (!Number.isSafeInteger(options.nodes) || options.nodes < 1) {
    return yield* new SimulationError({ message: `Simulation nodes must be a positive integer, got ${options.nodes}` })
  }
  const seed = options.seed ?? 1
  const network = yield* MemoryNetwork.make({ ...options.network, seed })
  const outer = yield* Effect.scope
  const start = clock.currentTimeMillisUnsafe()

  const keys = Array.from({ length: options.nodes }, (_, i) => keyOf(seed, i))
  const addresses = keys.map((k) => NodeAddress.make({ protocol: MemoryTransport.PROTOCOL, nodeId: k.nodeId }))
  const names = new Map(keys.map((k, i) => [k.nodeId as string, `n${i}`]))
  const nameOf = (text: string) => text.replace(/[0-9a-f]{40}/g, (id) => names.get(id) ?? id)
  const resolve = (index: number, what: string) => {
    const address = addresses[index]
    if (address === undefined) throw new RangeError(`Simulation: node ${index} (${what}) does not exist; nodes are 0..${options.nodes - 1}`)
    return address
  }

  const slots: Array<Slot> = []
  for (let i = 0; i < options.nodes; i++) {
    const own = options.node?.(i) ?? {}
    const { persistentPeers, bootstrapPeers, ...rest } = own
    const config: Node.Config = {
      network: "sim",
      moniker: `n${i}`,
      ...rest,
      nodeKey: keys[i]!,
      persistentPeers: (persistentPeers ?? []).map((j) => resolve(j, `a persistent peer of n${i}`)),
      bootstrapPeers: (bootstrapPeers ?? (i === 0 ? [] : [0])).map((j) => resolve(j, `a bootstrap peer of n${i}`))
    }
    slots.push({
      index: i,
      name: `n${i}`,
      key: keys[i]!,
      address: addresses[i]!,
      peerStore: yield* PeerStoreMemory.makeMemory(),
      config,
      state: "crashed",
      restarts: 0,
      running: undefined
    })
  }

  const boot = (slot: Slot) =>
    Effect.gen(function* () {
      const scope = yield* Scope.fork(outer)
      const context = yield* Layer.buildWithScope(Node.layerMemory(network, slot.config, { peerStore: slot.peerStore }), scope).pipe(
        Effect.mapError((e) => new SimulationError({ message: `${slot.name} cannot start: ${e instanceof Error ? e.message : String(e)}` }))
      )
      const peerManager = Context.get(context, PeerManager)
      const updates = yield* Scope.provide(peerManager.subscribe, scope)
      yield* Effect.forkIn(
        Stream.runForEach(updates, (u) => network.record(slot.key.nodeId, `peer ${u.nodeId} ${u.status}`)).pipe(Effect.ignore),
        scope
      )
      slot.running = { scope, router: Context.get(context, Router), peerManager }
      slot.state = "up"
      yield* network.record(slot.key.nodeId, slot.restarts === 0 ? "started" : `restarted (${slot.restarts})`)
    }).pipe(Random.withSeed(`${seed}/${slot.index}/${slot.restarts}`))

  for (const slot of slots) yield* boot(slot)

  const slotOf = (ref: NodeRef) => {
    const index = typeof ref === "number" ? ref : ref.index
    const slot = slots[index]
    if (slot === undefined) throw new RangeError(`Simulation: no node ${index}; nodes are 0..${slots.length - 1}`)
    return slot
  }
  const idOf = (ref: NodeRef) => slotOf(ref).key.nodeId
  const down = (slot: Slot) => new SimulationError({ message: `${slot.name} is crashed; restart it first` })

  const nodes: ReadonlyArray<SimNode> = slots.map((slot) => ({
    index: slot.index,
    name: slot.name,
    nodeId: slot.key.nodeId,
    key: slot.key,
    address: slot.address,
    get state() {
      return slot.state
    },
    router: Effect.suspend(() => (slot.running === undefined ? Effect.fail(down(slot)) : Effect.succeed(slot.running.router))),
    peerManager: Effect.suspend(() => (slot.running === undefined ? Effect.fail(down(slot)) : Effect.succeed(slot.running.peerManager))),
    peerStore: slot.peerStore,
    get restarts() {
      return slot.restarts
    }
  }))

  const snapshot = (ref: NodeRef): Effect.Effect<Snapshot> =>
    Effect.gen(function* () {
      const slot = slotOf(ref)
      const peers = slot.running === undefined ? [] : yield* slot.running.router.peers
      const outbound = peers.filter((p) => p.direction === "outgoing").length
      return { index: slot.index, name: slot.name, state: slot.state, peers, peerCount: peers.length, outbound, inbound: peers.length - outbound }
    })

  const formatEvent = (e: MemoryNetwork.Event, withNode: boolean) =>
    `${seconds(e.at - start)}  ${withNode ? `${(names.get(e.nodeId) ?? e.nodeId).padEnd(5)} ` : ""}${nameOf(e.what)}`

  const report = Effect.gen(function* () {
    const lines = [`virtual time ${seconds(clock.currentTimeMillisUnsafe() - start).trim()}, ${slots.length} nodes, ${yield* network.connections} connections`]
    for (const slot of slots) {
      const s = yield* snapshot(slot.index)
      const peerNames = s.peers.map((p) => names.get(p.nodeId) ?? p.nodeId).join(" ")
      lines.push(`${slot.name.padEnd(5)} ${s.state.padEnd(7)} ${String(s.peerCount).padStart(3)} peers (${s.outbound} out, ${s.inbound} in)${peerNames === "" ? "" : `: ${peerNames}`}`)
      for (const e of (yield* network.events(slot.key.nodeId)).slice(-3)) lines.push(`        ${formatEvent(e, false)}`)
    }
    return lines.join("\n")
  })

  const eventually = <E, R>(duration: Duration.Input, what: string, check: Effect.Effect<boolean, E, R>, every: Duration.Input = 100) =>
    Effect.gen(function* () {
      const millis = Duration.toMillis(Duration.fromInputUnsafe(duration))
      const step = Math.max(1, Duration.toMillis(Duration.fromInputUnsafe(every)))
      const began = clock.currentTimeMillisUnsafe()
      while (true) {
        if (yield* check) return
        const elapsed = clock.currentTimeMillisUnsafe() - began
        if (elapsed >= millis) {
          const text = yield* report
          return yield* new SimulationTimedOut({ what, millis, report: text, message: `timed out after ${millis} ms (virtual) waiting for ${what}\n${text}` })
        }
        yield* testClock.adjust(Math.min(step, millis - elapsed))
      }
    })

  const groupIds = (group: ReadonlyArray<NodeRef>) => group.map(idOf)

  const simulation: Simulation = {
    nodes,
    network,
    node: (ref) => nodes[slotOf(ref).index]!,
    link: (a, b) => network.link(idOf(a), idOf(b)),
    links: (a, b) => ({
      set: (conditions) => Effect.andThen(network.link(idOf(a), idOf(b)).set(conditions), network.link(idOf(b), idOf(a)).set(conditions)),
      reset: Effect.andThen(network.link(idOf(a), idOf(b)).reset, network.link(idOf(b), idOf(a)).reset)
    }),
    partition: (...groups) => network.partition(groups.map(groupIds)),
    cut: (from, to) => network.cut(groupIds(from), groupIds(to)),
    isolate: (ref) => network.partition([[idOf(ref)], slots.filter((s) => s.index !== slotOf(ref).index).map((s) => s.key.nodeId)]),
    heal: network.heal,
    crash: (ref) =>
      Effect.gen(function* () {
        const slot = slotOf(ref)
        if (slot.running === undefined) return yield* down(slot)
        const running = slot.running
        slot.running = undefined
        slot.state = "crashed"
        // Connections first, all at once (peers see them drop, no goodbye), then the node's fibers.
        yield* network.remove(slot.key.nodeId)
        yield* network.resume(slot.key.nodeId)
        yield* Scope.close(running.scope, Exit.void)
        yield* network.record(slot.key.nodeId, "crashed")
      }),
    restart: (ref) =>
      Effect.gen(function* () {
        const slot = slotOf(ref)
        if (slot.running !== undefined) return yield* new SimulationError({ message: `${slot.name} is running; crash it before restarting it` })
        slot.restarts++
        yield* boot(slot)
      }),
    pause: (ref) =>
      Effect.gen(function* () {
        const slot = slotOf(ref)
        if (slot.state !== "up") return yield* new SimulationError({ message: `${slot.name} is ${slot.state}; only a running node can be paused` })
        slot.state = "paused"
        yield* network.pause(slot.key.nodeId)
      }),
    resume: (ref) =>
      Effect.gen(function* () {
        const slot = slotOf(ref)
        if (slot.state !== "paused") return yield* new SimulationError({ message: `${slot.name} is ${slot.state}, not paused` })
        slot.state = "up"
        yield* network.resume(slot.key.nodeId)
      }),
    run: (duration) => testClock.adjust(duration),
    eventually,
    everyNode: (predicate, filter = (n) => n.state === "up") =>
      Effect.gen(function* () {
        for (const slot of slots) {
          const s = yield* snapshot(slot.index)
          if (filter(s) && !predicate(s)) return false
        }
        return true
      }),
    snapshot,
    connected: (a, b) => Effect.map(snapshot(a), (s) => s.peers.some((p) => p.nodeId === idOf(b))),
    events: (ref) =>
      Effect.map(network.events(ref === undefined ? undefined : idOf(ref)), (events) => events.map((e) => formatEvent(e, ref === undefined))),
    report
  }
  return simulation
})

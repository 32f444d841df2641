/**
 * In-memory N-node networks for tests (docs/ARCHITECTURE.md#test-kit): every node has its own key, PeerManager (over an
 * in-memory peer store), memory transport and Router on one shared `MemoryNetwork`. `make` builds
 * the nodes and meshes them (each pair connected once, dialed by the lower index), so a test starts
 * from a connected network. Works under `TestClock`.
 *
 * A node can run the application's reactors: `reactors` is a layer (or a function of the node
 * giving one) built on each node with the node's services provided, as `Node.layer` provides them
 * in production; what it outputs is in `node.context`.
 *
 * ```ts
 * it.effect("broadcast reaches every peer", () =>
 *   Effect.gen(function* () {
 *     const network = yield* TestNetwork.make({ nodes: 4 })
 *     const channels = yield* network.openChannel(descriptor)
 *     yield* channels[0]!.send(Envelope.broadcast(message))
 *     ...
 *   }).pipe(Effect.scoped))
 * ```
 *
 * @since 0.1.0
 */
import type { DescMessage } from "@bufbuild/protobuf"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import type * as ChannelDescriptor from "../domain/ChannelDescriptor.ts"
import * as NodeAddress from "../domain/NodeAddress.ts"
import type * as NodeId from "../domain/NodeId.ts"
import * as NodeKey from "../domain/NodeKey.ts"
import type * as PeerUpdate from "../domain/PeerUpdate.ts"
import * as MemoryNetwork from "../layers/MemoryNetwork.ts"
import * as MemoryTransport from "../layers/MemoryTransport.ts"
import * as PeerManagerLayer from "../layers/PeerManager.ts"
import * as PeerStoreMemory from "../layers/PeerStoreMemory.ts"
import * as RouterLayer from "../layers/Router.ts"
import * as AddressResolver from "../layers/AddressResolver.ts"
import type { PeerStore } from "../services/PeerStore.ts"
import * as NodeIdentity from "../layers/NodeIdentity.ts"
import { PeerManager, type OptionsInput, type SubscriberLagged } from "../services/PeerManager.ts"
import { Router, type Channel, type OptionsInput as RouterOptions } from "../services/Router.ts"
import { Transport } from "../services/Transport.ts"
import * as Assert from "./Assertions.ts"
import { within } from "./Within.ts"

/**
 * The services a node provides to its reactors: those of `Node.layer` (Router, PeerManager,
 * Transport, NodeIdentity, AddressResolver), its PeerStore and the MemoryNetwork.
 */
export type NodeServices =
  | Router
  | PeerManager
  | Transport
  | NodeIdentity.NodeIdentity
  | AddressResolver.AddressResolver
  | PeerStore
  | MemoryNetwork.MemoryNetwork

/** One node of a test network; `A` is what its `reactors` layer outputs. */
export interface TestNode<A = never> {
  readonly index: number
  readonly nodeId: NodeId.NodeId
  readonly key: NodeKey.NodeKey
  /** `memory:<id>`. */
  readonly address: NodeAddress.NodeAddress
  readonly router: Router["Service"]
  readonly peerManager: PeerManager["Service"]
  readonly transport: Transport["Service"]
  /** The scope owning the node's layers; `TestNetwork.remove` closes it. */
  readonly scope: Scope.Closeable
  /** The node's services and whatever its `reactors` layer built (e.g. a service of the application). */
  readonly context: Context.Context<A | NodeServices>
}

/** What runs on each node besides the stack: a layer, or a function choosing one per node. */
export type Reactors<A, E> = Layer.Layer<A, E, NodeServices> | ((node: TestNode) => Layer.Layer<A, E, NodeServices>)

/** Options of a test network. */
export interface Options<A = never, E = never> {
  /** Number of nodes. */
  readonly nodes: number
  /** Messages buffered per connection direction. Default 16. */
  readonly bufferSize?: number
  /**
   * Options of the memory network (`bufferSize`, `seed`, keepalive `pingInterval`/`pongTimeout`,
   * `eventLogSize`). Shape links while the test runs with `network.link(a, b).set(...)`,
   * `partition`, `pause`: see docs/SIMULATION.md.
   */
  readonly network?: MemoryNetwork.OptionsInput
  /** PeerManager options for every node, over the test defaults (fast retries, no limits). */
  readonly peerManager?: OptionsInput
  /** Router options for every node, over the test defaults (network "test", fifo queues). */
  readonly router?: Partial<RouterOptions>
  /**
   * Channels every node advertises from the start. Peers only send a channel the other side
   * listed in its handshake, so declare here every channel the test will open.
   */
  readonly channels?: ReadonlyArray<ChannelDescriptor.ChannelDescriptor>
  /** Mesh the nodes once built. Default true. */
  readonly mesh?: boolean
  /** First node's key seed; node i uses seed + i (any integer from 0 to 65535). Default 1. */
  readonly seed?: number
  /**
   * Reactors of the application, built on every node once its stack is up (before meshing), with
   * the node's {@link NodeServices} provided. Pass a function to choose per node; return
   * `Layer.empty` to leave a node bare.
   */
  readonly reactors?: Reactors<A, E>
}

/** PeerManager options of test nodes: fast retries and cooldowns, no limits (p2ptest's values). */
export const peerManagerDefaults: OptionsInput = {
  maxPeers: 0,
  maxConnected: 0,
  maxOutgoingConnections: 0,
  maxConnectedUpgrade: 0,
  minRetryTime: 10,
  maxRetryTime: 100,
  maxRetryTimePersistent: 100,
  retryTimeJitter: 1,
  disconnectCooldownPeriod: 10
}

/** A running test network. */
export interface TestNetwork<A = never> {
  readonly nodes: ReadonlyArray<TestNode<A>>
  readonly network: MemoryNetwork.Service
  /** The node with an ID. */
  readonly node: (nodeId: NodeId.NodeId) => TestNode<A>
  /** Every node but one. */
  readonly peersOf: (nodeId: NodeId.NodeId) => ReadonlyArray<TestNode<A>>
  /** Opens the channel on every node (owned by the caller's scope), in node order. */
  readonly openChannel: <Desc extends DescMessage>(
    descriptor: ChannelDescriptor.ChannelDescriptor<Desc>
  ) => Effect.Effect<ReadonlyArray<Channel<Desc>>, unknown, Scope.Scope>
  /** Subscribes to every node's peer updates, in node order. */
  readonly subscribe: Effect.Effect<ReadonlyArray<Stream.Stream<PeerUpdate.PeerUpdate, SubscriberLagged>>, never, Scope.Scope>
  /** Adds a new node (not meshed), running the network's `reactors`. */
  readonly addNode: Effect.Effect<TestNode<A>, unknown>
  /** Connects node `i` to node `j` (i dials) and waits until both see each other up. */
  readonly connect: (i: TestNode<A>, j: TestNode<A>) => Effect.Effect<void, unknown>
  /** Takes a node off the network and stops it; its peers see it go down. */
  readonly remove: (nodeId: NodeId.NodeId) => Effect.Effect<void>
}

/** Builds (and by default meshes) a network whose nodes live until the caller's scope closes. */
export const make = Effect.fn("TestNetwork.make")(function* <A = never, E = never>(options: Options<A, E>): Effect.fn.Return<TestNetwork<A>, unknown, Scope.Scope> {
  const network = yield* MemoryNetwork.make({ ...options.network, ...(options.bufferSize === undefined ? {} : { bufferSize: options.bufferSize }) })
  const nodes: Array<TestNode<A>> = []
  const outer = yield* Effect.scope
  const seed = options.seed ?? 1

  const addNode = Effect.gen(function* () {
    const index = nodes.length
    const key = NodeKey.fromSeed(new Uint8Array(32).fill((seed + index) & 0xff).map((b, i) => (i === 31 ? (seed + index) >> 8 : b)))
    const scope = yield* Scope.fork(outer)
    const identity = NodeIdentity.layer(key)
    const base = Layer.mergeAll(
      identity,
      Layer.succeed(MemoryNetwork.MemoryNetwork, network),
      PeerStoreMemory.layerMemory,
      AddressResolver.layerStatic({})
    )
    const routerOptions: RouterOptions = {
      queueType: "fifo",
      ...(options.channels === undefined ? {} : { channels: options.channels }),
      ...options.router,
      nodeInfo: { network: "test", moniker: `node-${index}`, ...options.router?.nodeInfo }
    }
    const stack = RouterLayer.layer(routerOptions).pipe(
      Layer.provideMerge(Layer.mergeAll(MemoryTransport.layer, PeerManagerLayer.layer({ ...peerManagerDefaults, ...options.peerManager }))),
      Layer.provideMerge(base)
    )
    const context = yield* Layer.buildWithScope(stack, scope)
    const bare: TestNode = {
      index,
      nodeId: key.nodeId,
      key,
      address: NodeAddress.make({ protocol: MemoryTransport.PROTOCOL, nodeId: key.nodeId }),
      router: Context.get(context, Router),
      peerManager: Context.get(context, PeerManager),
      transport: Context.get(context, Transport),
      scope,
      context
    }
    const reactors = typeof options.reactors === "function" ? options.reactors(bare) : options.reactors
    const built = reactors === undefined
      ? context
      : Context.merge(context, yield* Layer.buildWithScope(Layer.provide(reactors, Layer.succeedContext(context)), scope))
    const node: TestNode<A> = { ...bare, context: built as Context.Context<A | NodeServices> }
    nodes.push(node)
    return node
  })

  const connect = (a: TestNode<A>, b: TestNode<A>) =>
    Effect.scoped(Effect.gen(function* () {
      const [subA, subB] = [yield* a.peerManager.subscribe, yield* b.peerManager.subscribe]
      const added = yield* a.peerManager.add(b.address)
      if (!added) return yield* Effect.fail(new Error(`node ${a.index} already knew node ${b.index}`))
      yield* within(3000, `node ${a.index} to see node ${b.index} up`, Assert.firstUp(subA, b.nodeId))
      yield* within(3000, `node ${b.index} to see node ${a.index} up`, Assert.firstUp(subB, a.nodeId))
      yield* b.peerManager.add(a.address)
    }))

  for (let i = 0; i < options.nodes; i++) yield* addNode
  if (options.mesh !== false) {
    for (let i = 0; i < nodes.length; i++) for (let j = i + 1; j < nodes.length; j++) yield* connect(nodes[i]!, nodes[j]!)
  }

  const node = (nodeId: NodeId.NodeId) => {
    const n = nodes.find((x) => x.nodeId === nodeId)
    if (n === undefined) throw new Error(`no test node ${nodeId}`)
    return n
  }

  return {
    nodes,
    network,
    node,
    peersOf: (nodeId) => nodes.filter((n) => n.nodeId !== nodeId),
    openChannel: (descriptor) => Effect.forEach(nodes, (n) => n.router.openChannel(descriptor)),
    subscribe: Effect.forEach(nodes, (n) => n.peerManager.subscribe),
    addNode,
    connect,
    remove: (nodeId) =>
      Effect.suspend(() => {
        const n = node(nodeId)
        nodes.splice(nodes.indexOf(n), 1)
        return Effect.andThen(network.remove(nodeId), Scope.close(n.scope, Exit.void))
      })
  }
})

/**
 * A whole node as one layer: identity, peer store, PeerManager, transport, Router and PEX, wired as
 * a production node needs them. `layer(config)` runs on TCP with a SQLite peer store under the home
 * directory; `layerMemory(network, config)` is the same node over the memory transport, for tests.
 * Persistent and bootstrap peers are added once everything is up.
 *
 * ```ts
 * const node = Node.layer({ home: "./.effect-p2p", network: "my-chain", moniker: "n1" })
 * const app = MyReactor.pipe(Layer.provide(node))
 * ```
 *
 * @since 0.1.0
 */
import { join } from "node:path"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import type * as ChannelDescriptor from "../domain/ChannelDescriptor.ts"
import * as NodeAddress from "../domain/NodeAddress.ts"
import type * as NodeId from "../domain/NodeId.ts"
import type * as NodeKey from "../domain/NodeKey.ts"
import * as AddressResolver from "./AddressResolver.ts"
import * as NodeIdentity from "./NodeIdentity.ts"
import { PeerManager, type OptionsInput as PeerManagerOptions } from "../services/PeerManager.ts"
import * as PexService from "../services/Pex.ts"
import type { OptionsInput as RouterOptions } from "../services/Router.ts"
import { Router } from "../services/Router.ts"
import { PeerStore } from "../services/PeerStore.ts"
import { Transport } from "../services/Transport.ts"
import { MemoryNetwork, type Service as MemoryNetworkService } from "./MemoryNetwork.ts"
import * as MemoryTransport from "./MemoryTransport.ts"
import * as NodeKeyFile from "./NodeKeyFile.ts"
import * as PeerManagerLayer from "./PeerManager.ts"
import * as PeerStoreMemory from "./PeerStoreMemory.ts"
import * as PeerStoreSqlite from "./PeerStoreSqlite.ts"
import * as PexLayer from "./Pex.ts"
import * as RouterLayer from "./Router.ts"
import type * as MConnection from "./tcp/MConnection.ts"
import * as TcpTransport from "./TcpTransport.ts"

/** What a node is told; every field but `network` and `moniker` has a default. */
export interface Config {
  /** Chain ID peers must share. */
  readonly network: string
  /** Human-readable name in NodeInfo. */
  readonly moniker: string
  /** Home directory: `config/node_key.json` and `data/peerstore.db`. Default `./.effect-p2p` (TCP); none (memory). */
  readonly home?: string
  /** Use this key instead of `config/node_key.json`. */
  readonly nodeKey?: NodeKey.NodeKey
  /** Version string in NodeInfo. */
  readonly version?: string
  /** Where to listen. Default 127.0.0.1:26656. */
  readonly listen?: { readonly host: string; readonly port: number }
  /** `host:port` peers should dial us at (advertised by PEX). Default: the listening address. */
  readonly externalAddress?: string
  /** Peers always kept connected (and retried). */
  readonly persistentPeers?: ReadonlyArray<NodeAddress.NodeAddress>
  /** Peers added at start (CometBFT's seeds work the same way here: dialed, then asked for addresses). */
  readonly bootstrapPeers?: ReadonlyArray<NodeAddress.NodeAddress>
  /** Node IDs never advertised to others. */
  readonly privatePeerIds?: ReadonlyArray<NodeId.NodeId>
  /** Node IDs outside every connection limit (CometBFT's `unconditional_peer_ids`). */
  readonly unconditionalPeerIds?: ReadonlyArray<NodeId.NodeId>
  /**
   * Inbound peers at most, CometBFT's `max_num_inbound_peers`: 0 accepts none. Persistent and
   * unconditional peers are not counted and always accepted. Default 40.
   */
  readonly maxInboundPeers?: number
  /**
   * Outbound peers (dials in flight included) at most, CometBFT's `max_num_outbound_peers`: 0 dials
   * none. Persistent and unconditional peers are not counted and always dialed. Default 10.
   */
  readonly maxOutboundPeers?: number
  /** Run peer exchange. Default true. */
  readonly pex?: boolean
  /** Answer PEX requests, then disconnect (a seed node). Default false. */
  readonly seedMode?: boolean
  /** Handshake bound, ms. Default 20000. */
  readonly handshakeTimeout?: number
  /** Dial bound, ms. Default 3000. */
  readonly dialTimeout?: number
  /** MConnection settings (TCP). */
  readonly mconnection?: Partial<MConnection.Config>
  /** Local IP outgoing TCP connections are bound to (`TcpTransport`'s `dialFrom`). Default: none. */
  readonly dialFrom?: string
  /** Options of the SQLite peer store under `home` (e.g. `{ recoverCorrupt: true }`). */
  readonly peerStore?: PeerStoreSqlite.SqliteOptions
  /** Channels of the application's reactors, advertised from the first handshake. */
  readonly channels?: ReadonlyArray<ChannelDescriptor.ChannelDescriptor>
  /** Further PeerManager options, over the ones derived above. */
  readonly peerManager?: PeerManagerOptions
  /** Further Router options, over the ones derived above. */
  readonly router?: Partial<RouterOptions>
}

/** The services a node provides to its reactors. */
export type Services = Router | PeerManager | Transport | NodeIdentity.NodeIdentity | AddressResolver.AddressResolver

/** Default home directory. */
export const DEFAULT_HOME = "./.effect-p2p"

/**
 * CometBFT's limits as PeerManager options: one limit per direction, persistent peers on top of
 * both (so `maxConnected` leaves room for them), no upgrade slots (the limits are hard caps, as in
 * CometBFT), and unconditional peers outside every limit. A full node still lets a few inbound
 * peers in for a grace period so they can ask it for addresses ({@link GRACE_PEERS}), and an
 * outbound connection that a peer ends within {@link MIN_CONNECTION_DURATION} backs its address
 * off, so a node is not redialed in a loop by a peer it keeps turning away.
 */
const peerManagerOptions = (config: Config): PeerManagerOptions => {
  const inbound = config.maxInboundPeers ?? 40
  const outbound = config.maxOutboundPeers ?? 10
  const persistentPeers = [...new Set((config.persistentPeers ?? []).map((a) => a.nodeId))]
  const maxConnected = Math.min(65535, inbound + outbound + persistentPeers.length)
  return {
    maxConnected,
    maxOutgoingConnections: 0,
    maxIncomingPeers: inbound,
    maxOutgoingPeers: outbound,
    maxConnectedUpgrade: 0,
    maxPeers: maxConnected === 0 ? 0 : Math.min(65535, 4 + 4 * maxConnected),
    persistentPeers,
    privatePeers: config.privatePeerIds ?? [],
    unconditionalPeers: config.unconditionalPeerIds ?? [],
    maxGracePeers: GRACE_PEERS,
    gracePeriod: GRACE_PERIOD,
    minConnectionDuration: MIN_CONNECTION_DURATION,
    ...config.peerManager
  }
}

/** Inbound peers a full node admits at once for a grace period (PeerManager `maxGracePeers`). */
export const GRACE_PEERS = 32
/** How long such a peer stays: time to ask for addresses and receive them. */
export const GRACE_PERIOD = 3_000
/** An outbound connection shorter than this backs its address off (PeerManager `minConnectionDuration`). */
export const MIN_CONNECTION_DURATION = 10_000

const routerOptions = (config: Config): RouterOptions => ({
  ...config.router,
  nodeInfo: {
    network: config.network,
    moniker: config.moniker,
    ...(config.version === undefined ? {} : { version: config.version }),
    ...(config.externalAddress === undefined || config.externalAddress === "" ? {} : { listenAddr: `tcp://${config.externalAddress}` }),
    ...config.router?.nodeInfo
  },
  channels: [...(config.pex === false ? [] : [PexService.descriptor]), ...(config.channels ?? []), ...(config.router?.channels ?? [])],
  ...(config.handshakeTimeout === undefined ? {} : { handshakeTimeout: config.handshakeTimeout }),
  ...(config.dialTimeout === undefined ? {} : { dialTimeout: config.dialTimeout })
})

/** Adds the configured persistent and bootstrap peers (after the stack is up, so PEX sees them come up). */
const addPeers = (config: Config) =>
  Layer.effectDiscard(Effect.gen(function* () {
    const peerManager = yield* PeerManager
    for (const address of [...(config.persistentPeers ?? []), ...(config.bootstrapPeers ?? [])]) {
      yield* peerManager.add(address).pipe(
        Effect.catchTag("InvalidPeerAddress", (e) => Effect.logWarning(`ignoring configured peer ${NodeAddress.format(address)}: ${e.message}`))
      )
    }
  }))

const assemble = <E1, E2, E3>(
  config: Config,
  identity: Layer.Layer<NodeIdentity.NodeIdentity, E1>,
  base: Layer.Layer<AddressResolver.AddressResolver | PeerStore, E2>,
  transport: Layer.Layer<Transport, E3, NodeIdentity.NodeIdentity>,
  memory: boolean
) => {
  // Built bottom-up: the key, then the listening transport, then the peer store. A node that
  // cannot listen (port in use) fails before it opens, or creates, its peer store.
  const core = RouterLayer.layer(routerOptions(config)).pipe(
    Layer.provideMerge(PeerManagerLayer.layer(peerManagerOptions(config))),
    Layer.provideMerge(base),
    Layer.provideMerge(transport),
    Layer.provideMerge(identity)
  )
  const pex = config.pex === false
    ? Layer.empty
    : PexLayer.layer({ seedMode: config.seedMode ?? false, memoryAddresses: memory })
  return addPeers(config).pipe(Layer.provideMerge(pex.pipe(Layer.provideMerge(core))))
}

/** A production node: TCP transport, SQLite peer store and node key under `home`, DNS resolution. */
export const layer = (config: Config) => {
  const home = config.home ?? DEFAULT_HOME
  const identity = config.nodeKey !== undefined ? NodeIdentity.layer(config.nodeKey) : NodeKeyFile.layer(join(home, "config", "node_key.json"))
  const base = Layer.mergeAll(PeerStoreSqlite.layerSqlite(join(home, "data", "peerstore.db"), config.peerStore), AddressResolver.layerDns())
  const transport = TcpTransport.layer({
    host: config.listen?.host ?? "127.0.0.1",
    port: config.listen?.port ?? 26656,
    // The inbound bound runs from accept, in the transport: the same handshake_timeout as the router's.
    ...(config.handshakeTimeout === undefined ? {} : { handshakeTimeout: config.handshakeTimeout }),
    ...(config.mconnection === undefined ? {} : { mconnection: config.mconnection }),
    ...(config.dialFrom === undefined ? {} : { dialFrom: config.dialFrom })
  })
  return assemble(config, identity, base, transport, false)
}

/** Options of a memory node beyond its `Config`. */
export interface MemoryOptions {
  /**
   * The peer store to use instead of a fresh one (e.g. one that outlives the node, so a restarted
   * node finds its peers again, as `Simulation.restart` does).
   */
  readonly peerStore?: PeerStore["Service"]
}

/**
 * The same node over a `MemoryNetwork` (tests, simulations): memory transport, in-memory peer
 * store (SQLite under `home` if one is given), and the given key or a random one. Its metrics go
 * to a registry of its own (`Metric.MetricRegistry`), so nodes sharing a process keep theirs apart.
 */
export const layerMemory = (network: MemoryNetworkService, config: Config, options: MemoryOptions = {}) => {
  const identity = config.nodeKey !== undefined ? NodeIdentity.layer(config.nodeKey) : NodeIdentity.layerRandom
  const store = options.peerStore !== undefined
    ? Layer.succeed(PeerStore, options.peerStore)
    : config.home === undefined
    ? PeerStoreMemory.layerMemory
    : PeerStoreSqlite.layerSqlite(join(config.home, "data", "peerstore.db"), config.peerStore)
  const base = Layer.mergeAll(store, AddressResolver.layerStatic({}))
  const transport = MemoryTransport.layer.pipe(Layer.provide(Layer.succeed(MemoryNetwork, network)))
  // Metrics are per process; many nodes in one process would share (and remove) each other's
  // series. Each memory node gets its own registry, released with the node.
  return assemble(config, identity, base, transport, true).pipe(Layer.provide(Layer.sync(Metric.MetricRegistry, () => new Map())))
}

/**
 * Shared helpers for the Router suites: a scriptable fake `Transport` whose connections hand out
 * scripted handshake results (docs/ARCHITECTURE.md#router 94-99 "mocked transport"), keys and NodeInfos for fake
 * peers, and a router node built over the fake transport.
 */
import type { DescMessage } from "@bufbuild/protobuf"
import { create } from "@bufbuild/protobuf"
import { BoolValueSchema, StringValueSchema } from "@bufbuild/protobuf/wkt"
import { Context, Deferred, Effect, Layer, Queue, type Scope } from "effect"
import * as ChannelDescriptor from "../../src/domain/ChannelDescriptor.ts"
import * as Endpoint from "../../src/domain/Endpoint.ts"
import * as NodeAddress from "../../src/domain/NodeAddress.ts"
import type * as NodeId from "../../src/domain/NodeId.ts"
import * as NodeInfo from "../../src/domain/NodeInfo.ts"
import * as NodeKey from "../../src/domain/NodeKey.ts"
import * as Handshake from "../../src/layers/Handshake.ts"
import * as PeerManagerLayer from "../../src/layers/PeerManager.ts"
import * as PeerStoreMemory from "../../src/layers/PeerStoreMemory.ts"
import * as RouterLayer from "../../src/layers/Router.ts"
import * as AddressResolver from "../../src/layers/AddressResolver.ts"
import * as NodeIdentity from "../../src/layers/NodeIdentity.ts"
import { PeerManager, zero, type OptionsInput } from "../../src/services/PeerManager.ts"
import { Router, type OptionsInput as RouterOptions } from "../../src/services/Router.ts"
import {
  ConnectionClosed,
  DialError,
  Transport,
  TransportClosed,
  type AcceptError,
  type Connection,
  type HandshakeError,
  type HandshakeOptions,
  type Peer,
  type Received
} from "../../src/services/Transport.ts"
import { key } from "../../src/testing/Keys.ts"

// ---------------------------------------------------------------------------------------------
// Messages and channels
// ---------------------------------------------------------------------------------------------

export const str = (value: string) => create(StringValueSchema, { value })
export const bool = (value: boolean) => create(BoolValueSchema, { value })

/** p2ptest's `MakeChannelDesc(id)`: priority 5, send queue 10. */
export const stringChannel = (id: number, extra: Partial<Omit<ChannelDescriptor.ChannelDescriptor, "id" | "messageType">> = {}) =>
  ChannelDescriptor.make({ id, messageType: StringValueSchema, priority: 5, sendQueueCapacity: 10, ...extra })

export const boolChannel = (id: number, extra: Partial<Omit<ChannelDescriptor.ChannelDescriptor, "id" | "messageType">> = {}) =>
  ChannelDescriptor.make({ id, messageType: BoolValueSchema, priority: 5, sendQueueCapacity: 10, ...extra })

// ---------------------------------------------------------------------------------------------
// Keys and NodeInfos
// ---------------------------------------------------------------------------------------------

/** A deterministic key; distinct `n` give distinct node IDs (the test kit's `Keys.key`). */
export { key }

/** The local node of the mock suites. */
export const selfKey = key(200)

/** A valid NodeInfo on network "test" serving channel 1. */
export const infoOf = (k: NodeKey.NodeKey, overrides: Partial<Parameters<typeof NodeInfo.make>[0]> = {}): NodeInfo.NodeInfo =>
  NodeInfo.make({ nodeId: k.nodeId, listenAddr: "tcp://10.0.0.1:26656", network: "test", moniker: `peer-${k.nodeId.slice(0, 6)}`, channels: [1], ...overrides })

/** What the peer of key `k` presents in a handshake. */
export const peerOf = (k: NodeKey.NodeKey, overrides: Partial<Parameters<typeof NodeInfo.make>[0]> = {}): Peer => ({
  nodeInfo: infoOf(k, overrides),
  publicKey: k.publicKey
})

/** `mock:<id>`: an address the fake transport dials. */
export const mockAddress = (id: NodeId.NodeId) => NodeAddress.make({ protocol: "mock", nodeId: id })

let nextIp = 1
/** A fresh remote endpoint with its own IP, so the per-IP tracker never links two fake connections. */
export const freshEndpoint = (path = ""): Endpoint.Endpoint => {
  const n = nextIp++
  return Endpoint.make({ protocol: "mock", ip: `10.${(n >> 16) & 0xff}.${(n >> 8) & 0xff}.${n & 0xff}`, port: 26656, path })
}

// ---------------------------------------------------------------------------------------------
// Fake connections
// ---------------------------------------------------------------------------------------------

/** Decides a fake connection's handshake. `remote` is the rendering of the remote endpoint. */
export type Script = (options: HandshakeOptions, remote: string) => Effect.Effect<Peer, HandshakeError>

/** The peer presents `peer`; the shared checks every real transport runs (`Handshake.run`) apply. */
export const presents = (peer: Peer): Script => (options, remote) => Handshake.run(remote, options, Effect.succeed(peer))

/** The peer presents `peer` and the transport checks nothing (a transport that breaks the contract). */
export const presentsUnchecked = (peer: Peer): Script => () => Effect.succeed(peer)

/** The exchange waits for `gate`, then presents `peer`; the handshake timeout is honoured (`Handshake.run`). */
export const presentsAfter = (gate: Deferred.Deferred<void>, peer: Peer): Script => (options, remote) =>
  Handshake.run(remote, options, Effect.as(Deferred.await(gate), peer))

/** The peer never answers and the transport ignores the timeout: only the router can give up. */
export const neverAnswers: Script = () => Effect.never

/** A fake connection: scripted handshake, injectable inbound messages, recorded sends and closes. */
export interface FakeConnection extends Connection {
  /** Handshakes started. */
  readonly handshakes: () => number
  /** Options of every handshake call. */
  readonly handshakeOptions: ReadonlyArray<HandshakeOptions>
  /** Times `close` was called. */
  readonly closes: () => number
  readonly isClosed: () => boolean
  /** Messages the router sent. */
  readonly sent: ReadonlyArray<Received>
  /** Makes `receive` return this message (as if the peer sent it). */
  readonly inject: (channelId: number, data: Uint8Array) => Effect.Effect<void>
}

export const makeConnection = (script: Script, remoteEndpoint: Endpoint.Endpoint = freshEndpoint()): Effect.Effect<FakeConnection> =>
  Effect.gen(function* () {
    const remote = Endpoint.format(remoteEndpoint)
    const closedError = () => new ConnectionClosed({ remote, message: `fake connection to ${remote} is closed` })
    const inbound = yield* Queue.unbounded<Received, ConnectionClosed>()
    const closed = yield* Deferred.make<void>()
    const handshakeOptions: Array<HandshakeOptions> = []
    const sent: Array<Received> = []
    let handshakes = 0
    let closes = 0
    let isClosed = false
    const close = Effect.suspend(() => {
      closes++
      if (isClosed) return Effect.void
      isClosed = true
      return Effect.andThen(Queue.fail(inbound, closedError()), Deferred.succeed(closed, undefined))
    })
    return {
      localEndpoint: Endpoint.make({ protocol: "mock", ip: "10.255.255.254", port: 26656 }),
      remoteEndpoint,
      handshake: (options) =>
        Effect.suspend(() => {
          handshakes++
          handshakeOptions.push(options)
          return isClosed ? Effect.fail(closedError()) : script(options, remote)
        }),
      send: (channelId, data) =>
        Effect.suspend(() => {
          if (isClosed) return Effect.fail(closedError())
          sent.push({ channelId, data })
          return Effect.void
        }),
      receive: Queue.take(inbound),
      close,
      awaitClosed: Deferred.await(closed),
      handshakes: () => handshakes,
      handshakeOptions,
      closes: () => closes,
      isClosed: () => isClosed,
      sent,
      inject: (channelId, data) => Effect.asVoid(Queue.offer(inbound, { channelId, data }))
    }
  })

// ---------------------------------------------------------------------------------------------
// Fake transport
// ---------------------------------------------------------------------------------------------

type AcceptResult =
  | { readonly _tag: "conn"; readonly conn: FakeConnection }
  | { readonly _tag: "error"; readonly error: TransportClosed | AcceptError }

/** A transport whose inbound connections and dial outcomes the test decides. */
export interface FakeTransport {
  readonly service: Transport["Service"]
  /** Queues an inbound connection for `accept`. */
  readonly incoming: (conn: FakeConnection) => Effect.Effect<void>
  /** Makes the next `accept` fail with this error. */
  readonly acceptFails: (error: TransportClosed | AcceptError) => Effect.Effect<void>
  /** Calls of `accept` so far. */
  readonly acceptCalls: () => number
  /** Endpoints dialed so far, in order. */
  readonly dials: ReadonlyArray<Endpoint.Endpoint>
  /** What dialing the node `id` does: a connection, or a `DialError`. Unlisted IDs are refused. */
  readonly onDial: (id: NodeId.NodeId, outcome: Effect.Effect<FakeConnection, DialError>) => void
}

export const makeTransport: Effect.Effect<FakeTransport> = Effect.gen(function* () {
  const queue = yield* Queue.unbounded<AcceptResult>()
  const dials: Array<Endpoint.Endpoint> = []
  const outcomes = new Map<string, Effect.Effect<FakeConnection, DialError>>()
  let acceptCalls = 0
  let closed = false
  const closedError = () => new TransportClosed({ transport: "mock", message: "transport mock is closed" })
  /** Connections belong to the caller's scope, as the Transport contract says. */
  const own = (conn: FakeConnection) => Effect.as(Effect.addFinalizer(() => conn.close), conn)

  const accept: Effect.Effect<Connection, TransportClosed | AcceptError, Scope.Scope> = Effect.gen(function* () {
    acceptCalls++
    if (closed) return yield* closedError()
    const next = yield* Queue.take(queue)
    if (next._tag === "error") {
      if (next.error._tag === "TransportClosed") closed = true
      return yield* Effect.fail(next.error)
    }
    return yield* own(next.conn)
  })

  const service = Transport.of({
    name: "mock",
    protocols: ["mock"],
    endpoints: Effect.succeed([]),
    accept,
    dial: (endpoint) =>
      Effect.gen(function* () {
        dials.push(endpoint)
        const outcome = outcomes.get(endpoint.path)
        if (outcome === undefined) {
          return yield* new DialError({ endpoint: Endpoint.format(endpoint), reason: "refused", message: `no fake peer at ${Endpoint.format(endpoint)}` })
        }
        return yield* Effect.flatMap(outcome, own)
      }),
    close: Effect.sync(() => {
      closed = true
    })
  })

  return {
    service,
    incoming: (conn) => Effect.asVoid(Queue.offer(queue, { _tag: "conn", conn })),
    acceptFails: (error) => Effect.asVoid(Queue.offer(queue, { _tag: "error", error })),
    acceptCalls: () => acceptCalls,
    dials,
    onDial: (id, outcome) => void outcomes.set(id, outcome)
  }
})

// ---------------------------------------------------------------------------------------------
// A router over the fake transport
// ---------------------------------------------------------------------------------------------

/** The default channel of the mock suites: StringValue on channel 1. */
export const channel1 = stringChannel(1)

export interface MockNode {
  readonly key: NodeKey.NodeKey
  readonly router: Router["Service"]
  readonly peerManager: PeerManager["Service"]
  readonly transport: FakeTransport
}

/**
 * A router over a fake transport, with a PeerManager over an in-memory store (zero options: no
 * limits, no retries) and a static resolver, built in the caller's scope.
 */
export const makeNode = (options: {
  readonly key?: NodeKey.NodeKey
  readonly router?: Partial<RouterOptions>
  readonly peerManager?: OptionsInput
  readonly channels?: ReadonlyArray<ChannelDescriptor.ChannelDescriptor<DescMessage>>
} = {}): Effect.Effect<MockNode, unknown, Scope.Scope> =>
  Effect.gen(function* () {
    const k = options.key ?? selfKey
    const transport = yield* makeTransport
    const routerOptions: RouterOptions = {
      queueType: "fifo",
      channels: options.channels ?? [channel1],
      ...options.router,
      nodeInfo: { network: "test", moniker: "local", ...options.router?.nodeInfo }
    }
    const stack = RouterLayer.layer(routerOptions).pipe(
      Layer.provideMerge(Layer.mergeAll(Layer.succeed(Transport, transport.service), PeerManagerLayer.layer({ ...zero, ...options.peerManager }))),
      Layer.provideMerge(Layer.mergeAll(NodeIdentity.layer(k), PeerStoreMemory.layerMemory, AddressResolver.layerStatic({})))
    )
    const context = yield* Layer.build(stack)
    return { key: k, router: Context.get(context, Router), peerManager: Context.get(context, PeerManager), transport }
  })

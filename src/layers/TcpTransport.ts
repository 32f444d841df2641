/**
 * The TCP transport, wire-compatible with CometBFT (docs/PROTOCOL.md): protocols `mconn` and
 * `tcp`; each connection runs the SecretConnection handshake, exchanges `DefaultNodeInfo`
 * (10240-byte cap), is checked by the shared handshake rules, and then carries an MConnection.
 * Sockets are real `node:net` sockets wrapped by `effect/socket`; every one is owned by a scope.
 *
 * @since 0.1.0
 */
import * as Net from "node:net"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberSet from "effect/FiberSet"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import * as Queue from "effect/Queue"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import type * as Fiber from "effect/Fiber"
import * as ChannelDescriptor from "../domain/ChannelDescriptor.ts"
import * as Endpoint from "../domain/Endpoint.ts"
import { FlowMonitor } from "../domain/FlowMonitor.ts"
import * as Ip from "../domain/Ip.ts"
import * as ListenFailure from "../domain/ListenFailure.ts"
import * as Opt from "../domain/Options.ts"
import * as Metrics from "./Metrics.ts"
import { NodeIdentity } from "../services/NodeIdentity.ts"
import {
  ConnectionClosed,
  ConnectionError,
  DialError,
  HandshakeAuthFailed,
  Transport,
  TransportClosed,
  type Connection,
  type ConnectionStatus,
  type HandshakeOptions,
  type Peer
} from "../services/Transport.ts"
import { MessageSchema } from "../proto/tendermint/p2p/pex_pb.ts"
import { defaultAead } from "../wire/SodiumAead.ts"
import { nodeCryptoAead, type FrameAeadFactory } from "../wire/FrameCipher.ts"
import * as Handshake from "./Handshake.ts"
import * as ByteStream from "./tcp/ByteStream.ts"
import * as MConnection from "./tcp/MConnection.ts"
import * as MConnectionConfig from "./tcp/MConnectionConfig.ts"
import * as OpenFiles from "./tcp/OpenFiles.ts"
import * as SecretConnection from "./tcp/SecretConnection.ts"

/**
 * Socket buffer watermarks: how much Node reads ahead from the kernel and buffers for writing
 * before waiting. Node's 16 KiB default turns a 64 KiB packed write into a stop-and-go exchange.
 */
const SOCKET_BUFFER = 256 * 1024

/** Least time between two warnings about refused inbound connections, ms. */
const REFUSAL_WARNING_INTERVAL = 10_000

/** The protocols this transport serves. */
export const PROTOCOLS = ["mconn", "tcp"] as const

/** CometBFT's P2P port, used when an endpoint gives none (not the RPC port, 26657). */
export const DEFAULT_PORT = 26656

/** Defaults of the time bounds in {@link Options}, ms. */
export const DEFAULT_HANDSHAKE_TIMEOUT = 20_000
export const DEFAULT_EPHEMERAL_KEY_TIMEOUT = 3_000

const positive = (field: "handshakeTimeout" | "ephemeralKeyTimeout") =>
  Opt.rule<{ readonly [K in typeof field]: number }>(field, (o) => o[field] > 0, "must be positive")

/** Options of the TCP transport, as one schema (`domain/Options.ts`); every field optional. */
export const OptionsInput = Schema.Struct({
  /** Address to listen on. Default 127.0.0.1, port 0 (any free port). */
  host: Opt.withDefault(Schema.String, "127.0.0.1"),
  port: Opt.withDefault(Opt.Count(65535), 0),
  /** MConnection settings (CometBFT's `[p2p]` values by default). */
  mconnection: Opt.withDefault(MConnectionConfig.ConfigInput, MConnectionConfig.defaults),
  /** Accepted sockets waiting for `accept` at most; more are closed at once. Default 64. */
  maxPendingConnections: Opt.withDefault(Opt.Between(1, 1_000_000), 64),
  /**
   * Inbound sockets open at once (any phase, from accept to close); more are closed at once.
   * Default: what the process's open-file limit (`ulimit -n`) leaves after the descriptors in use
   * and 64 kept for outbound dials, HTTP and the peer store, at most 1024. Keeping inbound sockets
   * below the limit keeps the node able to dial out and answer `/metrics` during a flood.
   */
  maxInboundSockets: Schema.optionalKey(Opt.Between(1, 1_000_000)),
  /** Frame cipher: "auto" (libsodium when installed, else node:crypto) or "node". Default "auto". */
  cipher: Opt.withDefault(Schema.Literals(["auto", "node"]), "auto"),
  /**
   * Bound on an inbound connection from the moment it is accepted until its handshake completes,
   * whatever it is waiting for (a slot, the peer's bytes): past it the socket is closed, and a
   * handshake in progress fails with `HandshakeTimeout`. Default 20 s (CometBFT's `handshake_timeout`).
   */
  handshakeTimeout: Opt.withDefault(Opt.Millis, DEFAULT_HANDSHAKE_TIMEOUT),
  /**
   * Bound, from the moment a connection is opened (accepted or dialed), on the arrival of the
   * peer's ephemeral key, the first 35 bytes of the handshake: a peer that sends nothing, or
   * trickles, is dropped long before the whole handshake's bound. Default 3 s.
   */
  ephemeralKeyTimeout: Opt.withDefault(Opt.Millis, DEFAULT_EPHEMERAL_KEY_TIMEOUT),
  /**
   * Local IP address outgoing connections are bound to (the kernel picks the port), so peers see
   * dials come from it: on a machine with several addresses, the one to dial from (the e2e
   * runner's loopback mode gives each node one of 127.0.1.x and tells their links apart by it).
   * An endpoint of the other IP family is dialed unbound. Default: none (the kernel's choice).
   */
  dialFrom: Schema.optionalKey(Schema.String.check(Schema.makeFilter((s: string) => Ip.isValid(s) || `${JSON.stringify(s)} is not an IP address`)))
}).check(positive("handshakeTimeout"), positive("ephemeralKeyTimeout"))

/** Options as callers write them; every field is optional. */
export type Options = typeof OptionsInput.Encoded

/**
 * The transport could not listen. `reason`: `in_use` (another process holds the port),
 * `permission` (a privileged port, or not allowed), `unavailable` (the address is not one of this
 * machine's), `invalid_options`, or `io` (anything else; the message says what).
 */
export class TransportListenError extends Schema.TaggedError<TransportListenError>()("TransportListenError", {
  address: Schema.String,
  reason: Schema.Literals(["in_use", "permission", "unavailable", "invalid_options", "io"]),
  message: Schema.String
}) {}



const hostText = (ip: string, port: number) => (ip.includes(":") ? `[${ip}]:${port}` : `${ip}:${port}`)

const endpointOf = (address: string | undefined, port: number | undefined) => {
  const ip = Option.getOrElse(Ip.canonical(address ?? ""), () => address ?? "")
  return Endpoint.make({ protocol: "mconn", ip, port: port ?? 0 })
}

/** Descriptors for a channel list when the caller gave none (a conformance test, a crawler). */
const defaultDescriptors = (channels: Uint8Array) =>
  [...channels].map((id) => ChannelDescriptor.make({ id, messageType: MessageSchema, sendQueueCapacity: 16 }))

/** The status of a connection that has carried nothing yet. */
const idleStatus = (now: number): ConnectionStatus => {
  const flow = new FlowMonitor(now).status(now)
  return { duration: 0, send: flow, receive: flow, channels: [] }
}

/** When a connection was opened and the deadlines that run from then (epoch ms). */
interface Deadlines {
  /** The peer's ephemeral key must have arrived by then. */
  readonly ephemeralKey: number
  /** The handshake must be over by then (inbound; `undefined` for dials, bounded by the caller). */
  readonly handshake: number | undefined
}

/**
 * Wraps a connected socket as a `Connection` owned by the current scope. `onHandshakeStart` is
 * called when a handshake begins: from then on the handshake's own bound (which ends at the same
 * deadline) keeps the time.
 *
 * The per-connection functions of the TCP layer (here, in `tcp/`) are `Effect.fnUntraced`: spans
 * on them cost a measurable 3-5% of `tcp-handshake`; the router's connection spans cover them.
 */
const makeConnection = Effect.fnUntraced(function* (
  socket: Net.Socket,
  aead: FrameAeadFactory,
  config: MConnection.Config,
  deadlines: Deadlines,
  onHandshakeStart: () => void
): Effect.fn.Return<Connection, never, Scope.Scope> {
  const scope = yield* Effect.scope
  const local = endpointOf(socket.localAddress, socket.localPort)
  const remoteEndpoint = endpointOf(socket.remoteAddress, socket.remotePort)
  const remote = hostText(remoteEndpoint.ip, remoteEndpoint.port)
  const stream = yield* ByteStream.fromNetSocket(socket, remote)
  const closed = yield* Deferred.make<void>()
  socket.once("close", () => Deferred.doneUnsafe(closed, Exit.void))
  let mconn: MConnection.MConnection | undefined
  let handshaking = false

  // Before a handshake succeeded: closed if the socket is gone (a failed handshake closes it), else not ready.
  const notReady = () =>
    socket.destroyed
      ? Effect.fail(new ConnectionClosed({ remote, message: `connection to ${remote} is closed` }))
      : Effect.fail(new ConnectionError({ remote, reason: "not_handshaken", message: `connection to ${remote} has not completed its handshake` }))

  const exchange = Effect.fnUntraced(function* (options: HandshakeOptions) {
    // Our NodeInfo goes in the same write as our AuthSig (one round trip fewer; the same frames on
    // the wire): it leaves before the peer's signature is checked, sealed under this connection's
    // keys, and it is what any peer that completes a handshake receives anyway.
    const secret = yield* SecretConnection.handshake(stream, options.nodeKey, remote, aead, deadlines.ephemeralKey, options.nodeInfo)
    const nodeInfo = yield* SecretConnection.exchangeNodeInfo(stream, secret, options.nodeInfo, remote)
    return { peer: { nodeInfo, publicKey: secret.remotePublicKey } satisfies Peer, secret }
  })

  const handshake = Effect.fnUntraced(function* (options: HandshakeOptions) {
    if (handshaking || mconn !== undefined) {
      return yield* new HandshakeAuthFailed({ remote, message: `connection to ${remote} is already handshaked` })
    }
    handshaking = true
    onHandshakeStart()
    let secret: SecretConnection.Secret | undefined
    // An inbound connection's bound runs from its accept, not from this call: the time it waited
    // for a slot counts.
    const now = yield* Clock.currentTimeMillis
    const requested = Duration.toMillis(Duration.fromInputUnsafe(options.timeout ?? DEFAULT_HANDSHAKE_TIMEOUT))
    const timeout = deadlines.handshake === undefined ? requested : Math.max(0, Math.min(requested, deadlines.handshake - now))
    const peer = yield* Handshake.run(remote, { ...options, timeout }, Effect.map(exchange(options), (r) => {
      secret = r.secret
      return r.peer
    }))
    const channels = options.channels ?? defaultDescriptors(options.nodeInfo.channels)
    mconn = yield* Scope.provide(MConnection.make({
      stream,
      secret: secret!,
      channels,
      peerChannels: new Set(peer.nodeInfo.channels),
      config,
      remote
    }), scope)
    return peer
  }, Effect.onError(() => stream.close))

  const receiveLater = Effect.suspend(() => (mconn === undefined ? notReady() : mconn.receive))
  return {
    localEndpoint: local,
    remoteEndpoint,
    handshake,
    // Once handshaken, the MConnection's own effects: no layer of ours on the per-message path.
    send: (channelId, data) =>
      mconn !== undefined ? mconn.send(channelId, data) : Effect.suspend(() => (mconn === undefined ? notReady() : mconn.send(channelId, data))),
    get receive() {
      return mconn !== undefined ? mconn.receive : receiveLater
    },
    close: Effect.suspend(() => (mconn === undefined ? stream.close : mconn.close)),
    awaitClosed: Deferred.await(closed),
    // Before the handshake nothing has been sent on any channel.
    status: Effect.suspend(() => (mconn === undefined ? Effect.map(Clock.currentTimeMillis, idleStatus) : mconn.status))
  }
})

const checkDialEndpoint = (endpoint: Endpoint.Endpoint): Result.Result<{ host: string; port: number }, DialError> => {
  const text = Endpoint.format(endpoint)
  const bad = (reason: DialError["reason"], detail: string) =>
    Result.fail(new DialError({ endpoint: text, reason, message: `cannot dial ${text || "an empty endpoint"}: ${detail}` }))
  if (!(PROTOCOLS as ReadonlyArray<string>).includes(endpoint.protocol)) return bad("unsupported_protocol", `protocol ${JSON.stringify(endpoint.protocol)} is not mconn or tcp`)
  if (endpoint.path !== "") return bad("invalid_endpoint", "a TCP endpoint has no path")
  const ip = Ip.parse(endpoint.ip)
  if (Option.isNone(ip)) return bad("invalid_endpoint", endpoint.ip === "" ? "a TCP endpoint needs an IP" : `${JSON.stringify(endpoint.ip)} is not an IP address`)
  if (Ip.isBroadcast(ip.value)) return bad("invalid_endpoint", "cannot dial a broadcast address")
  if (Ip.isMulticast(ip.value)) return bad("invalid_endpoint", "cannot dial a multicast address")
  return Result.succeed({ host: endpoint.ip, port: endpoint.port === 0 ? DEFAULT_PORT : endpoint.port })
}

/** Builds a listening TCP transport in the current scope. */
export const make = Effect.fn("TcpTransport.make")(function* (
  input: Options = {}
): Effect.fn.Return<Transport["Service"], TransportListenError, NodeIdentity | Scope.Scope> {
  yield* NodeIdentity // the identity is used per handshake; required so layers wire it in
  const decoded = Opt.decode(OptionsInput, input)
  if (Result.isFailure(decoded)) {
    const { option, message } = decoded.failure
    const where = Predicate.hasProperty(input, "host") || Predicate.hasProperty(input, "port") ? hostText(String(input.host ?? "127.0.0.1"), Number(input.port ?? 0)) : "127.0.0.1:0"
    return yield* new TransportListenError({ address: where, reason: "invalid_options", message: `invalid TCP transport option ${option}: ${message}` })
  }
  const options = decoded.success
  const config: MConnection.Config = options.mconnection
  const aead = options.cipher === "node" ? nodeCryptoAead : defaultAead
  const maxPending = options.maxPendingConnections
  const fdLimit = OpenFiles.softLimit()
  const maxInbound = options.maxInboundSockets ?? OpenFiles.inboundBudget(fdLimit, OpenFiles.openCount())
  if (options.maxInboundSockets === undefined && fdLimit !== undefined && maxInbound < 32) {
    yield* Effect.logWarning(`the open-file limit (ulimit -n) is ${fdLimit}: it leaves room for only ${maxInbound} inbound connections; raise it (e.g. ulimit -n 4096)`)
  }
  const host = options.host
  const { handshakeTimeout, ephemeralKeyTimeout } = options
  const dialFrom = options.dialFrom === undefined ? undefined : Option.getOrElse(Ip.canonical(options.dialFrom), () => options.dialFrom!)
  const clock = yield* Clock.Clock
  const context = yield* Effect.context<never>()
  // Every accepted socket has a watchdog from its accept: past the handshake bound, a socket whose
  // handshake has not started (it waits in a queue, or nobody took it) is closed. Once a handshake
  // starts, its own bound ends at the same deadline. The fibers belong to the transport's scope.
  const runWatchdog = yield* FiberSet.makeRuntime<never, void, never>()
  const accepted = new WeakMap<Net.Socket, { readonly at: number; readonly watchdog: Fiber.Fiber<void> }>()
  const refusedFdLimit = Metric.withAttributes(Metrics.inboundRefused, { reason: "fd_limit" })
  const refusedPending = Metric.withAttributes(Metrics.inboundRefused, { reason: "accept_queue_full" })
  // One warning per interval, with the count since the last one: a flood must not flood the log.
  let refusedSinceWarning = 0
  let lastWarning = Number.NEGATIVE_INFINITY
  const refuseForFds = (socket: Net.Socket) => {
    socket.destroy()
    refusedFdLimit.updateUnsafe(1, context)
    refusedSinceWarning++
    const now = Date.now()
    if (now - lastWarning < REFUSAL_WARNING_INTERVAL) return
    lastWarning = now
    const refused = refusedSinceWarning
    refusedSinceWarning = 0
    Effect.runForkWith(context)(Effect.logWarning(
      `refused ${refused} inbound connection(s): ${inbound} inbound sockets are open, the most the open-file limit` +
        `${fdLimit === undefined ? "" : ` (ulimit -n ${fdLimit})`} allows while keeping descriptors for outbound peers and HTTP; raise it with ulimit -n`
    ))
  }
  let inbound = 0
  const name = "mconn"
  const pending = yield* Queue.unbounded<Net.Socket, TransportClosed>()
  let closed = false
  let listening: Endpoint.Endpoint | undefined

  const server = Net.createServer({ pauseOnConnect: true, noDelay: true, highWaterMark: SOCKET_BUFFER })
  server.on("connection", (socket) => {
    if (closed) return void socket.destroy()
    if (inbound >= maxInbound) return refuseForFds(socket)
    if (Queue.sizeUnsafe(pending) >= maxPending) {
      refusedPending.updateUnsafe(1, context)
      return void socket.destroy()
    }
    inbound++
    const at = clock.currentTimeMillisUnsafe()
    const watchdog = runWatchdog(Effect.andThen(Effect.sleep(handshakeTimeout), Effect.sync(() => socket.destroy())))
    accepted.set(socket, { at, watchdog })
    socket.once("close", () => {
      inbound--
      watchdog.interruptUnsafe()
    })
    socket.on("error", () => {})
    Queue.offerUnsafe(pending, socket)
  })
  yield* Effect.callback<void, TransportListenError>((resume) => {
    const onError = (e: NodeJS.ErrnoException) => {
      const address = hostText(host, options.port)
      resume(Effect.fail(new TransportListenError({ address, ...ListenFailure.describe(`tcp://${address}`, e) })))
    }
    server.once("error", onError)
    server.listen({ host, port: options.port }, () => {
      server.off("error", onError)
      resume(Effect.void)
    })
  })
  const address = server.address()
  if (address !== null && typeof address === "object") listening = endpointOf(address.address, address.port)

  const close = Effect.suspend(() => {
    if (closed) return Effect.void
    closed = true
    listening = undefined
    return Effect.gen(function* () {
      const waiting = yield* Queue.clear(pending).pipe(Effect.orElseSucceed(() => []))
      for (const s of waiting) s.destroy()
      yield* Queue.fail(pending, new TransportClosed({ transport: name, message: "the TCP transport is closed" }))
      // Stops listening at once; the callback would wait for every established connection.
      server.close()
    })
  })
  yield* Effect.addFinalizer(() => close)

  const accept: Effect.Effect<Connection, TransportClosed, Scope.Scope> = Effect.gen(function* () {
    if (closed) return yield* new TransportClosed({ transport: name, message: "the TCP transport is closed" })
    const socket = yield* Queue.take(pending)
    const at = accepted.get(socket)?.at ?? (yield* Clock.currentTimeMillis)
    return yield* makeConnection(socket, aead, config, { ephemeralKey: at + ephemeralKeyTimeout, handshake: at + handshakeTimeout }, () =>
      accepted.get(socket)?.watchdog.interruptUnsafe())
  })

  const dial = Effect.fnUntraced(function* (endpoint: Endpoint.Endpoint): Effect.fn.Return<Connection, DialError, Scope.Scope> {
    const target = yield* Effect.fromResult(checkDialEndpoint(endpoint))
    const text = hostText(target.host, target.port)
    const socket = yield* Effect.callback<Net.Socket, DialError>((resume) => {
      const bind = dialFrom !== undefined && Net.isIP(dialFrom) === Net.isIP(target.host)
      const s = Net.connect({ host: target.host, port: target.port, noDelay: true, highWaterMark: SOCKET_BUFFER, ...(bind ? { localAddress: dialFrom } : {}) } as Net.NetConnectOpts)
      s.pause()
      const onError = (e: NodeJS.ErrnoException) => {
        s.destroy()
        resume(Effect.fail(new DialError({
          endpoint: text,
          reason: e.code === "ECONNREFUSED" ? "refused" : "io",
          message: e.code === "EMFILE" || e.code === "ENFILE"
            ? `cannot dial ${text}: too many open files (the open-file limit, ulimit -n, is reached; raise it)`
            : e.code === "EADDRNOTAVAIL" && bind
            ? `cannot dial ${text} from ${dialFrom}: it is not an address of this machine (the dialFrom option)`
            : `cannot dial ${text}: ${e.message}`
        })))
      }
      s.once("error", onError)
      s.once("connect", () => {
        s.off("error", onError)
        s.on("error", () => {})
        resume(Effect.succeed(s))
      })
      return Effect.sync(() => s.destroy())
    })
    const at = yield* Clock.currentTimeMillis
    return yield* makeConnection(socket, aead, config, { ephemeralKey: at + ephemeralKeyTimeout, handshake: undefined }, () => {})
  })

  return Transport.of({
    name,
    protocols: PROTOCOLS,
    endpoints: Effect.sync(() => (listening === undefined ? [] : [listening])),
    accept,
    dial,
    close
  })
})

/** A listening TCP transport as a layer; closing it stops listening (connections are owned by their users). */
export const layer = (options: Options = {}): Layer.Layer<Transport, TransportListenError, NodeIdentity> => Layer.effect(Transport, make(options))

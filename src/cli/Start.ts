/**
 * `effect-p2p start`: runs a node until SIGINT/SIGTERM. Flags override `config.toml`, which
 * overrides the defaults; everything is validated before anything is written; the first run creates
 * the config and key. Logs follow `log_level`/`log_format`. HTTP: `/metrics` (with the RPC
 * endpoints beside it) on `instrumentation.prometheus_listen_addr` when `prometheus` is on, and the
 * RPC endpoints alone on `rpc.laddr` when it is set: on TCP, or on a unix socket
 * (`unix:///abs/path.sock`, which also serves /metrics while `prometheus` is on). With `--probe`
 * the node runs the probe reactor (`Probe.ts`, channel 0x7f) and its counters are on /metrics.
 * Shutdown closes connections and the peer store.
 *
 * @since 0.1.0
 */
import * as Net from "node:net"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Result from "effect/Result"
import * as Endpoint from "../domain/Endpoint.ts"
import { formatGoDuration } from "../domain/GoDuration.ts"
import * as ListenFailure from "../domain/ListenFailure.ts"
import * as NodeHttp from "../layers/NodeHttp.ts"
import * as NodeLayer from "../layers/Node.ts"
import { Router } from "../services/Router.ts"
import { Transport } from "../services/Transport.ts"
import * as Config from "./Config.ts"
import { CommandFailure } from "./Failure.ts"
import * as Home from "./Home.ts"
import * as LogLevel from "./LogLevel.ts"
import * as Probe from "./Probe.ts"
import * as Settle from "./Settle.ts"

/** The version the node reports (NodeInfo `version`, `--version`). */
export const VERSION = "0.1.0"

/** What `start` is told besides the configuration. */
export interface StartOptions {
  /** Move a damaged peer store aside (kept) and start with an empty one (`--recover-peer-store`). */
  readonly recoverPeerStore?: boolean
  /** Run the probe reactor on channel 0x7f (`--probe`). */
  readonly probe?: boolean
  /** How often the probe sends to each peer (`--probe-interval`, a Go duration such as "100ms"); implies `probe`. */
  readonly probeInterval?: string | undefined
}

/** Whether the options ask for the probe. */
const probeOn = (options: StartOptions) => options.probe === true || options.probeInterval !== undefined

/**
 * The probe's sending interval in ms ({@link Probe.DEFAULT_INTERVAL} unless `--probe-interval`
 * says), or `undefined` when the probe is off. A bad interval is a `ConfigError` naming the flag.
 */
export const probeInterval = (options: StartOptions): Result.Result<number | undefined, Config.ConfigError> =>
  !probeOn(options)
    ? Result.succeed(undefined)
    : options.probeInterval === undefined
    ? Result.succeed(Probe.DEFAULT_INTERVAL)
    : Config.probeInterval("--probe-interval", options.probeInterval)

/** The resolved configuration as a `Node.Config`. */
export const toNodeConfig = (home: string, c: Config.NodeConfig, options: StartOptions = {}): NodeLayer.Config => ({
  home,
  ...(options.recoverPeerStore === true ? { peerStore: { recoverCorrupt: true } } : {}),
  network: c.network,
  moniker: c.moniker,
  version: `effect-p2p/${VERSION}`,
  listen: c.p2p.laddr,
  ...(c.p2p.externalAddress === "" ? {} : { externalAddress: c.p2p.externalAddress }),
  ...(c.p2p.dialFrom === "" ? {} : { dialFrom: c.p2p.dialFrom }),
  persistentPeers: c.p2p.persistentPeers,
  bootstrapPeers: [...c.p2p.bootstrapPeers, ...c.p2p.seeds],
  privatePeerIds: c.p2p.privatePeerIds,
  unconditionalPeerIds: c.p2p.unconditionalPeerIds,
  maxInboundPeers: c.p2p.maxNumInboundPeers,
  maxOutboundPeers: c.p2p.maxNumOutboundPeers,
  pex: c.p2p.pex || c.p2p.seedMode,
  seedMode: c.p2p.seedMode,
  handshakeTimeout: c.p2p.handshakeTimeout,
  dialTimeout: c.p2p.dialTimeout,
  mconnection: { maxPacketMsgPayloadSize: c.p2p.maxPacketMsgPayloadSize, sendRate: c.p2p.sendRate, recvRate: c.p2p.recvRate, pingInterval: c.p2p.pingInterval, pongTimeout: c.p2p.pongTimeout },
  ...(c.p2p.persistentPeersMaxDialPeriod > 0 ? { peerManager: { maxRetryTimePersistent: c.p2p.persistentPeersMaxDialPeriod } } : {}),
  ...(probeOn(options) ? { channels: [Probe.descriptor] } : {}),
  ...(c.rpc.laddr === "" ? {} : { router: { nodeInfo: { network: c.network, moniker: c.moniker, other: { rpcAddress: rpcAddress(c.rpc.laddr) } } } })
})

/** `rpc.laddr` as CometBFT advertises it (`rpc_address`): with its scheme. */
const rpcAddress = (laddr: string) => (NodeHttp.isUnixAddress(laddr) ? laddr : `tcp://${laddr}`)

/** Whether an HTTP address listens on loopback only (`127.x.y.z`, `::1`, `localhost`). */
const isLoopbackAddress = (address: string) => {
  const host = NodeHttp.splitHostPort(address)?.host ?? ""
  return host === "localhost" || /^127\./.test(host) || host === "::1"
}

/**
 * The HTTP servers the configuration asks for: metrics (with RPC beside it) and RPC alone. The
 * unsafe methods (bans) are on where the server listens on loopback only or on a unix socket (both
 * reachable from this machine only), or with `rpc.unsafe`. An RPC server on a unix socket also
 * serves /metrics while `prometheus` is on: it is how a process outside the node's network
 * namespace reads everything through one file.
 */
export const httpServers = (c: Config.NodeConfig): ReadonlyArray<NodeHttp.ServerOptions> => {
  const metrics = c.instrumentation.prometheus && c.instrumentation.httpAddr !== ""
  const unsafe = (address: string) => c.rpc.unsafe || isLoopbackAddress(address) || NodeHttp.isUnixAddress(address)
  return [
    ...(metrics
      ? [{ address: c.instrumentation.httpAddr, metrics: true, rpc: true, unsafe: unsafe(c.instrumentation.httpAddr), namespace: c.instrumentation.namespace, maxOpenConnections: c.instrumentation.maxOpenConnections }]
      : []),
    ...(c.rpc.laddr !== "" && !(metrics && c.rpc.laddr === c.instrumentation.httpAddr)
      ? [{
        address: c.rpc.laddr,
        metrics: c.instrumentation.prometheus && NodeHttp.isUnixAddress(c.rpc.laddr),
        rpc: true,
        unsafe: unsafe(c.rpc.laddr),
        namespace: c.instrumentation.namespace,
        maxOpenConnections: c.rpc.maxOpenConnections
      }]
      : [])
  ]
}

/** The logger `log_level` and `log_format` ask for. */
export const logging = (c: Config.NodeConfig): Layer.Layer<never> =>
  // log_level was validated when it was read, so it parses.
  LogLevel.layer(Result.getOrElse(LogLevel.parse(c.logLevel), () => ({ default: "info" as const, modules: new Map() })), c.logFormat)

/** Validates flags and config, creates what is missing, then runs the node until interrupted. */
export const run = Effect.fn("Start.run")(function* (home: string, flags: Readonly<Record<string, string | undefined>>, options: StartOptions = {}) {
  const fromFlags = yield* Effect.fromResult(Config.fromFlags(flags))
  yield* Effect.fromResult(probeInterval(options))
  const file = yield* Home.readConfigFile(home)
  const config = yield* Effect.fromResult(Config.validate(Config.resolve(file.values, fromFlags)))
  yield* Home.readNodeKey(home) // a malformed key file stops us before anything is written
  return yield* Effect.provide(runNode(home, config, file, options), logging(config))
})

/** The config key (and flag) that sets an HTTP address. */
const httpKey = (c: Config.NodeConfig, address: string) =>
  c.instrumentation.prometheus && address === c.instrumentation.httpAddr ? "instrumentation.prometheus_listen_addr (--http-addr)" : "rpc.laddr (--rpc-laddr)"

/** What to do about a listen failure, by its reason. */
const listenAdvice = (reason: string, key: string) =>
  reason === "in_use" ? `stop it or set ${key}` : reason === "unavailable" ? `set ${key} to an address of this machine` : reason === "permission" ? `choose a port above 1023 or set ${key}` : `check ${key}`

/**
 * Binds each fixed HTTP port for a moment before the node starts, so a port in use stops the node
 * before it opens (or creates) its peer store. Port 0 needs no check. A unix socket's path is
 * checked (its directory exists, nothing but a stale socket is there, nobody answers on it).
 */
const checkHttpPorts = (c: Config.NodeConfig) =>
  Effect.forEach(httpServers(c), (server) => {
    if (NodeHttp.isUnixAddress(server.address)) {
      return NodeHttp.prepareUnixSocket(server.address).pipe(
        Effect.asVoid,
        Effect.mapError((e) =>
          new CommandFailure({ exitCode: 1, message: e._tag === "HttpListenError" ? `${e.message}; ${listenAdvice(e.reason, httpKey(c, server.address))}` : e.message })
        )
      )
    }
    const where = NodeHttp.splitHostPort(server.address)
    if (where === undefined || where.port === 0) return Effect.void
    return Effect.callback<void, CommandFailure>((resume) => {
      const probe = Net.createServer()
      probe.once("error", (e: NodeJS.ErrnoException) => {
        const { reason, message } = ListenFailure.describe(`http://${server.address}`, e)
        resume(Effect.fail(new CommandFailure({ exitCode: 1, message: `${message}; ${listenAdvice(reason, httpKey(c, server.address))}` })))
      })
      probe.listen({ host: where.host === "" ? undefined : where.host, port: where.port, exclusive: true }, () => probe.close(() => resume(Effect.void)))
    })
  }, { discard: true })

/** The node's own failures put into the command's words: which key or flag to change. */
const explain = <E>(c: Config.NodeConfig, e: E): E | CommandFailure => {
  const error = e as { readonly _tag?: string; readonly reason?: string; readonly message?: string; readonly address?: string; readonly detail?: string; readonly path?: string }
  switch (error._tag) {
    case "TransportListenError":
      return error.reason === "invalid_options" ? e : new CommandFailure({ exitCode: 1, message: `${error.message}; ${listenAdvice(error.reason ?? "io", "p2p.laddr (--laddr)")}` })
    case "HttpListenError":
      return new CommandFailure({ exitCode: 1, message: `${error.message}; ${listenAdvice(error.reason ?? "io", httpKey(c, error.address ?? ""))}` })
    case "PeerStoreError":
      return error.reason === "corrupt"
        ? new CommandFailure({
          exitCode: 1,
          message: `${error.detail ?? error.message}; it was left as it is. Start with --recover-peer-store to move it aside (kept as ${error.path}.corrupt-<time>) and start with no known peers, or restore it from a backup`
        })
        : e
    default:
      return e
  }
}

const runNode = Effect.fn("Start.runNode")(function* (home: string, config: Config.NodeConfig, file: Config.FileConfig, options: StartOptions) {
  if (file.ignored.length > 0) {
    yield* LogLevel.main(Effect.logWarning(`config.toml: ignoring CometBFT settings this node does not use: ${file.ignored.join(", ")}`))
  }
  yield* checkHttpPorts(config)
  const written = yield* Home.init(home, Config.resolve(file.values))
  for (const f of written) yield* LogLevel.main(Effect.logInfo(`wrote ${f}`))
  const probeEvery = Result.getOrUndefined(probeInterval(options)) // checked in run
  const node = NodeLayer.layer(toNodeConfig(home, config, options))
  yield* Effect.scoped(Effect.gen(function* () {
    const context = yield* Layer.build(node)
    const router = Context.get(context, Router)
    const transport = Context.get(context, Transport)
    const info = yield* router.nodeInfo
    const endpoints = yield* transport.endpoints
    yield* LogLevel.main(Effect.logInfo(`node ${info.nodeId} (${info.moniker}) on network ${info.network} listening on ${endpoints.map(Endpoint.format).join(", ")}`))
    if (probeEvery !== undefined) {
      const probe = yield* Probe.run(router, { interval: probeEvery }).pipe(
        Effect.mapError((e) => new CommandFailure({ exitCode: 1, message: `cannot open the probe channel: ${e.message}` }))
      )
      yield* LogLevel.main(Effect.logInfo(`probe on channel 0x7f: a message to each peer every ${formatGoDuration(probeEvery)}, epoch ${probe.epoch}`))
    }
    for (const server of httpServers(config)) {
      const bound = yield* NodeHttp.serve(server).pipe(Effect.provideContext(context))
      const served = server.metrics === true ? "/metrics, /net_info, /status, /health" : "/net_info, /status, /health and JSON-RPC"
      yield* LogLevel.main(Effect.logInfo(`serving ${served} on ${bound.url}`))
    }
    // Give back what loading and starting took beyond what the idle node keeps (Settle.ts).
    yield* Effect.sync(Settle.reduceMemory)
    return yield* Effect.never
  })).pipe(Effect.mapError((e) => explain(config, e)), Effect.onInterrupt(() => LogLevel.main(Effect.logInfo("shutting down"))))
})

/**
 * `effect-p2p start`: runs a node until SIGINT/SIGTERM. Flags override `config.toml`, which
 * overrides the defaults; everything is validated before anything is written; the first run creates
 * the config and key. Shutdown closes connections and the peer store cleanly.
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer } from "effect"
import * as NodeLayer from "../layers/Node.ts"
import { Router } from "../services/Router.ts"
import { Transport } from "../services/Transport.ts"
import * as Endpoint from "../domain/Endpoint.ts"
import * as Config from "./Config.ts"
import * as Home from "./Home.ts"
import * as Http from "./Http.ts"

/** The resolved configuration as a `Node.Config`. */
export const toNodeConfig = (home: string, c: Config.NodeConfig): NodeLayer.Config => ({
  home,
  network: c.network,
  moniker: c.moniker,
  version: "effect-p2p/0.1.0",
  listen: c.p2p.laddr,
  ...(c.p2p.externalAddress === "" ? {} : { externalAddress: c.p2p.externalAddress }),
  persistentPeers: c.p2p.persistentPeers,
  bootstrapPeers: [...c.p2p.bootstrapPeers, ...c.p2p.seeds],
  privatePeerIds: c.p2p.privatePeerIds,
  maxInboundPeers: c.p2p.maxNumInboundPeers,
  maxOutboundPeers: c.p2p.maxNumOutboundPeers,
  pex: c.p2p.pex || c.p2p.seedMode,
  seedMode: c.p2p.seedMode,
  handshakeTimeout: c.p2p.handshakeTimeout,
  dialTimeout: c.p2p.dialTimeout,
  mconnection: { maxPacketMsgPayloadSize: c.p2p.maxPacketMsgPayloadSize, sendRate: c.p2p.sendRate, recvRate: c.p2p.recvRate }
})

/** Validates flags and config, creates what is missing, then runs the node until interrupted. */
export const run = (home: string, flags: Readonly<Record<string, string | undefined>>) =>
  Effect.gen(function* () {
    const fromFlags = yield* Effect.fromResult(Config.fromFlags(flags))
    const fromFile = yield* Home.readConfigFile(home)
    const config = Config.resolve(fromFile, fromFlags)
    yield* Home.readNodeKey(home) // a malformed key file stops us before anything is written
    const written = yield* Home.init(home, Config.resolve(fromFile))
    for (const file of written) yield* Effect.logInfo(`wrote ${file}`)
    const node = NodeLayer.layer(toNodeConfig(home, config))
    const http = config.instrumentation.httpAddr === "" ? Layer.empty : Http.layer(config.instrumentation.httpAddr, config.instrumentation.namespace)
    yield* Effect.scoped(Effect.gen(function* () {
      const context = yield* Layer.build(Layer.provideMerge(http, node))
      const router = Context.get(context, Router)
      const transport = Context.get(context, Transport)
      const info = yield* router.nodeInfo
      const endpoints = yield* transport.endpoints
      yield* Effect.logInfo(`node ${info.nodeId} (${info.moniker}) on network ${info.network} listening on ${endpoints.map(Endpoint.format).join(", ")}`)
      return yield* Effect.never
    })).pipe(Effect.onInterrupt(() => Effect.logInfo("shutting down")))
  })

#!/usr/bin/env node
/**
 * The `effect-p2p` command: `init`, `start`, `show-node-id`, `testnet`, `crawl`, `e2e`.
 * Every failure prints one or two lines saying what failed and what to do, and exits with a
 * documented code (`Failure.ts`: 2 bad input, 1 runtime failure); SIGINT/SIGTERM shut a running
 * node down cleanly and exit with code 0.
 *
 * @since 0.1.0
 */
// Deep imports: the package's index loads every module it has (node-redis among them, ~650 modules).
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as NodeServices from "@effect/platform-node/NodeServices"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Option from "effect/Option"
import { Command, Flag, GlobalFlag } from "effect/cli"
import * as NodeLayer from "../layers/Node.ts"
import * as Config from "./Config.ts"
import * as Failure from "./Failure.ts"
import * as Home from "./Home.ts"
import * as Start from "./Start.ts"
import { commands as extraCommands } from "./commands.ts"

const home = Flag.String("home").pipe(Flag.withDescription("node home directory (config/, data/)"), Flag.withDefault(NodeLayer.DEFAULT_HOME))
const optional = (name: string, description: string) => Flag.String(name).pipe(Flag.withDescription(description), Flag.optional)

const init = Command.make("init", { home }, ({ home }) =>
  Effect.gen(function* () {
    const written = yield* Home.init(home, Config.resolve((yield* Home.readConfigFile(home)).values))
    yield* Console.log(written.length === 0 ? `${home} is already initialised` : written.map((f) => `wrote ${f}`).join("\n"))
  })).pipe(Command.withDescription("write config/config.toml and config/node_key.json if absent"))

const start = Command.make("start", {
  home,
  laddr: optional("laddr", "listen address, tcp://HOST:PORT"),
  persistentPeers: optional("persistent-peers", "comma-separated id@host:port peers to keep connected"),
  bootstrapPeers: optional("bootstrap-peers", "comma-separated id@host:port peers to start from"),
  seeds: optional("seeds", "comma-separated id@host:port seed nodes"),
  network: optional("network", "network (chain) ID"),
  moniker: optional("moniker", "node name"),
  pex: optional("pex", "peer exchange: true or false"),
  seedMode: optional("seed-mode", "seed mode: true or false"),
  httpAddr: optional("http-addr", "HOST:PORT of /metrics, /net_info and /status (\"\" disables)"),
  rpcLaddr: optional("rpc-laddr", "HOST:PORT of /net_info, /status and JSON-RPC alone (CometBFT's rpc.laddr), or unix:///ABS/PATH.sock (with /metrics)"),
  logFormat: optional("log-format", "plain or json"),
  probe: Flag.Boolean("probe").pipe(
    Flag.withDescription("run the probe reactor (channel 0x7f): numbered messages to every peer, counted on /metrics"),
    Flag.withDefault(false)
  ),
  probeInterval: optional("probe-interval", "how often the probe sends to each peer, e.g. 100ms (the default); implies --probe"),
  recoverPeerStore: Flag.Boolean("recover-peer-store").pipe(
    Flag.withDescription("if data/peerstore.db is damaged, move it aside (kept) and start with no known peers"),
    Flag.withDefault(false)
  )
}, (f) => Effect.gen(function* () {
  const value = (o: Option.Option<string>) => Option.getOrUndefined(o)
  // The built-in --log-level flag names one level; it overrides config.toml's log_level.
  const level = Option.getOrUndefined(yield* GlobalFlag.LogLevel)
  return yield* Start.run(f.home, {
    laddr: value(f.laddr),
    "persistent-peers": value(f.persistentPeers),
    "bootstrap-peers": value(f.bootstrapPeers),
    seeds: value(f.seeds),
    network: value(f.network),
    moniker: value(f.moniker),
    pex: value(f.pex),
    "seed-mode": value(f.seedMode),
    "http-addr": value(f.httpAddr),
    "rpc-laddr": value(f.rpcLaddr),
    "log-format": value(f.logFormat),
    "log-level": level === undefined ? undefined : flagLevel(level)
  }, { recoverPeerStore: f.recoverPeerStore, probe: f.probe, probeInterval: value(f.probeInterval) })
})).pipe(Command.withDescription("run a node until SIGINT or SIGTERM"))

/** Effect's log level (from --log-level) as a config.toml level. */
const flagLevel = (level: string): string => {
  switch (level) {
    case "All":
    case "Trace":
    case "Debug":
      return "debug"
    case "Info":
      return "info"
    case "Warn":
      return "warn"
    case "None":
      return "none"
    default:
      return "error"
  }
}

const showNodeId = Command.make("show-node-id", { home }, ({ home }) =>
  Effect.gen(function* () {
    const key = yield* Home.readNodeKey(home)
    if (key === undefined) {
      return yield* new Config.ConfigError({ key: Home.paths(home).nodeKey, message: `${Home.paths(home).nodeKey}: no node key; run \`effect-p2p init --home ${home}\`` })
    }
    yield* Console.log(key.nodeId)
  })).pipe(Command.withDescription("print this node's ID"))

const root = Command.make("effect-p2p").pipe(
  Command.withDescription("a CometBFT-compatible P2P node built on Effect"),
  Command.withSubcommands([init, start, showNodeId, ...extraCommands])
)

const program = Command.run(root, { version: Start.VERSION }).pipe(
  Effect.provide(Layer.mergeAll(NodeServices.layer, Logger.layer([Logger.consoleLogFmt])))
)

// Failures are reported here, each as one or two lines, rather than by the runtime's dump.
NodeRuntime.runMain(program, {
  disableErrorReporting: true,
  teardown: (exit, onExit) => {
    const { lines, code } = Failure.report(exit)
    for (const l of lines) process.stderr.write(`${l}\n`)
    onExit(code)
  }
})

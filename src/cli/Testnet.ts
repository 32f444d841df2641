/**
 * `effect-p2p testnet`: N nodes in one process, each told only of node 0, with PEX on, so the
 * mesh forms by peer exchange. Over TCP every node listens on 127.0.0.1 (a free port) with its own
 * temporary home directory, removed at exit; over memory they share a `MemoryNetwork`. Each node
 * also runs the probe reactor (`Probe.ts`, channel 0x7f), which pings its peers once a second.
 * Nodes keep CometBFT's connection limits (40 inbound, 10 outbound), except node 0, which takes
 * every other node in so none is left outside; above a dozen nodes the mesh is therefore partial.
 *
 * Every second the command samples the nodes (peers, probe messages, round-trip times) and shows
 * them: on a terminal as a view redrawn in place, otherwise as one summary line:
 *
 * ```text
 * t=3s nodes=8 peers min/avg/max=7/7.0/7 msgs/s=112 rtt_ms p50=0.41 max=1.20
 * ```
 *
 * It runs until interrupted (Ctrl-C) or for `--duration` seconds.
 *
 * @since 0.1.0
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Clock from "effect/Clock"
import * as Console from "effect/Console"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import { Command, Flag } from "effect/cli"
import * as NodeAddress from "../domain/NodeAddress.ts"
import type * as NodeId from "../domain/NodeId.ts"
import * as MemoryNetwork from "../layers/MemoryNetwork.ts"
import * as MemoryTransport from "../layers/MemoryTransport.ts"
import * as Node from "../layers/Node.ts"
import { PeerManager } from "../services/PeerManager.ts"
import { Router } from "../services/Router.ts"
import { Transport } from "../services/Transport.ts"
import { ConfigError } from "./Config.ts"
import * as LiveView from "./LiveView.ts"
import * as Probe from "./Probe.ts"

// ---------------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------------

/** The transports a testnet runs on. */
export type TestnetTransport = "tcp" | "memory"

/** How samples are shown: a view redrawn in place, one line each, nothing, or by `process.stdout.isTTY`. */
export type TestnetOutput = "live" | "lines" | "none" | "auto"

/** Largest `--nodes`. */
export const MAX_NODES = 200

/** Network ID of the nodes unless `--network` says otherwise. */
export const DEFAULT_NETWORK = "effect-p2p-testnet"

/** What {@link runTestnet} is told; the flags of `effect-p2p testnet`. */
export interface TestnetOptions {
  /** Number of nodes, 1 to {@link MAX_NODES}. */
  readonly nodes: number
  /** Default "tcp" (loopback). */
  readonly transport?: TestnetTransport
  /** Seconds to run, > 0; run until interrupted when absent. */
  readonly duration?: number | undefined
  /** Network (chain) ID of every node. Default {@link DEFAULT_NETWORK}. */
  readonly network?: string
  /** Default "auto": "live" on a terminal, "lines" otherwise. */
  readonly output?: TestnetOutput
  /** Called with every sample (once a second), after it is shown. */
  readonly onSample?: (sample: Sample) => Effect.Effect<void>
}

/** Options after validation, defaults applied. */
export interface ValidTestnetOptions {
  readonly nodes: number
  readonly transport: TestnetTransport
  readonly duration: number | undefined
  readonly network: string
  readonly output: Exclude<TestnetOutput, "auto">
}

const bad = (flag: string, message: string) => Result.fail(new ConfigError({ key: flag, message: `${flag}: ${message}` }))

/** Checks the options; a bad value fails with a `ConfigError` whose key and message name the flag. */
export const validateOptions = (options: TestnetOptions): Result.Result<ValidTestnetOptions, ConfigError> => {
  const { nodes } = options
  if (!Number.isInteger(nodes) || nodes < 1 || nodes > MAX_NODES) return bad("--nodes", `must be an integer from 1 to ${MAX_NODES}, got ${nodes}`)
  const transport = options.transport ?? "tcp"
  if (transport !== "tcp" && transport !== "memory") return bad("--transport", `must be tcp or memory, got ${JSON.stringify(transport)}`)
  const duration = options.duration
  if (duration !== undefined && (!Number.isFinite(duration) || duration <= 0)) return bad("--duration", `must be a positive number of seconds, got ${duration}`)
  const network = options.network ?? DEFAULT_NETWORK
  if (!/^[\x21-\x7e]{1,50}$/.test(network)) return bad("--network", `must be 1 to 50 printable ASCII characters without spaces, got ${JSON.stringify(network)}`)
  const output = options.output ?? "auto"
  return Result.succeed({ nodes, transport, duration, network, output: output === "auto" ? (LiveView.stdoutIsTty() ? "live" : "lines") : output })
}

// ---------------------------------------------------------------------------------------------
// Samples
// ---------------------------------------------------------------------------------------------

/** One node over the last sampling interval. */
export interface NodeSample {
  readonly index: number
  readonly nodeId: NodeId.NodeId
  readonly moniker: string
  /** Peers routed now. */
  readonly peers: number
  /** Probe messages received per second. */
  readonly messagesIn: number
  /** Probe messages sent per second. */
  readonly messagesOut: number
  /** Pongs received in the interval (round trips measured). */
  readonly roundTrips: number
  /** Mean round-trip time in ms, `undefined` without round trips. */
  readonly rttMean: number | undefined
  /** Largest round-trip time in ms, `undefined` without round trips. */
  readonly rttMax: number | undefined
}

/** The whole testnet over the last sampling interval (about one second). */
export interface Sample {
  /** Seconds since the nodes started. */
  readonly elapsed: number
  readonly nodes: ReadonlyArray<NodeSample>
  /** Peers per node. */
  readonly peers: { readonly min: number; readonly avg: number; readonly max: number }
  /** Probe messages delivered per second, over all nodes. */
  readonly messagesPerSecond: number
  /** Round-trip times over all links, in ms (`undefined` without round trips). */
  readonly rtt: { readonly count: number; readonly p50: number | undefined; readonly max: number | undefined }
}

/** A node the testnet started. */
export interface TestnetNode {
  readonly index: number
  readonly nodeId: NodeId.NodeId
  readonly moniker: string
  /** Where peers reach it: `mconn://id@127.0.0.1:port` or `memory:id`. */
  readonly address: string
}

/** What {@link runTestnet} returns once its duration is over. */
export interface TestnetResult {
  readonly nodes: ReadonlyArray<TestnetNode>
  /** Samples taken. */
  readonly samples: number
  /** The last sample, if any was taken. */
  readonly last: Sample | undefined
}

/** A node of the testnet could not start (e.g. no free port); `message` says why. */
export class TestnetError extends Schema.TaggedError<TestnetError>()("TestnetError", {
  message: Schema.String
}) {}

/** Seconds to a tenth, without a trailing ".0": "3s", "2.5s". */
const seconds = (s: number) => `${Math.round(s * 10) / 10}s`

/** The one-line form of a sample, as printed when standard output is not a terminal. */
export const formatLine = (sample: Sample): string => {
  const { min, avg, max } = sample.peers
  return `t=${seconds(sample.elapsed)} nodes=${sample.nodes.length} peers min/avg/max=${min}/${avg.toFixed(1)}/${max}` +
    ` msgs/s=${Math.round(sample.messagesPerSecond)} rtt_ms p50=${LiveView.fixed(sample.rtt.p50, 2)} max=${LiveView.fixed(sample.rtt.max, 2)}`
}

/** The live view of a sample: a header, the totals, and a row per node (as many as `maxRows` allows). */
export const renderView = (sample: Sample, options: ValidTestnetOptions, maxRows = 40): string => {
  const { min, avg, max } = sample.peers
  const shown = sample.nodes.length > maxRows ? sample.nodes.slice(0, Math.max(1, maxRows - 1)) : sample.nodes
  const rows = shown.map((n) => [
    String(n.index),
    n.nodeId.slice(0, 12),
    n.moniker,
    String(n.peers),
    String(Math.round(n.messagesIn)),
    String(Math.round(n.messagesOut)),
    LiveView.fixed(n.rttMean, 2),
    LiveView.fixed(n.rttMax, 2)
  ])
  const more = sample.nodes.length - shown.length
  return [
    `effect-p2p testnet: ${options.nodes} nodes over ${options.transport}, network ${options.network}   t=${seconds(Math.round(sample.elapsed))}   Ctrl-C to stop`,
    `peers min/avg/max ${min}/${avg.toFixed(1)}/${max}   msgs/s ${Math.round(sample.messagesPerSecond)}   rtt p50 ${LiveView.fixed(sample.rtt.p50, 2)} ms   max ${LiveView.fixed(sample.rtt.max, 2)} ms`,
    "",
    LiveView.table(["NODE", "ID", "MONIKER", "PEERS", "IN/S", "OUT/S", "RTT MEAN", "RTT MAX"], rows, [0, 3, 4, 5, 6, 7]),
    ...(more > 0 ? [`... and ${more} more`] : [])
  ].join("\n")
}

/** Builds a sample from each node's peer count and probe counts over `intervalSeconds`. */
export const makeSample = (
  elapsed: number,
  intervalSeconds: number,
  nodes: ReadonlyArray<{ readonly node: TestnetNode; readonly peers: number; readonly counts: Probe.Counts }>
): Sample => {
  const per = (n: number) => (intervalSeconds > 0 ? n / intervalSeconds : 0)
  const all = nodes.flatMap((n) => n.counts.rtts)
  const peers = nodes.map((n) => n.peers)
  return {
    elapsed,
    nodes: nodes.map(({ node, peers, counts }) => ({
      index: node.index,
      nodeId: node.nodeId,
      moniker: node.moniker,
      peers,
      messagesIn: per(counts.received),
      messagesOut: per(counts.sent),
      roundTrips: counts.rtts.length,
      rttMean: LiveView.mean(counts.rtts),
      rttMax: counts.rtts.length === 0 ? undefined : Math.max(...counts.rtts)
    })),
    peers: {
      min: peers.length === 0 ? 0 : Math.min(...peers),
      avg: LiveView.mean(peers) ?? 0,
      max: peers.length === 0 ? 0 : Math.max(...peers)
    },
    messagesPerSecond: per(nodes.reduce((a, n) => a + n.counts.received, 0)),
    rtt: { count: all.length, p50: LiveView.quantile(all, 0.5), max: all.length === 0 ? undefined : Math.max(...all) }
  }
}

// ---------------------------------------------------------------------------------------------
// Running
// ---------------------------------------------------------------------------------------------

interface Running {
  readonly node: TestnetNode
  readonly router: Router["Service"]
  readonly peerManager: PeerManager["Service"]
  readonly probe: Probe.Handle
  readonly nodeAddress: NodeAddress.NodeAddress
}

const failed = (what: string) => (e: unknown) =>
  new TestnetError({ message: `${what}: ${Predicate.hasProperty(e, "message") ? String(e.message) : String(e)}` })

/** A temporary home directory, removed (with everything in it) when the scope closes. */
const temporaryHome = (index: number): Effect.Effect<string, TestnetError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.try({ try: () => mkdtempSync(join(tmpdir(), `effect-p2p-testnet-${index}-`)), catch: failed(`node ${index}: cannot create a home directory`) }),
    (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
  )

/** Starts node `index` in the caller's scope, with its probe running, not yet told of any peer. */
const startNode = Effect.fn("Testnet.startNode")(function* (index: number, options: ValidTestnetOptions, network: MemoryNetwork.Service): Effect.fn.Return<Running, TestnetError, Scope.Scope> {
  const moniker = `testnet-${index}`
  // Everyone starts from node 0, so it must take them all in (CometBFT's 40 inbound slots would
  // leave the later nodes with no way in); the others keep CometBFT's limits.
  const bootstrap: Partial<Node.Config> = index === 0
    ? { maxInboundPeers: Math.max(40, options.nodes - 1), router: { maxIncomingConnectionAttempts: Math.max(100, options.nodes) } }
    : {}
  const config: Node.Config = { network: options.network, moniker, channels: [Probe.descriptor], pex: true, ...bootstrap }
  const scope = yield* Effect.scope
  const context = yield* (options.transport === "memory"
    ? Layer.buildWithScope(Node.layerMemory(network, config), scope)
    : Layer.buildWithScope(Node.layer({ ...config, home: yield* temporaryHome(index), listen: { host: "127.0.0.1", port: 0 } }), scope)
  ).pipe(Effect.mapError(failed(`node ${index} did not start`)))
  const router = Context.get(context, Router)
  const nodeId = (yield* router.nodeInfo).nodeId
  let nodeAddress = NodeAddress.make({ protocol: MemoryTransport.PROTOCOL, nodeId })
  if (options.transport === "tcp") {
    const endpoint = (yield* Context.get(context, Transport).endpoints)[0]
    if (endpoint === undefined) return yield* new TestnetError({ message: `node ${index} is not listening` })
    nodeAddress = NodeAddress.make({ protocol: NodeAddress.DEFAULT_PROTOCOL, nodeId, hostname: endpoint.ip, port: endpoint.port })
  }
  // One message to each peer a second, every one a ping: the live view shows round trips.
  const probe = yield* Probe.run(router, { interval: Probe.PING_INTERVAL, pingInterval: Probe.PING_INTERVAL }).pipe(Effect.mapError(failed(`node ${index}: probe channel`)))
  return {
    node: { index, nodeId, moniker, address: NodeAddress.format(nodeAddress) },
    router,
    peerManager: Context.get(context, PeerManager),
    probe,
    nodeAddress
  }
})

/**
 * Runs a testnet (see the module comment) and returns once `duration` is over; without a duration
 * it runs until interrupted. Samples are taken every second from the start, shown as
 * `options.output` says and passed to `onSample`. Every node, fiber, socket and temporary home is
 * released when it returns or is interrupted.
 *
 * Fails with a `ConfigError` naming the flag for a bad option, and with {@link TestnetError} when a
 * node cannot start.
 *
 * ```ts
 * const result = yield* runTestnet({ nodes: 4, transport: "memory", duration: 10, output: "none" })
 * ```
 */
export const runTestnet = (input: TestnetOptions): Effect.Effect<TestnetResult, ConfigError | TestnetError> =>
  Effect.gen(function* () {
    const options = yield* Effect.fromResult(validateOptions(input))
    const network = yield* Effect.orDie(MemoryNetwork.make()) // default options always decode
    const running = yield* Effect.forEach(Array.from({ length: options.nodes }, (_, i) => i), (i) => startNode(i, options, network), { concurrency: 8 })
    const bootstrap = running[0]!
    for (const r of running.slice(1)) {
      yield* r.peerManager.add(bootstrap.nodeAddress).pipe(Effect.mapError(failed(`node ${r.node.index}: cannot add the bootstrap node`)))
    }
    const nodes = running.map((r) => r.node)
    const print = (text: string) => (options.output === "none" ? Effect.void : Console.log(text))
    if (options.output === "lines") {
      yield* print(`testnet: ${options.nodes} nodes over ${options.transport}, network ${options.network}, bootstrap ${bootstrap.node.address}`)
    }

    const start = yield* Clock.currentTimeMillis
    const end = options.duration === undefined ? Infinity : start + options.duration * 1000
    let previous = start
    let due = start
    let samples = 0
    let last: Sample | undefined
    // Samples fall due every second and once at the end; a timer that fires a little early or late
    // never adds or drops one.
    while (due < end) {
      due = Math.min(due + 1000, end)
      yield* Effect.sleep(Math.max(0, due - (yield* Clock.currentTimeMillis)))
      const now = yield* Clock.currentTimeMillis
      const counts = yield* Effect.forEach(running, (r) =>
        Effect.map(Effect.all([r.router.peers, r.probe.take]), ([peers, c]) => ({ node: r.node, peers: peers.length, counts: c })))
      const sample = makeSample((now - start) / 1000, (now - previous) / 1000, counts)
      previous = now
      samples++
      last = sample
      if (options.output === "live") {
        yield* print(LiveView.CLEAR_SCREEN + renderView(sample, options, Math.max(5, (LiveView.terminalRows() ?? 45) - 5)))
      } else {
        yield* print(formatLine(sample))
      }
      if (input.onSample !== undefined) yield* input.onSample(sample)
    }
    return { nodes, samples, last }
  }).pipe(
    Effect.scoped,
    LiveView.quietLogs("Warn")
  )

// ---------------------------------------------------------------------------------------------
// Command
// ---------------------------------------------------------------------------------------------

/**
 * `effect-p2p testnet --nodes N [--transport tcp|memory] [--duration SECONDS] [--network ID]`.
 * Fails with a `ConfigError` naming the flag for a bad value (the main command prints it and exits 2).
 */
export const testnetCommand = Command.make("testnet", {
  nodes: Flag.Int("nodes").pipe(Flag.withDescription(`number of nodes, 1 to ${MAX_NODES}`)),
  transport: Flag.Literals("transport", ["tcp", "memory"]).pipe(
    Flag.withDescription("tcp (loopback, a temporary home per node) or memory; default tcp"),
    Flag.withDefault("tcp")
  ),
  duration: Flag.Finite("duration").pipe(Flag.withDescription("seconds to run (default: until Ctrl-C)"), Flag.optional),
  network: Flag.String("network").pipe(Flag.withDescription(`network (chain) ID of the nodes; default ${DEFAULT_NETWORK}`), Flag.withDefault(DEFAULT_NETWORK))
}, (flags) =>
  runTestnet({
    nodes: flags.nodes,
    transport: flags.transport,
    duration: Option.getOrUndefined(flags.duration),
    network: flags.network
  }).pipe(Effect.asVoid)).pipe(
    Command.withDescription("run N nodes in one process, bootstrapped from node 0, and watch the mesh form")
  )

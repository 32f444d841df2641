/**
 * `effect-p2p crawl`: walks a CometBFT (or effect-p2p) network by handshake and peer exchange.
 * With a throwaway key and a TCP transport, it dials each seed and each address learnt, completes
 * the handshake (which gives the peer's NodeInfo), sends a `pex_request` on channel 0x00 in
 * CometBFT's form over the raw `Connection`, reads the `pex_addrs` answer (bounded wait) and queues
 * the new addresses. It is bounded in total time, in addresses dialed and in connections open at
 * once. Without `--network`, the network is learnt from the first peer that refuses ours.
 *
 * Output is a table (node ID, moniker, network, version, address) with the unreachable addresses
 * listed after it, or with `--json` one JSON object per line: found nodes as they are found, then
 * one line with an `"error"` field per unreachable address.
 *
 * @since 0.1.0
 */
import { fromBinary, toBinary } from "@bufbuild/protobuf"
import { Clock, Console, Effect, Exit, Option, Result, Schema, Semaphore } from "effect"
import { Command, Flag } from "effect/cli"
import * as NodeAddress from "../domain/NodeAddress.ts"
import * as NodeId from "../domain/NodeId.ts"
import * as NodeInfo from "../domain/NodeInfo.ts"
import * as NodeKey from "../domain/NodeKey.ts"
import * as PexWire from "../domain/PexWire.ts"
import * as TcpTransport from "../layers/TcpTransport.ts"
import { MessageSchema, type NetAddress } from "../proto/tendermint/p2p/pex_pb.ts"
import * as AddressResolver from "../layers/AddressResolver.ts"
import { NodeIdentity } from "../services/NodeIdentity.ts"
import * as Pex from "../services/Pex.ts"
import type { Connection, IncompatiblePeer, Transport } from "../services/Transport.ts"
import { ConfigError, parsePeerList } from "./Config.ts"
import * as LiveView from "./LiveView.ts"

// ---------------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------------

/** What {@link runCrawl} is told; the flags of `effect-p2p crawl`. */
export interface CrawlOptions {
  /** Comma-separated `id@host:port` seeds, as on the command line, or parsed addresses. */
  readonly seeds: string | ReadonlyArray<NodeAddress.NodeAddress>
  /** The network (chain ID) to crawl; learnt from the first peer when absent. */
  readonly network?: string | undefined
  /** Most addresses dialed in all. Default {@link defaults}.maxPeers. */
  readonly maxPeers?: number
  /** Bound on the whole crawl, in seconds. Default {@link defaults}.timeout. */
  readonly timeout?: number
  /** Connections open at once. Default {@link defaults}.concurrency. */
  readonly concurrency?: number
  /** Bound on one peer (dial, handshake and PEX answer), in seconds. Default {@link defaults}.peerTimeout. */
  readonly peerTimeout?: number
  /** Called with each node as it is found (e.g. to print JSON lines as they come). */
  readonly onPeer?: (peer: CrawledPeer) => Effect.Effect<void>
}

/** Defaults of {@link CrawlOptions}. */
export const defaults = {
  maxPeers: 1000,
  timeout: 60,
  concurrency: 16,
  peerTimeout: 10
} as const

/** Options after validation (durations in ms). */
export interface ValidCrawlOptions {
  readonly seeds: ReadonlyArray<NodeAddress.NodeAddress>
  readonly network: string | undefined
  readonly maxPeers: number
  readonly timeoutMillis: number
  readonly concurrency: number
  readonly peerTimeoutMillis: number
}

const bad = (flag: string, message: string) => Result.fail(new ConfigError({ key: flag, message: `${flag}: ${message}` }))

const intIn = (flag: string, value: number, min: number, max: number) =>
  Number.isInteger(value) && value >= min && value <= max ? undefined : bad(flag, `must be an integer from ${min} to ${max}, got ${value}`)

const secondsIn = (flag: string, value: number, max: number) =>
  Number.isFinite(value) && value > 0 && value <= max ? undefined : bad(flag, `must be a number of seconds above 0 and at most ${max}, got ${value}`)

/** Checks the options; a bad value fails with a `ConfigError` whose key and message name the flag. */
export const validateOptions = (options: CrawlOptions): Result.Result<ValidCrawlOptions, ConfigError> => {
  let seeds: ReadonlyArray<NodeAddress.NodeAddress>
  if (typeof options.seeds === "string") {
    const parsed = parsePeerList("--seeds", options.seeds)
    if (Result.isFailure(parsed)) return Result.fail(parsed.failure)
    seeds = parsed.success
  } else {
    seeds = options.seeds
  }
  if (seeds.length === 0) return bad("--seeds", "must list at least one id@host:port")
  const foreign = seeds.find((s) => !(TcpTransport.PROTOCOLS as ReadonlyArray<string>).includes(s.protocol) || s.hostname === "" || !NodeId.is(s.nodeId))
  if (foreign !== undefined) return bad("--seeds", `${NodeAddress.format(foreign)} is not a TCP address like id@host:port`)
  if (options.network !== undefined && !/^[\x21-\x7e]{1,50}$/.test(options.network)) {
    return bad("--network", `must be 1 to 50 printable ASCII characters without spaces, got ${JSON.stringify(options.network)}`)
  }
  const maxPeers = options.maxPeers ?? defaults.maxPeers
  const timeout = options.timeout ?? defaults.timeout
  const concurrency = options.concurrency ?? defaults.concurrency
  const peerTimeout = options.peerTimeout ?? defaults.peerTimeout
  const problem = intIn("--max-peers", maxPeers, 1, 100_000) ??
    secondsIn("--timeout", timeout, 86_400) ??
    intIn("--concurrency", concurrency, 1, 1024) ??
    secondsIn("peerTimeout", peerTimeout, 3_600)
  if (problem !== undefined) return problem
  return Result.succeed({
    seeds,
    network: options.network,
    maxPeers,
    timeoutMillis: timeout * 1000,
    concurrency,
    peerTimeoutMillis: Math.min(peerTimeout, timeout) * 1000
  })
}

// ---------------------------------------------------------------------------------------------
// Results
// ---------------------------------------------------------------------------------------------

/** A node that completed the handshake. */
export interface CrawledPeer {
  readonly nodeId: string
  readonly moniker: string
  readonly network: string
  readonly version: string
  /** Where we reached it, `host:port`. */
  readonly address: string
  /** What it reports in NodeInfo `listen_addr`. */
  readonly listenAddr: string
  /** Channels it serves, as hex bytes ("00203038..."). */
  readonly channels: string
  /** Entries in its `pex_addrs` answer, `undefined` when it did not answer in time. */
  readonly addressesReturned: number | undefined
}

/** An address that could not be crawled. */
export interface Unreachable {
  readonly nodeId: string
  /** `host:port`. */
  readonly address: string
  /** What went wrong (refused, timeout, other network, ...). */
  readonly error: string
}

/** What a crawl found. */
export interface CrawlResult {
  /** The network crawled: given, learnt, or `undefined` when no peer told us. */
  readonly network: string | undefined
  /** Nodes found, in the order found. */
  readonly peers: ReadonlyArray<CrawledPeer>
  /** Addresses that failed, for nodes not reached at another address. */
  readonly unreachable: ReadonlyArray<Unreachable>
  /** Addresses learnt but not dialed: beyond `maxPeers`, or still queued or in flight when time ran out. */
  readonly notVisited: number
  /** Whether the total timeout ended the crawl. */
  readonly timedOut: boolean
  readonly elapsedMillis: number
}

/** The crawler could not start (its transport could not be set up). */
export class CrawlError extends Schema.TaggedError<CrawlError>()("CrawlError", {
  message: Schema.String
}) {}

const hostPort = (a: NodeAddress.NodeAddress) => (a.hostname.includes(":") ? `[${a.hostname}]:${a.port}` : `${a.hostname}:${a.port}`)

/** A found node as one JSON line (snake_case keys, as CometBFT's RPC writes them). */
export const peerJson = (p: CrawledPeer): string =>
  JSON.stringify({
    node_id: p.nodeId,
    moniker: p.moniker,
    network: p.network,
    version: p.version,
    address: p.address,
    listen_addr: p.listenAddr,
    channels: p.channels,
    addresses_returned: p.addressesReturned ?? null
  })

/** An unreachable address as one JSON line, with its `"error"`. */
export const unreachableJson = (u: Unreachable): string => JSON.stringify({ node_id: u.nodeId, address: u.address, error: u.error })

/** The human form of a result: a table of the nodes, then a summary line and the unreachable addresses. */
export const formatTable = (result: CrawlResult): string => {
  const rows = result.peers.map((p) => [p.nodeId, p.moniker, p.network, p.version === "" ? "-" : p.version, p.address])
  const lines = result.peers.length === 0 ? ["no nodes found"] : [LiveView.table(["NODE ID", "MONIKER", "NETWORK", "VERSION", "ADDRESS"], rows)]
  const network = result.network === undefined ? "" : ` on network ${result.network}`
  lines.push(
    "",
    `${result.peers.length} found${network}, ${result.unreachable.length} unreachable, ${result.notVisited} not visited` +
      ` in ${(result.elapsedMillis / 1000).toFixed(1)} s${result.timedOut ? " (timed out)" : ""}`
  )
  for (const u of result.unreachable) lines.push(`  unreachable ${u.nodeId}@${u.address}: ${u.error}`)
  return lines.join("\n")
}

// ---------------------------------------------------------------------------------------------
// The peer's network, from a refused handshake
// ---------------------------------------------------------------------------------------------

/**
 * The network a peer announced, read from the `IncompatiblePeer` (reason "network") our handshake
 * check failed with, or `undefined` for any other error.
 *
 * The error carries no NodeInfo, so this parses the message NodeInfo.compatibleWith writes
 * (`... is on a different network (ours "X", theirs "Y")`). It is the only place that knows that
 * format; once `IncompatiblePeer` carries the peer's NodeInfo (or network), read the field here.
 */
export const peerNetworkOf = (error: IncompatiblePeer): string | undefined => {
  if (error.reason !== "network") return undefined
  if (error.peerNetwork !== undefined) return error.peerNetwork
  // Transports that do not fill `peerNetwork`: read it from the message.
  const quoted = /theirs ("(?:[^"\\]|\\.)*")\)\s*$/.exec(error.message)
  if (quoted !== null) {
    try {
      const value: unknown = JSON.parse(quoted[1]!)
      return typeof value === "string" ? value : undefined
    } catch {
      return undefined
    }
  }
  return /theirs ([^\s)]+)\)\s*$/.exec(error.message)?.[1]
}

// ---------------------------------------------------------------------------------------------
// One peer
// ---------------------------------------------------------------------------------------------

/** Why one visit failed: a message, and the peer's network when it refused ours. */
interface VisitFailure {
  readonly message: string
  readonly theirNetwork: string | undefined
}

const MONIKER = "effect-p2p-crawler"
const VERSION = "effect-p2p-crawl/0.1.0"
/** Not dialable: nobody adds the crawler to its address book. */
const LISTEN_ADDR = "tcp://0.0.0.0:0"

const pexRequestBytes = toBinary(MessageSchema, PexWire.requestMessage())

/** Reads messages until the `pex_addrs` answer; other messages (a peer's own request) are ignored. */
const awaitAddrs = (conn: Connection): Effect.Effect<ReadonlyArray<NetAddress>, unknown> =>
  Effect.gen(function* () {
    while (true) {
      const m = yield* conn.receive
      if (m.channelId !== Pex.CHANNEL_ID) continue
      let decoded
      try {
        decoded = fromBinary(MessageSchema, m.data)
      } catch {
        continue
      }
      if (decoded.sum.case === "pexAddrs") return decoded.sum.value.addrs
    }
  })

const messageOf = (e: unknown): string =>
  typeof e === "object" && e !== null && "message" in e && typeof e.message === "string" ? e.message : String(e)

const toFailure = (e: unknown): VisitFailure => {
  const tag = typeof e === "object" && e !== null && "_tag" in e ? e._tag : undefined
  return { message: messageOf(e), theirNetwork: tag === "IncompatiblePeer" ? peerNetworkOf(e as IncompatiblePeer) : undefined }
}

/**
 * Dials one address, handshakes as `network`, asks for addresses and waits for the answer, all
 * within `peerTimeoutMillis`. Failing to connect or handshake in time fails the visit; once the
 * handshake is done the node counts as found, answer or not. The connection is closed before this
 * returns.
 */
const visit = (
  transport: Transport["Service"],
  resolver: AddressResolver.AddressResolver["Service"],
  key: NodeKey.NodeKey,
  address: NodeAddress.NodeAddress,
  network: string,
  peerTimeoutMillis: number
): Effect.Effect<{ readonly peer: CrawledPeer; readonly addrs: ReadonlyArray<NetAddress> }, VisitFailure> =>
  Effect.gen(function* () {
    const started = yield* Clock.currentTimeMillis
    const { conn, peer } = yield* Effect.gen(function* () {
      const endpoint = (yield* resolver.resolve(address))[0]
      if (endpoint === undefined) return yield* Effect.fail(new Error("resolves to no address"))
      const conn = yield* transport.dial(endpoint)
      const nodeInfo = NodeInfo.make({ nodeId: key.nodeId, listenAddr: LISTEN_ADDR, network, moniker: MONIKER, version: VERSION, channels: [Pex.CHANNEL_ID] })
      const expected = NodeId.is(address.nodeId) ? { expectedId: address.nodeId } : {}
      const peer = yield* conn.handshake({ nodeInfo, nodeKey: key, timeout: peerTimeoutMillis, channels: [Pex.descriptor], ...expected })
      return { conn, peer }
    }).pipe(
      Effect.timeoutOrElse({
        duration: peerTimeoutMillis,
        orElse: () => Effect.fail(new Error(`did not connect and complete the handshake within ${peerTimeoutMillis / 1000} s`))
      }),
      Effect.mapError(toFailure)
    )
    const info = peer.nodeInfo
    const found = (addressesReturned: number | undefined): CrawledPeer => ({
      nodeId: info.nodeId,
      moniker: info.moniker,
      network: info.network,
      version: info.version,
      address: hostPort(address),
      listenAddr: info.listenAddr,
      channels: Buffer.from(info.channels).toString("hex"),
      addressesReturned
    })
    const remaining = Math.max(0, started + peerTimeoutMillis - (yield* Clock.currentTimeMillis))
    const answer = yield* Effect.gen(function* () {
      yield* conn.send(Pex.CHANNEL_ID, pexRequestBytes)
      return yield* awaitAddrs(conn)
    }).pipe(Effect.timeoutOption(remaining), Effect.orElseSucceed(() => Option.none()))
    return Option.match(answer, {
      onNone: () => ({ peer: found(undefined), addrs: [] }),
      onSome: (addrs) => ({ peer: found(addrs.length), addrs })
    })
  }).pipe(Effect.scoped)

// ---------------------------------------------------------------------------------------------
// The crawl
// ---------------------------------------------------------------------------------------------

/**
 * Crawls from the seeds (see the module comment) and returns what it found once every learnt
 * address is visited, `maxPeers` addresses were dialed, or the total timeout is over (then the
 * connections in flight are closed and their addresses counted as not visited). Nothing is
 * printed; `onPeer` sees each node as it is found.
 *
 * Fails with a `ConfigError` naming the flag for a bad option, and with {@link CrawlError} when
 * the TCP transport cannot be set up.
 */
export const runCrawl = (input: CrawlOptions): Effect.Effect<CrawlResult, ConfigError | CrawlError> =>
  Effect.gen(function* () {
    const options = yield* Effect.fromResult(validateOptions(input))
    const started = yield* Clock.currentTimeMillis
    const key = yield* NodeKey.generate()
    const transport = yield* TcpTransport.make({ host: "127.0.0.1", port: 0 }).pipe(
      Effect.provideService(NodeIdentity, { key }),
      Effect.mapError((e) => new CrawlError({ message: `cannot set up the TCP transport: ${e.message}` }))
    )
    // Dialing out only: stop accepting at once.
    yield* transport.close
    const resolver = yield* AddressResolver.AddressResolver.pipe(Effect.provide(AddressResolver.layerDns()))
    const semaphore = yield* Semaphore.make(options.concurrency)

    let network = options.network
    const peers: Array<CrawledPeer> = []
    const foundIds = new Set<string>()
    const failures: Array<Unreachable> = []
    const seen = new Set<string>()
    const pending = new Set<string>()
    let dialed = 0
    let skipped = 0

    const attempt = (address: NodeAddress.NodeAddress) => visit(transport, resolver, key, address, network ?? "", options.peerTimeoutMillis)

    const crawl = (address: NodeAddress.NodeAddress): Effect.Effect<void> =>
      Effect.gen(function* () {
        const id = NodeAddress.format(address)
        pending.add(id)
        const exit = yield* Effect.exit(semaphore.withPermits(1)(Effect.gen(function* () {
          if (foundIds.has(address.nodeId)) return undefined
          const first = yield* Effect.exit(attempt(address))
          if (Exit.isSuccess(first) || options.network !== undefined) return yield* first
          const theirs = Option.getOrUndefined(Exit.findErrorOption(first))?.theirNetwork
          if (theirs === undefined) return yield* first
          network ??= theirs
          if (theirs !== network) return yield* Effect.fail({ message: `on network ${theirs}, not ${network}`, theirNetwork: theirs })
          // The peer refused our placeholder network: try again as one of its own. The pause keeps
          // us clear of a router's per-IP reconnect window.
          yield* Effect.sleep(200)
          return yield* attempt(address)
        })))
        pending.delete(id)
        if (Exit.isFailure(exit)) {
          const failure = Option.getOrUndefined(Exit.findErrorOption(exit))
          failures.push({ nodeId: address.nodeId, address: hostPort(address), error: failure?.message ?? "failed" })
          return
        }
        const visited = exit.value
        if (visited === undefined || foundIds.has(visited.peer.nodeId)) return
        foundIds.add(visited.peer.nodeId)
        peers.push(visited.peer)
        if (input.onPeer !== undefined) yield* input.onPeer(visited.peer)
        const next: Array<NodeAddress.NodeAddress> = []
        for (const entry of visited.addrs) {
          const parsed = PexWire.fromNetAddress(entry, false)
          if (parsed._tag !== "Address" || parsed.address.nodeId === key.nodeId) continue
          if (!enqueue(parsed.address)) continue
          next.push(parsed.address)
        }
        yield* Effect.forEach(next, crawl, { concurrency: "unbounded", discard: true })
      })

    /** Whether an address is new and within `maxPeers` (then it counts as dialed). */
    const enqueue = (address: NodeAddress.NodeAddress): boolean => {
      const id = NodeAddress.format(address)
      if (seen.has(id) || foundIds.has(address.nodeId)) return false
      seen.add(id)
      if (dialed >= options.maxPeers) {
        skipped++
        return false
      }
      dialed++
      return true
    }

    const seeds = options.seeds.filter(enqueue)
    const completed = yield* Effect.forEach(seeds, crawl, { concurrency: "unbounded", discard: true }).pipe(Effect.timeoutOption(options.timeoutMillis))
    const finished = yield* Clock.currentTimeMillis
    return {
      network,
      peers,
      unreachable: failures.filter((f) => !foundIds.has(f.nodeId)),
      notVisited: skipped + pending.size,
      timedOut: Option.isNone(completed),
      elapsedMillis: finished - started
    }
  }).pipe(
    Effect.scoped,
    LiveView.quietLogs("Error")
  )

// ---------------------------------------------------------------------------------------------
// Command
// ---------------------------------------------------------------------------------------------

/**
 * `effect-p2p crawl --seeds LIST [--network ID] [--json] [--max-peers N] [--timeout SECONDS]
 * [--concurrency N]`. Fails with a `ConfigError` naming the flag for a bad value (the main
 * command prints it and exits 2).
 */
export const crawlCommand = Command.make("crawl", {
  seeds: Flag.String("seeds").pipe(Flag.withDescription("comma-separated id@host:port addresses to start from")),
  network: Flag.String("network").pipe(Flag.withDescription("network (chain) ID; learnt from the first peer if absent"), Flag.optional),
  json: Flag.Boolean("json").pipe(Flag.withDescription("one JSON object per line instead of a table"), Flag.withDefault(false)),
  maxPeers: Flag.Int("max-peers").pipe(Flag.withDescription(`most addresses to dial; default ${defaults.maxPeers}`), Flag.withDefault(defaults.maxPeers)),
  timeout: Flag.Finite("timeout").pipe(Flag.withDescription(`bound on the whole crawl, in seconds; default ${defaults.timeout}`), Flag.withDefault(defaults.timeout)),
  concurrency: Flag.Int("concurrency").pipe(Flag.withDescription(`connections open at once; default ${defaults.concurrency}`), Flag.withDefault(defaults.concurrency))
}, (flags) =>
  Effect.gen(function* () {
    const result = yield* runCrawl({
      seeds: flags.seeds,
      network: Option.getOrUndefined(flags.network),
      maxPeers: flags.maxPeers,
      timeout: flags.timeout,
      concurrency: flags.concurrency,
      ...(flags.json ? { onPeer: (p: CrawledPeer) => Console.log(peerJson(p)) } : {})
    })
    if (flags.json) {
      for (const u of result.unreachable) yield* Console.log(unreachableJson(u))
    } else {
      yield* Console.log(formatTable(result))
    }
  })).pipe(Command.withDescription("handshake and exchange peers through a network, and list the nodes found"))

/**
 * The crawl itself: with a throwaway key and a TCP transport, it dials each seed and each address
 * learnt, completes the handshake (which gives the peer's NodeInfo), sends a `pex_request` on
 * channel 0x00 in CometBFT's form over the raw `Connection`, reads the `pex_addrs` answer (bounded
 * wait) and queues the new addresses. It is bounded in total time, in addresses dialed and in
 * connections open at once. Without a network, the network is learnt from the first peer that
 * refuses ours.
 *
 * @since 0.1.0
 */
import { fromBinary, toBinary } from "@bufbuild/protobuf"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Semaphore from "effect/Semaphore"
import * as NodeAddress from "../../domain/NodeAddress.ts"
import * as NodeId from "../../domain/NodeId.ts"
import * as NodeInfo from "../../domain/NodeInfo.ts"
import * as NodeKey from "../../domain/NodeKey.ts"
import * as PexWire from "../../domain/PexWire.ts"
import * as AddressResolver from "../../layers/AddressResolver.ts"
import * as TcpTransport from "../../layers/TcpTransport.ts"
import { MessageSchema, type NetAddress } from "../../proto/tendermint/p2p/pex_pb.ts"
import { NodeIdentity } from "../../services/NodeIdentity.ts"
import * as Pex from "../../services/Pex.ts"
import type { Connection, IncompatiblePeer, Transport } from "../../services/Transport.ts"
import type { ConfigError } from "../Config.ts"
import * as LiveView from "../LiveView.ts"
import type { CrawledPeer, CrawlResult, Unreachable } from "./Format.ts"
import { type CrawlOptions, validateOptions } from "./Options.ts"

/** The crawler could not start (its transport could not be set up). */
export class CrawlError extends Schema.TaggedError<CrawlError>()("CrawlError", {
  message: Schema.String
}) {}

const hostPort = (a: NodeAddress.NodeAddress) => (a.hostname.includes(":") ? `[${a.hostname}]:${a.port}` : `${a.hostname}:${a.port}`)

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
      return Predicate.isString(value) ? value : undefined
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
const awaitAddrs = Effect.fnUntraced(function* (conn: Connection): Effect.fn.Return<ReadonlyArray<NetAddress>, unknown> {
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

const messageOf = (e: unknown): string => (Predicate.hasProperty(e, "message") && Predicate.isString(e.message) ? e.message : String(e))

const toFailure = (e: unknown): VisitFailure => ({
  message: messageOf(e),
  theirNetwork: Predicate.isTagged(e, "IncompatiblePeer") ? peerNetworkOf(e as IncompatiblePeer) : undefined
})

/**
 * Dials one address, handshakes as `network`, asks for addresses and waits for the answer, all
 * within `peerTimeoutMillis`. Failing to connect or handshake in time fails the visit; once the
 * handshake is done the node counts as found, answer or not. The connection is closed before this
 * returns.
 */
const visit = Effect.fn("Crawl.visit")(function* (
  transport: Transport["Service"],
  resolver: AddressResolver.AddressResolver["Service"],
  key: NodeKey.NodeKey,
  address: NodeAddress.NodeAddress,
  network: string,
  peerTimeoutMillis: number
): Effect.fn.Return<{ readonly peer: CrawledPeer; readonly addrs: ReadonlyArray<NetAddress> }, VisitFailure, Scope.Scope> {
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
}, Effect.scoped)

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
export const runCrawl = Effect.fn("Crawl.runCrawl")(function* (input: CrawlOptions): Effect.fn.Return<CrawlResult, ConfigError | CrawlError, Scope.Scope> {
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

  const crawl = Effect.fnUntraced(function* (address: NodeAddress.NodeAddress): Effect.fn.Return<void> {
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
}, Effect.scoped, LiveView.quietLogs("Error"))

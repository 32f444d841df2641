/**
 * The inputs of `effect-p2p crawl` and of `runCrawl`: the options, their defaults, and their
 * validation. A bad value fails with a `ConfigError` whose key and message name the flag.
 *
 * @since 0.1.0
 */
import type * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import * as NodeAddress from "../../domain/NodeAddress.ts"
import * as NodeId from "../../domain/NodeId.ts"
import * as TcpTransport from "../../layers/TcpTransport.ts"
import { ConfigError, parsePeerList } from "../Config.ts"
import type { CrawledPeer } from "./Format.ts"

/** What `runCrawl` is told; the flags of `effect-p2p crawl`. */
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

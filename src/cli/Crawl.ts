/**
 * `effect-p2p crawl`: walks a CometBFT (or effect-p2p) network by handshake and peer exchange.
 * With a throwaway key and a TCP transport, it dials each seed and each address learnt, completes
 * the handshake (which gives the peer's NodeInfo), asks for addresses and queues the new ones,
 * bounded in total time, in addresses dialed and in connections open at once. Without
 * `--network`, the network is learnt from the first peer that refuses ours.
 *
 * Output is a table (node ID, moniker, network, version, address) with the unreachable addresses
 * listed after it, or with `--json` one JSON object per line: found nodes as they are found, then
 * one line with an `"error"` field per unreachable address.
 *
 * This module is the command and the namespace; the parts live in `crawl/`: `Options.ts` (the
 * inputs and their validation), `Crawl.ts` (the crawl) and `Format.ts` (the result and its
 * printed forms).
 *
 * @since 0.1.0
 */
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { Command, Flag } from "effect/cli"
import { runCrawl } from "./crawl/Crawl.ts"
import { type CrawledPeer, formatTable, peerJson, unreachableJson } from "./crawl/Format.ts"
import { defaults } from "./crawl/Options.ts"

export { CrawlError, peerNetworkOf, runCrawl } from "./crawl/Crawl.ts"
export { type CrawledPeer, type CrawlResult, formatTable, peerJson, type Unreachable, unreachableJson } from "./crawl/Format.ts"
export { type CrawlOptions, defaults, validateOptions, type ValidCrawlOptions } from "./crawl/Options.ts"

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
}, Effect.fn("Crawl.command")(function* (flags) {
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

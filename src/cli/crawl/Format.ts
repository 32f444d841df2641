/**
 * What a crawl found, and its two printed forms: a table with the unreachable addresses after it,
 * or JSON lines (one per node found, then one with an `"error"` field per unreachable address).
 *
 * @since 0.1.0
 */
import * as LiveView from "../LiveView.ts"

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

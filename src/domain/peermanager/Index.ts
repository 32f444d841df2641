/**
 * The PeerManager's index of its peers: what its decisions look up, kept in persistent trees so
 * every state has one and a transition updates it in O(log n) per peer it touches
 * (docs/ARCHITECTURE.md#scores-and-ranking). Without it, choosing whom to dial, whom to evict or
 * what to advertise walked the whole address book at every call.
 *
 * - `rank`: every peer, best first (score descending, node ID ascending), in a treap whose
 *   priorities are hashes of the node IDs (so its shape depends only on its contents). Each node
 *   carries what the decisions filter on, summed or minimised over its subtree: when the peer, as a
 *   dial candidate (neither connected, dialing nor inactive), is next dialable (`ready`, the
 *   earliest of its addresses' retry times and its disconnect cooldown); whether it is connected;
 *   how many of its addresses may be advertised (none when it is inactive or private). So a walk
 *   skips whole subtrees: of peers not dialable yet, of peers not connected, of nothing to
 *   advertise; and the n-th advertisable address is found in O(log n).
 * - `times`: when each address of each dial candidate becomes dialable, in order, for the
 *   dialer's next wake-up.
 *
 * An index belongs to one state object (`indexOf`): a `Draft` derives its outcome's index from its
 * base's by re-indexing the peers it touched; any other state (built by hand, or by spreading
 * another) gets one built on first use.
 *
 * @since 0.1.0
 */
import type * as NodeAddress from "../NodeAddress.ts"
import type * as NodeId from "../NodeId.ts"
import * as PeerRecord from "../PeerRecord.ts"
import * as Backoff from "./Backoff.ts"
import type { Policy } from "./Policy.ts"
import { PersistentMap } from "./PersistentMap.ts"

/** Key of one peer's address in the retry-time map. */
export const retryKey = (id: NodeId.NodeId, a: NodeAddress.NodeAddress): string => `${id}|${addressKey(a)}`

/** A structural key for an address: distinct addresses never share one (unlike the URL text). */
export const addressKey = (a: NodeAddress.NodeAddress): string => JSON.stringify([a.protocol, a.nodeId, a.hostname, a.port, a.path])

/** When `address` of `peer` may be dialed again (`Infinity`: never; `0` or less: now). */
export const retryTimeOf = (retryAt: ReadonlyMap<string, number>, options: Policy, peer: PeerRecord.PeerRecord, info: PeerRecord.AddressInfo): number => {
  if (info.dialFailures === 0 || info.lastDialFailure === undefined) return 0
  const stored = retryAt.get(retryKey(peer.id, info.address))
  if (stored !== undefined) return stored
  // Loaded from disk: no jitter sample survives a restart, so use the delay without jitter.
  const delay = Backoff.retryDelay(options, info.dialFailures, peer.persistent, 0)
  return delay === undefined ? Number.POSITIVE_INFINITY : info.lastDialFailure + delay
}

/** What the index needs from a state. */
export interface Source {
  readonly options: Policy
  readonly peers: ReadonlyMap<NodeId.NodeId, PeerRecord.PeerRecord>
  readonly dialing: ReadonlySet<NodeId.NodeId>
  readonly connected: ReadonlyMap<NodeId.NodeId, unknown>
  readonly retryAt: ReadonlyMap<string, number>
}

/** What the index holds of one peer. */
interface Entry {
  readonly record: PeerRecord.PeerRecord
  readonly score: number
  /** Per address, when it becomes dialable; empty unless the peer is a dial candidate. */
  readonly ats: ReadonlyArray<number>
  readonly ready: number
  readonly connected: boolean
  readonly advertisable: number
  /** Addresses naming another node than the peer (only a damaged row has them). */
  readonly foreign: number
  /** Pruning may delete it: neither persistent, connected nor dialing. */
  readonly prunable: boolean
  /** Prunable and unproven: never reached, and scoring 0 or less (pruned first). */
  readonly unproven: boolean
}

const NO_TIMES: ReadonlyArray<number> = []

const entryOf = (source: Source, p: PeerRecord.PeerRecord): Entry => {
  const connected = source.connected.has(p.id)
  const candidate = !connected && !source.dialing.has(p.id) && !p.inactive
  let ats = NO_TIMES
  let ready = Number.POSITIVE_INFINITY
  if (candidate && p.addresses.length > 0) {
    const cooldownEnd = p.lastDisconnected === undefined ? 0 : p.lastDisconnected + source.options.disconnectCooldownPeriod
    ats = p.addresses.map((a) => Math.max(retryTimeOf(source.retryAt, source.options, p, a), cooldownEnd))
    for (const at of ats) if (at < ready) ready = at
  }
  let foreign = 0
  for (const a of p.addresses) if (a.address.nodeId !== p.id) foreign++
  const score = PeerRecord.score(p)
  const prunable = !p.persistent && !connected && !source.dialing.has(p.id)
  return {
    record: p,
    score,
    prunable,
    unproven: prunable && score <= 0 && !PeerRecord.reached(p),
    ats,
    ready,
    connected,
    advertisable: p.inactive || source.options.privatePeers.has(p.id) ? 0 : p.addresses.length,
    foreign
  }
}

const sameEntry = (a: Entry, b: Entry): boolean =>
  a.record === b.record && a.score === b.score && a.ready === b.ready && a.connected === b.connected && a.advertisable === b.advertisable &&
  a.prunable === b.prunable && a.unproven === b.unproven &&
  a.ats.length === b.ats.length && a.ats.every((x, i) => x === b.ats[i])

/** A 32-bit hash of a string (the treaps' priorities). */
const hashOf = (key: string, seed: number): number => {
  let h = 0x811c9dc5 ^ seed
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193)
  h ^= h >>> 15
  h = Math.imul(h, 0x2c1b3c6d)
  return (h ^ (h >>> 12)) >>> 0
}

// ---------------------------------------------------------------------------------------------
// The ranking
// ---------------------------------------------------------------------------------------------

/** A node of the ranking. Immutable: changes copy the path from the root. */
export class RankNode {
  readonly entry: Entry
  readonly id: NodeId.NodeId
  readonly score: number
  readonly priority: number
  readonly left: RankNode | undefined
  readonly right: RankNode | undefined
  /** Peers in the subtree. */
  readonly size: number
  /** The earliest `ready` in the subtree. */
  readonly minReady: number
  /** Connected peers in the subtree. */
  readonly connectedCount: number
  /** Advertisable addresses in the subtree. */
  readonly advertisableCount: number
  /** Prunable peers in the subtree, and unproven ones among them. */
  readonly prunableCount: number
  readonly unprovenCount: number

  constructor(entry: Entry, priority: number, left: RankNode | undefined, right: RankNode | undefined) {
    this.entry = entry
    this.id = entry.record.id
    this.score = entry.score
    this.priority = priority
    this.left = left
    this.right = right
    this.size = 1 + (left?.size ?? 0) + (right?.size ?? 0)
    this.minReady = Math.min(entry.ready, left?.minReady ?? Number.POSITIVE_INFINITY, right?.minReady ?? Number.POSITIVE_INFINITY)
    this.connectedCount = (entry.connected ? 1 : 0) + (left?.connectedCount ?? 0) + (right?.connectedCount ?? 0)
    this.advertisableCount = entry.advertisable + (left?.advertisableCount ?? 0) + (right?.advertisableCount ?? 0)
    this.prunableCount = (entry.prunable ? 1 : 0) + (left?.prunableCount ?? 0) + (right?.prunableCount ?? 0)
    this.unprovenCount = (entry.unproven ? 1 : 0) + (left?.unprovenCount ?? 0) + (right?.unprovenCount ?? 0)
  }

  get record(): PeerRecord.PeerRecord {
    return this.entry.record
  }
}

/** Whether the key (score, id) ranks before `node`. */
const rankBefore = (score: number, id: string, node: RankNode): boolean => score > node.score || (score === node.score && id < node.id)

const withChildren = (n: RankNode, left: RankNode | undefined, right: RankNode | undefined): RankNode =>
  n.left === left && n.right === right ? n : new RankNode(n.entry, n.priority, left, right)

/** The nodes ranking before (score, id), and the others. */
const splitRank = (t: RankNode | undefined, score: number, id: string): [RankNode | undefined, RankNode | undefined] => {
  if (t === undefined) return [undefined, undefined]
  if (rankBefore(score, id, t)) {
    const [l, r] = splitRank(t.left, score, id)
    return [l, withChildren(t, r, t.right)]
  }
  const [l, r] = splitRank(t.right, score, id)
  return [withChildren(t, t.left, l), r]
}

const mergeRank = (a: RankNode | undefined, b: RankNode | undefined): RankNode | undefined => {
  if (a === undefined) return b
  if (b === undefined) return a
  return a.priority >= b.priority ? withChildren(a, a.left, mergeRank(a.right, b)) : withChildren(b, mergeRank(a, b.left), b.right)
}

const insertRank = (t: RankNode | undefined, entry: Entry, priority: number): RankNode => {
  if (t === undefined) return new RankNode(entry, priority, undefined, undefined)
  if (priority > t.priority) {
    const [l, r] = splitRank(t, entry.score, entry.record.id)
    return new RankNode(entry, priority, l, r)
  }
  return rankBefore(entry.score, entry.record.id, t)
    ? withChildren(t, insertRank(t.left, entry, priority), t.right)
    : withChildren(t, t.left, insertRank(t.right, entry, priority))
}

const removeRank = (t: RankNode | undefined, score: number, id: string): RankNode | undefined => {
  if (t === undefined) return undefined
  if (t.score === score && t.id === id) return mergeRank(t.left, t.right)
  return rankBefore(score, id, t) ? withChildren(t, removeRank(t.left, score, id), t.right) : withChildren(t, t.left, removeRank(t.right, score, id))
}

/** The same tree with the node at (its unchanged) key carrying `entry`. */
const replaceRank = (t: RankNode | undefined, entry: Entry): RankNode | undefined => {
  if (t === undefined) return undefined
  const id = entry.record.id
  if (t.id === id) return new RankNode(entry, t.priority, t.left, t.right)
  return rankBefore(entry.score, id, t) ? withChildren(t, replaceRank(t.left, entry), t.right) : withChildren(t, t.left, replaceRank(t.right, entry))
}

/** Visits, best first, the nodes whose `ready` is at most `now`; stops when `visit` returns true. */
export const forEachReady = (root: RankNode | undefined, now: number, visit: (node: RankNode) => boolean): void => {
  const stack: Array<RankNode> = []
  let n = root
  while (true) {
    while (n !== undefined && n.minReady <= now) {
      stack.push(n)
      n = n.left
    }
    const top = stack.pop()
    if (top === undefined) return
    if (top.entry.ready <= now && visit(top)) return
    n = top.right
  }
}

/** Which peers a walk visits: all, or only those with a flag (subtrees without one are skipped). */
export type Only = "all" | "connected" | "prunable" | "unproven"

const countOf = (n: RankNode, only: Only): number =>
  only === "all" ? 1 : only === "connected" ? n.connectedCount : only === "prunable" ? n.prunableCount : n.unprovenCount

const has = (n: RankNode, only: Only): boolean =>
  only === "all" || (only === "connected" ? n.entry.connected : only === "prunable" ? n.entry.prunable : n.entry.unproven)

/** Visits nodes best first (`only`: those with a flag); stops when `visit` returns true. */
export const forEach = (root: RankNode | undefined, visit: (node: RankNode) => boolean, only: Only = "all"): void => {
  const stack: Array<RankNode> = []
  let n = root
  while (true) {
    while (n !== undefined && countOf(n, only) > 0) {
      stack.push(n)
      n = n.left
    }
    const top = stack.pop()
    if (top === undefined) return
    if (has(top, only) && visit(top)) return
    n = top.right
  }
}

/** Visits nodes worst first (`only`: those with a flag); stops when `visit` returns true. */
export const forEachReverse = (root: RankNode | undefined, visit: (node: RankNode) => boolean, only: Only = "all"): void => {
  const stack: Array<RankNode> = []
  let n = root
  while (true) {
    while (n !== undefined && countOf(n, only) > 0) {
      stack.push(n)
      n = n.right
    }
    const top = stack.pop()
    if (top === undefined) return
    if (has(top, only) && visit(top)) return
    n = top.left
  }
}

/** Advertisable addresses of the peers ranking before (score, id); `id` "" counts exactly the peers scoring above `score`. */
export const advertisableBefore = (root: RankNode | undefined, score: number, id: string): number => {
  let count = 0
  let n = root
  while (n !== undefined) {
    if (rankBefore(score, id, n) || (n.score === score && n.id === id)) n = n.left
    else {
      count += (n.left?.advertisableCount ?? 0) + n.entry.advertisable
      n = n.right
    }
  }
  return count
}

/** The `position`-th advertisable address (from 0, in ranking order): its node and its index among the peer's addresses. */
export const selectAdvertisable = (root: RankNode | undefined, position: number): { readonly node: RankNode; readonly offset: number } | undefined => {
  let n = root
  let p = position
  while (n !== undefined) {
    const left = n.left?.advertisableCount ?? 0
    if (p < left) {
      n = n.left
      continue
    }
    p -= left
    if (p < n.entry.advertisable) return { node: n, offset: p }
    p -= n.entry.advertisable
    n = n.right
  }
  return undefined
}

// ---------------------------------------------------------------------------------------------
// Dial times
// ---------------------------------------------------------------------------------------------

class TimeNode {
  readonly at: number
  readonly id: string
  readonly index: number
  readonly priority: number
  readonly left: TimeNode | undefined
  readonly right: TimeNode | undefined
  constructor(at: number, id: string, index: number, priority: number, left: TimeNode | undefined, right: TimeNode | undefined) {
    this.at = at
    this.id = id
    this.index = index
    this.priority = priority
    this.left = left
    this.right = right
  }
}

const timeBefore = (at: number, id: string, index: number, n: TimeNode): boolean =>
  at < n.at || (at === n.at && (id < n.id || (id === n.id && index < n.index)))

const timeChildren = (n: TimeNode, left: TimeNode | undefined, right: TimeNode | undefined): TimeNode =>
  n.left === left && n.right === right ? n : new TimeNode(n.at, n.id, n.index, n.priority, left, right)

const splitTime = (t: TimeNode | undefined, at: number, id: string, index: number): [TimeNode | undefined, TimeNode | undefined] => {
  if (t === undefined) return [undefined, undefined]
  if (timeBefore(at, id, index, t)) {
    const [l, r] = splitTime(t.left, at, id, index)
    return [l, timeChildren(t, r, t.right)]
  }
  const [l, r] = splitTime(t.right, at, id, index)
  return [timeChildren(t, t.left, l), r]
}

const mergeTime = (a: TimeNode | undefined, b: TimeNode | undefined): TimeNode | undefined => {
  if (a === undefined) return b
  if (b === undefined) return a
  return a.priority >= b.priority ? timeChildren(a, a.left, mergeTime(a.right, b)) : timeChildren(b, mergeTime(a, b.left), b.right)
}

const timePriority = (id: string, index: number, at: number): number => hashOf(id, Math.imul(index + 1, 0x9e3779b1) ^ (at | 0))

const insertTime = (t: TimeNode | undefined, at: number, id: string, index: number, priority: number): TimeNode => {
  if (t === undefined) return new TimeNode(at, id, index, priority, undefined, undefined)
  if (priority > t.priority) {
    const [l, r] = splitTime(t, at, id, index)
    return new TimeNode(at, id, index, priority, l, r)
  }
  return timeBefore(at, id, index, t)
    ? timeChildren(t, insertTime(t.left, at, id, index, priority), t.right)
    : timeChildren(t, t.left, insertTime(t.right, at, id, index, priority))
}

const removeTime = (t: TimeNode | undefined, at: number, id: string, index: number): TimeNode | undefined => {
  if (t === undefined) return undefined
  if (t.at === at && t.id === id && t.index === index) return mergeTime(t.left, t.right)
  return timeBefore(at, id, index, t)
    ? timeChildren(t, removeTime(t.left, at, id, index), t.right)
    : timeChildren(t, t.left, removeTime(t.right, at, id, index))
}

/**
 * Whether a dial time goes in the tree: a wake-up is only ever due after a time that is already
 * past (times are epoch milliseconds, so a never-failed address, at 0, is never one) and never
 * at `Infinity` (never retried). Most addresses of a large book are thus not in it.
 */
const timed = (at: number): boolean => at > 0 && Number.isFinite(at)

/** The earliest time after `now` in the tree, if any. */
const timeAfter = (root: TimeNode | undefined, now: number): number | undefined => {
  let best: number | undefined
  let n = root
  while (n !== undefined) {
    if (n.at > now) {
      best = n.at
      n = n.left
    } else n = n.right
  }
  return best
}

// ---------------------------------------------------------------------------------------------
// The index
// ---------------------------------------------------------------------------------------------

/** The index of one state. */
export interface Index {
  readonly rank: RankNode | undefined
  readonly times: TimeNode | undefined
  readonly entries: PersistentMap<NodeId.NodeId, Entry>
  /** Addresses, over all peers, naming another node than their peer. */
  readonly foreign: number
}

export const emptyIndex: Index = { rank: undefined, times: undefined, entries: PersistentMap.empty(), foreign: 0 }

const rankPriority = (id: string): number => hashOf(id, 0)

/**
 * A treap of `items` (sorted by its key) with the given priorities, built bottom-up in O(n): the
 * right spine on a stack, each item popping the lower-priority nodes it goes above.
 */
const cartesian = <T, N>(items: ReadonlyArray<T>, priority: (t: T) => number, make: (t: T, left: N | undefined, right: N | undefined) => N): N | undefined => {
  interface Proto { readonly item: T; readonly priority: number; left: Proto | undefined; right: Proto | undefined }
  const stack: Array<Proto> = []
  for (const item of items) {
    const node: Proto = { item, priority: priority(item), left: undefined, right: undefined }
    let last: Proto | undefined
    while (stack.length > 0 && stack[stack.length - 1]!.priority < node.priority) last = stack.pop()
    node.left = last
    if (stack.length > 0) stack[stack.length - 1]!.right = node
    stack.push(node)
  }
  const finish = (p: Proto | undefined): N | undefined => (p === undefined ? undefined : make(p.item, finish(p.left), finish(p.right)))
  return finish(stack[0])
}

/** The index of a state, from scratch: O(n log n). */
export const build = (source: Source): Index => {
  const list: Array<Entry> = []
  let entries = PersistentMap.empty<NodeId.NodeId, Entry>()
  let foreign = 0
  for (const p of source.peers.values()) {
    const e = entryOf(source, p)
    list.push(e)
    entries = entries.with(p.id, e)
    foreign += e.foreign
  }
  list.sort((a, b) => b.score - a.score || (a.record.id < b.record.id ? -1 : a.record.id > b.record.id ? 1 : 0))
  const rank = cartesian<Entry, RankNode>(list, (e) => rankPriority(e.record.id), (e, l, r) => new RankNode(e, rankPriority(e.record.id), l, r))
  const times: Array<readonly [number, string, number]> = []
  for (const e of list) e.ats.forEach((at, i) => timed(at) && times.push([at, e.record.id, i]))
  times.sort((x, y) => x[0] - y[0] || (x[1] < y[1] ? -1 : x[1] > y[1] ? 1 : x[2] - y[2]))
  const timeRoot = cartesian<readonly [number, string, number], TimeNode>(
    times,
    ([at, id, i]) => timePriority(id, i, at),
    ([at, id, i], l, r) => new TimeNode(at, id, i, timePriority(id, i, at), l, r)
  )
  return { rank, times: timeRoot, entries, foreign }
}

/** `index` with the peers `ids` re-read from `source` (added, changed or gone): O(log n) each. */
export const refresh = (index: Index, ids: Iterable<NodeId.NodeId>, source: Source): Index => {
  let { entries, foreign, rank, times } = index
  for (const id of ids) {
    const old = entries.get(id)
    const p = source.peers.get(id)
    const next = p === undefined ? undefined : entryOf(source, p)
    if (old !== undefined && next !== undefined && sameEntry(old, next)) continue
    if (old !== undefined) {
      foreign -= old.foreign
      old.ats.forEach((at, i) => {
        if (timed(at)) times = removeTime(times, at, id, i)
      })
      if (next === undefined || next.score !== old.score) rank = removeRank(rank, old.score, id)
    }
    if (next === undefined) {
      entries = entries.without(id)
      continue
    }
    foreign += next.foreign
    next.ats.forEach((at, i) => {
      if (timed(at)) times = insertTime(times, at, id, i, timePriority(id, i, at))
    })
    rank = old !== undefined && old.score === next.score ? replaceRank(rank, next) : insertRank(rank, next, rankPriority(id))
    entries = entries.with(id, next)
  }
  return { rank, times, entries, foreign }
}

/** The earliest time after `now` at which an address of a dial candidate becomes dialable. */
export const nextTimeAfter = (index: Index, now: number): number | undefined => timeAfter(index.times, now)

/** The records best first. */
export const records = (index: Index): Array<PeerRecord.PeerRecord> => {
  const out: Array<PeerRecord.PeerRecord> = []
  forEach(index.rank, (n) => {
    out.push(n.entry.record)
    return false
  })
  return out
}

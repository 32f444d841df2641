/**
 * The PeerManager's state: an immutable value. Transitions (in the sibling files) are pure functions
 * from a state to an {@link Outcome}: the next state plus what the shell must do (persist records,
 * publish updates, wake the dialer or evictor). They never perform I/O.
 *
 * @since 0.1.0
 */
import type * as Ban from "../Ban.ts"
import * as Ip from "../Ip.ts"
import type * as NodeAddress from "../NodeAddress.ts"
import type * as NodeId from "../NodeId.ts"
import * as PeerRecord from "../PeerRecord.ts"
import type * as PeerUpdate from "../PeerUpdate.ts"
import * as Index from "./Index.ts"
import { PersistentMap, PersistentSet } from "./PersistentMap.ts"
import type { Direction, Policy } from "./Policy.ts"

/** The whole state of a PeerManager. */
export interface State {
  readonly self: NodeId.NodeId
  readonly options: Policy
  readonly peers: ReadonlyMap<NodeId.NodeId, PeerRecord.PeerRecord>
  /** Address -> the peer that listed it last (guards against one address under several IDs). */
  readonly owners: ReadonlyMap<string, NodeId.NodeId>
  readonly dialing: ReadonlySet<NodeId.NodeId>
  readonly connected: ReadonlyMap<NodeId.NodeId, Direction>
  readonly ready: ReadonlySet<NodeId.NodeId>
  /** Marked for eviction, not yet handed to the router. */
  readonly evict: ReadonlySet<NodeId.NodeId>
  /** Handed to the router for eviction. */
  readonly evicting: ReadonlySet<NodeId.NodeId>
  /** Upgrade reservations: `from` (connected, lower score) will be evicted once `to` connects. */
  readonly upgrading: ReadonlyMap<NodeId.NodeId, NodeId.NodeId>
  /**
   * Inbound peers admitted only for a grace period although the node was full (so they can ask for
   * addresses before they go), with the time their eviction falls due. They take no slot.
   */
  readonly grace: ReadonlyMap<NodeId.NodeId, number>
  /** When each failed address may be dialed again (sampled once per failure, docs/ARCHITECTURE.md#fixed-problems-of-the-original). */
  readonly retryAt: ReadonlyMap<string, number>
  /** Bans by `Ban.key` (node IDs and IP networks), expired ones included until the next write. */
  readonly bans: ReadonlyMap<string, Ban.Ban>
  /** Recent misbehaviour per ban key (a node, or a /32 or /128 for failed handshakes). */
  readonly strikes: ReadonlyMap<string, Strike>
  /** The remote IP of connected peers, when the router told it (for network bans). */
  readonly connectedIps: ReadonlyMap<NodeId.NodeId, string>
  /** Stored peers learned over PEX and not yet reached, per source peer. */
  readonly gossipBySource: ReadonlyMap<NodeId.NodeId, number>
  /** The same per address group (IPv4 /16, IPv6 /32; a DNS name is its own group). */
  readonly gossipByGroup: ReadonlyMap<string, number>
}

/** The address group of an address for PEX limits: IPv4 /16, IPv6 /32, a DNS name as itself, none for memory addresses. */
export const addressGroup = (a: NodeAddress.NodeAddress): string | undefined => {
  if (a.hostname === "") return undefined
  return Ip.isValid(a.hostname) ? Ip.group(a.hostname, 16, 32) : `dns:${a.hostname}`
}

/** What a record counts for in the gossip limits: its source and group, while it is gossip-learned and unreached. */
const gossipOf = (p: PeerRecord.PeerRecord): { readonly source: NodeId.NodeId; readonly group: string | undefined } | undefined =>
  p.source === undefined || p.persistent || PeerRecord.reached(p) ? undefined : { source: p.source, group: p.addresses[0] === undefined ? undefined : addressGroup(p.addresses[0].address) }

/** Misbehaviour counted since `first`. */
export interface Strike {
  readonly count: number
  readonly first: number
}

/** A structural key for an address: distinct addresses never share one (unlike the URL text). */
export const addressKey: (a: NodeAddress.NodeAddress) => string = Index.addressKey

/** Key of one peer's address in `retryAt`. */
export const retryKey: (id: NodeId.NodeId, a: NodeAddress.NodeAddress) => string = Index.retryKey

/** Whether two addresses are equal (as `Equal.equals` compares them, field by field, without allocating). */
export const sameAddress = (x: NodeAddress.NodeAddress, y: NodeAddress.NodeAddress): boolean =>
  x === y || (x.nodeId === y.nodeId && x.protocol === y.protocol && x.hostname === y.hostname && x.port === y.port && x.path === y.path)

/** The entry of a peer's address, if it lists it. */
export const findAddress = (peer: PeerRecord.PeerRecord, address: NodeAddress.NodeAddress): PeerRecord.AddressInfo | undefined =>
  peer.addresses.find((a) => sameAddress(a.address, address))

/** A copy of a peer with the entry of `address` replaced by `f(entry)` (no change when it does not list it). */
export const updateAddress = (peer: PeerRecord.PeerRecord, address: NodeAddress.NodeAddress, f: (a: PeerRecord.AddressInfo) => PeerRecord.AddressInfo): PeerRecord.PeerRecord => ({
  ...peer,
  addresses: peer.addresses.map((a) => (sameAddress(a.address, address) ? f(a) : a))
})

/** Whether two records of a peer list the same addresses (in the same order). */
const sameAddresses = (a: PeerRecord.PeerRecord, b: PeerRecord.PeerRecord): boolean =>
  a.addresses.length === b.addresses.length && a.addresses.every((x, i) => sameAddress(x.address, b.addresses[i]!.address))

/** A state with no peers. */
export const empty = (self: NodeId.NodeId, options: Policy): State => {
  const state: State = {
    self,
    options,
    peers: PersistentMap.empty(),
    owners: PersistentMap.empty(),
    dialing: PersistentSet.empty(),
    connected: PersistentMap.empty(),
    ready: PersistentSet.empty(),
    evict: new Set(),
    evicting: PersistentSet.empty(),
    upgrading: new Map(),
    grace: new Map(),
    retryAt: PersistentMap.empty(),
    bans: new Map(),
    strikes: new Map(),
    connectedIps: new Map(),
    gossipBySource: new Map(),
    gossipByGroup: new Map()
  }
  indexes.set(state, Index.emptyIndex)
  return state
}

/**
 * The index of each state (`domain/peermanager/Index.ts`), or what it takes to get it: an earlier
 * state's index and the peers touched since. States never change, so neither does their index. A
 * {@link Draft} leaves its outcome the base's index plus the peers it touched, and the index is
 * brought up to date only when a decision asks for it (most transitions are followed by none:
 * a node with all the peers it may dial does not look at its book to dial). A state made any other
 * way gets its index built when first asked.
 */
const indexes = new WeakMap<State, Index.Index | Pending>()

/** Peers touched since `index`, newest batch first. */
interface Pending {
  readonly index: Index.Index
  readonly touched: Batch
  readonly count: number
}

interface Batch {
  readonly ids: ReadonlyArray<NodeId.NodeId>
  readonly next: Batch | undefined
}

/** Touched peers a pending index may pile up before it is brought up to date anyway. */
const MAX_PENDING = 512

const isPending = (entry: Index.Index | Pending): entry is Pending => "touched" in entry

/** The index of a state. */
export const indexOf = (state: State): Index.Index => {
  const entry = indexes.get(state)
  if (entry !== undefined && !isPending(entry)) return entry
  let index: Index.Index
  if (entry === undefined) index = Index.build(state)
  else {
    const ids = new Set<NodeId.NodeId>()
    for (let batch: Batch | undefined = entry.touched; batch !== undefined; batch = batch.next) for (const id of batch.ids) ids.add(id)
    index = Index.refresh(entry.index, ids, state)
  }
  indexes.set(state, index)
  return index
}

/** Records `state`'s index as `base`'s plus the peers in `touched`. */
const deriveIndex = (state: State, base: Index.Index | Pending, touched: ReadonlyArray<NodeId.NodeId>): void => {
  if (touched.length === 0) {
    indexes.set(state, base)
    return
  }
  const pending: Pending = isPending(base)
    ? { index: base.index, touched: { ids: touched, next: base.touched }, count: base.count + touched.length }
    : { index: base, touched: { ids: touched, next: undefined }, count: touched.length }
  indexes.set(state, pending)
  if (pending.count > MAX_PENDING) indexOf(state)
}

const rankedRecords = new WeakMap<State, ReadonlyArray<PeerRecord.PeerRecord>>()

/** Peers best first: by score, ties by node ID (docs/ARCHITECTURE.md#scores-and-ranking). O(n): decisions walk {@link indexOf} instead. */
export const ranked = (state: State): ReadonlyArray<PeerRecord.PeerRecord> => {
  let list = rankedRecords.get(state)
  if (list === undefined) {
    list = Index.records(indexOf(state))
    rankedRecords.set(state, list)
  }
  return list
}

/** Node IDs best first (see {@link ranked}). */
export const rankedIds = (state: State): ReadonlyArray<NodeId.NodeId> => ranked(state).map((p) => p.id)

/** Whether a peer is outside every connection limit (an unconditional peer). */
export const isUnconditional = (state: State, id: NodeId.NodeId): boolean => state.options.unconditionalPeers.has(id)

/** Whether a connected peer takes no slot: unconditional, or admitted for a grace period. */
/** Whether a connected peer takes no connection slot (unconditional, or admitted on grace): evicting it frees nothing. */
export const isUncounted = (state: State, id: NodeId.NodeId): boolean => state.options.unconditionalPeers.has(id) || state.grace.has(id)

/** Whether a peer is outside the per-direction limits (`maxIncomingPeers`, `maxOutgoingPeers`): persistent or unconditional. */
export const isDirectionExempt = (state: State, id: NodeId.NodeId): boolean =>
  state.options.unconditionalPeers.has(id) || state.options.persistentPeers.has(id)

/** What the limits and the gauges count among the connected peers (see {@link connectionCounts}). */
export interface ConnectionCounts {
  /** Connected peers that count against `maxConnected`: all but unconditional ones and those on grace. */
  readonly counted: number
  /** Outgoing connections of peers that are not unconditional (`maxOutgoingConnections`). */
  readonly outgoing: number
  /** Connected peers per direction that count against `maxIncomingPeers`/`maxOutgoingPeers`: not exempt, not uncounted. */
  readonly incomingLimited: number
  readonly outgoingLimited: number
  /** Connected peers per direction, those on grace left out (the gauges). */
  readonly incomingNotOnGrace: number
  readonly outgoingNotOnGrace: number
}

interface CachedCounts extends ConnectionCounts {
  readonly grace: ReadonlyMap<NodeId.NodeId, number>
  readonly options: Policy
}

const countsCache = new WeakMap<ReadonlyMap<NodeId.NodeId, Direction>, CachedCounts>()

/**
 * The connection counts of a state, computed once per connected map (committed states never
 * mutate theirs, and a draft makes a new one when it connects or disconnects), so the limits are
 * O(1) for every decision between two connection events.
 */
export const connectionCounts = (state: State): ConnectionCounts => {
  const cached = countsCache.get(state.connected)
  if (cached !== undefined && cached.grace === state.grace && cached.options === state.options) return cached
  const counts = { counted: 0, outgoing: 0, incomingLimited: 0, outgoingLimited: 0, incomingNotOnGrace: 0, outgoingNotOnGrace: 0 }
  // `forEach`: no entry pair allocated per peer (the map is often persistent).
  state.connected.forEach((d, id) => countConnection(counts, state.options, id, d, state.grace.has(id), 1))
  return rememberCounts(state, counts)
}

type Counts = { -readonly [K in keyof ConnectionCounts]: number }

/** Adds `sign` times what one connected peer counts for to `counts`. */
const countConnection = (counts: Counts, options: Policy, id: NodeId.NodeId, d: Direction, onGrace: boolean, sign: 1 | -1): void => {
  const unconditional = options.unconditionalPeers.has(id)
  if (!unconditional && !onGrace) counts.counted += sign
  if (d === "outgoing" && !unconditional) counts.outgoing += sign
  const limited = !unconditional && !onGrace && !options.persistentPeers.has(id)
  if (d === "incoming") {
    if (limited) counts.incomingLimited += sign
    if (!onGrace) counts.incomingNotOnGrace += sign
  } else {
    if (limited) counts.outgoingLimited += sign
    if (!onGrace) counts.outgoingNotOnGrace += sign
  }
}

const rememberCounts = (state: State, counts: Counts): ConnectionCounts => {
  const cached: CachedCounts = { ...counts, grace: state.grace, options: state.options }
  countsCache.set(state.connected, cached)
  return cached
}

/** Connected peers that count against `maxConnected` (all but unconditional ones and those on grace). */
export const countedConnections = (state: State): number => connectionCounts(state).counted

/** How many of `ids` are in `set`, walking the smaller of the two. */
const overlap = (ids: ReadonlySet<NodeId.NodeId>, set: ReadonlySet<NodeId.NodeId>): number => {
  let n = 0
  if (ids.size <= set.size) {
    for (const id of ids) if (set.has(id)) n++
  } else {
    for (const id of set) if (ids.has(id)) n++
  }
  return n
}

/** Dials in flight that count against the limits (all but those to unconditional peers). */
export const countedDials = (state: State): number => state.dialing.size - overlap(state.dialing, state.options.unconditionalPeers)

/** Dials in flight to peers that are not direction-exempt (neither unconditional nor persistent). */
const limitedDials = (state: State): number => {
  const { unconditionalPeers, persistentPeers } = state.options
  if (unconditionalPeers.size === 0 && persistentPeers.size === 0) return state.dialing.size
  let n = state.dialing.size - overlap(state.dialing, unconditionalPeers)
  for (const id of persistentPeers) if (state.dialing.has(id) && !unconditionalPeers.has(id)) n--
  return n
}

/** Peers in one direction that count against `maxIncomingPeers`/`maxOutgoingPeers` (outgoing includes dials). */
export const directionCount = (state: State, direction: "incoming" | "outgoing"): number => {
  const counts = connectionCounts(state)
  return direction === "incoming" ? counts.incomingLimited : counts.outgoingLimited + limitedDials(state)
}

/** The score of a known peer, or 0. */
export const scoreOf = (state: State, id: NodeId.NodeId): number => {
  const p = state.peers.get(id)
  return p === undefined ? 0 : PeerRecord.score(p)
}

/** What the shell must do after a transition. */
export interface Outcome<A = void> {
  readonly state: State
  readonly value: A
  /** Records to write (whole rows), in order. */
  readonly persist: ReadonlyArray<PeerRecord.PeerRecord>
  /** Rows to delete. */
  readonly remove: ReadonlyArray<NodeId.NodeId>
  /** Bans to write. */
  readonly persistBans: ReadonlyArray<Ban.Ban>
  /** Bans to delete, by key. */
  readonly removeBans: ReadonlyArray<string>
  /** Updates to publish, in order. */
  readonly updates: ReadonlyArray<PeerUpdate.PeerUpdate>
  readonly wakeDial: boolean
  readonly wakeEvict: boolean
}

/** The empty list outcomes share. */
const NONE: ReadonlyArray<never> = []

/**
 * A local, mutable working copy used inside one transition: collections are copied on first write,
 * so the input state is never touched. The large ones (peers, address owners, retry times) are
 * persistent maps, written in O(log n); the index follows the peers the transition touches.
 */
export class Draft {
  private peers: PersistentMap<NodeId.NodeId, PeerRecord.PeerRecord> | undefined
  private owners: PersistentMap<string, NodeId.NodeId> | undefined
  private sets: Partial<Record<"dialing" | "ready" | "evicting", PersistentSet<NodeId.NodeId>>> = {}
  /** Marked for eviction: a plain set, as its order is the order of eviction. */
  private evictSet: Set<NodeId.NodeId> | undefined
  private connectedMap: PersistentMap<NodeId.NodeId, Direction> | undefined
  private upgradingMap: Map<NodeId.NodeId, NodeId.NodeId> | undefined
  private graceMap: Map<NodeId.NodeId, number> | undefined
  private retry: PersistentMap<string, number> | undefined
  private banMap: Map<string, Ban.Ban> | undefined
  private ipMap: Map<NodeId.NodeId, string> | undefined
  private bySource: Map<NodeId.NodeId, number> | undefined
  private byGroup: Map<string, number> | undefined
  private strikeMap: Map<string, Strike> | undefined
  // What the outcome lists, made on first use: most transitions write, remove or publish nothing.
  private bansWritten: Map<string, Ban.Ban> | undefined
  private bansRemoved: Set<string> | undefined
  private persisted: Map<NodeId.NodeId, PeerRecord.PeerRecord> | undefined
  private removed: Set<NodeId.NodeId> | undefined
  private published: Array<PeerUpdate.PeerUpdate> | undefined
  /** Peers whose index entry may be stale: their record, dial mark, connection or retry times changed. */
  private readonly touched = new Set<NodeId.NodeId>()
  /** The connection counts of the working state, kept as it connects, disconnects and grants grace. */
  private counts: Counts | undefined
  /** The index as of the last {@link index} call (the base's until then). */
  private workingIndex: Index.Index | undefined
  private dial = false
  private evictFlag = false
  readonly base: State

  constructor(base: State) {
    this.base = base
  }

  /** The current state (cheap: shares unchanged collections; the base itself while nothing was written). */
  get state(): State {
    if (
      this.peers === undefined && this.owners === undefined && this.sets.dialing === undefined && this.sets.ready === undefined &&
      this.evictSet === undefined && this.sets.evicting === undefined && this.connectedMap === undefined && this.upgradingMap === undefined &&
      this.graceMap === undefined && this.retry === undefined && this.banMap === undefined && this.strikeMap === undefined &&
      this.ipMap === undefined && this.bySource === undefined && this.byGroup === undefined
    ) return this.base
    return {
      ...this.base,
      peers: this.peers ?? this.base.peers,
      owners: this.owners ?? this.base.owners,
      dialing: this.sets.dialing ?? this.base.dialing,
      ready: this.sets.ready ?? this.base.ready,
      evict: this.evictSet ?? this.base.evict,
      evicting: this.sets.evicting ?? this.base.evicting,
      connected: this.connectedMap ?? this.base.connected,
      upgrading: this.upgradingMap ?? this.base.upgrading,
      grace: this.graceMap ?? this.base.grace,
      retryAt: this.retry ?? this.base.retryAt,
      bans: this.banMap ?? this.base.bans,
      strikes: this.strikeMap ?? this.base.strikes,
      connectedIps: this.ipMap ?? this.base.connectedIps,
      gossipBySource: this.bySource ?? this.base.gossipBySource,
      gossipByGroup: this.byGroup ?? this.base.gossipByGroup
    }
  }

  /** The index of the current state (for decisions taken in the middle of a transition). */
  index(current?: State): Index.Index {
    const index = this.workingIndex ?? indexOf(this.base)
    this.workingIndex = this.touched.size === 0 ? index : Index.refresh(index, this.touched, current ?? this.state)
    this.touched.clear()
    return this.workingIndex
  }

  peer(id: NodeId.NodeId): PeerRecord.PeerRecord | undefined {
    return (this.peers ?? this.base.peers).get(id)
  }

  /** How many peers the working state knows. */
  peerCount(): number {
    return (this.peers ?? this.base.peers).size
  }

  /** Moves the gossip counts from the record `before` to `after` (either may be absent). */
  private countGossip(before: PeerRecord.PeerRecord | undefined, after: PeerRecord.PeerRecord | undefined): void {
    const from = before === undefined ? undefined : gossipOf(before)
    const to = after === undefined ? undefined : gossipOf(after)
    if (from?.source === to?.source && from?.group === to?.group) return
    const bump = <K>(m: Map<K, number>, k: K, by: number) => {
      const n = (m.get(k) ?? 0) + by
      if (n <= 0) m.delete(k)
      else m.set(k, n)
    }
    this.bySource ??= new Map(this.base.gossipBySource)
    this.byGroup ??= new Map(this.base.gossipByGroup)
    if (from !== undefined) {
      bump(this.bySource, from.source, -1)
      if (from.group !== undefined) bump(this.byGroup, from.group, -1)
    }
    if (to !== undefined) {
      bump(this.bySource, to.source, 1)
      if (to.group !== undefined) bump(this.byGroup, to.group, 1)
    }
  }

  private workingPeers(): PersistentMap<NodeId.NodeId, PeerRecord.PeerRecord> {
    return (this.peers ??= PersistentMap.from(this.base.peers))
  }

  private workingOwners(): PersistentMap<string, NodeId.NodeId> {
    return (this.owners ??= PersistentMap.from(this.base.owners))
  }

  private workingRetry(): PersistentMap<string, number> {
    return (this.retry ??= PersistentMap.from(this.base.retryAt))
  }

  /** Stores a record in memory and, unless `ephemeral`, queues it for the disk. */
  setPeer(p: PeerRecord.PeerRecord, ephemeral = false): void {
    const previous = this.peer(p.id)
    this.countGossip(previous, p)
    this.peers = this.workingPeers().with(p.id, p)
    this.touched.add(p.id)
    // Owners change only with the addresses; most writes (dial results, scores) keep them.
    if (previous === undefined || !sameAddresses(previous, p)) {
      let owners = this.workingOwners()
      for (const a of p.addresses) owners = owners.with(addressKey(a.address), p.id)
      this.owners = owners
    }
    if (!ephemeral) {
      ;(this.persisted ??= new Map()).set(p.id, p)
      this.removed?.delete(p.id)
    } else if (this.persisted?.has(p.id) === true) {
      this.persisted.set(p.id, p)
    }
  }

  deletePeer(id: NodeId.NodeId): void {
    const p = this.peer(id)
    if (p === undefined) return
    this.countGossip(p, undefined)
    this.peers = this.workingPeers().without(id)
    this.touched.add(id)
    let owners = this.workingOwners()
    for (const a of p.addresses) if (owners.get(addressKey(a.address)) === id) owners = owners.without(addressKey(a.address))
    this.owners = owners
    let retry = this.workingRetry()
    for (const a of p.addresses) retry = retry.without(retryKey(id, a.address))
    this.retry = retry
    this.persisted?.delete(id)
    ;(this.removed ??= new Set()).add(id)
  }

  add(name: "dialing" | "ready" | "evict" | "evicting", id: NodeId.NodeId): void {
    if (name === "evict") {
      ;(this.evictSet ??= new Set(this.base.evict)).add(id)
      return
    }
    this.sets[name] = (this.sets[name] ?? PersistentSet.from(this.base[name])).with(id)
    if (name === "dialing") this.touched.add(id)
  }

  delete(name: "dialing" | "ready" | "evict" | "evicting", id: NodeId.NodeId): void {
    if (name === "evict") {
      if ((this.evictSet ?? this.base.evict).has(id)) (this.evictSet ??= new Set(this.base.evict)).delete(id)
      return
    }
    if (!(this.sets[name] ?? this.base[name]).has(id)) return
    this.sets[name] = (this.sets[name] ?? PersistentSet.from(this.base[name])).without(id)
    if (name === "dialing") this.touched.add(id)
  }

  private workingCounts(): Counts {
    return (this.counts ??= { ...connectionCounts(this.base) })
  }

  /** Moves `id` in the connection counts from (connected as `before`, on grace or not) to (`after`, `graceAfter`). */
  private recount(id: NodeId.NodeId, before: Direction | undefined, graceBefore: boolean, after: Direction | undefined, graceAfter: boolean): void {
    const counts = this.workingCounts()
    if (before !== undefined) countConnection(counts, this.base.options, id, before, graceBefore, -1)
    if (after !== undefined) countConnection(counts, this.base.options, id, after, graceAfter, 1)
  }

  connect(id: NodeId.NodeId, direction: Direction, ip?: string): void {
    const onGrace = (this.graceMap ?? this.base.grace).has(id)
    this.recount(id, (this.connectedMap ?? this.base.connected).get(id), onGrace, direction, onGrace)
    this.connectedMap = (this.connectedMap ?? PersistentMap.from(this.base.connected)).with(id, direction)
    this.touched.add(id)
    if (ip !== undefined && ip !== "") {
      this.ipMap ??= new Map(this.base.connectedIps)
      this.ipMap.set(id, ip)
    }
  }

  disconnect(id: NodeId.NodeId): void {
    const direction = (this.connectedMap ?? this.base.connected).get(id)
    if (direction === undefined) return
    const onGrace = (this.graceMap ?? this.base.grace).has(id)
    this.recount(id, direction, onGrace, undefined, onGrace)
    this.connectedMap = (this.connectedMap ?? PersistentMap.from(this.base.connected)).without(id)
    this.touched.add(id)
    if ((this.ipMap ?? this.base.connectedIps).has(id)) {
      this.ipMap ??= new Map(this.base.connectedIps)
      this.ipMap.delete(id)
    }
  }

  setUpgrade(from: NodeId.NodeId, to: NodeId.NodeId): void {
    this.upgradingMap ??= new Map(this.base.upgrading)
    this.upgradingMap.set(from, to)
  }

  deleteUpgrade(from: NodeId.NodeId): void {
    if (!(this.upgradingMap ?? this.base.upgrading).has(from)) return
    this.upgradingMap ??= new Map(this.base.upgrading)
    this.upgradingMap.delete(from)
  }

  setGrace(id: NodeId.NodeId, until: number | undefined): void {
    const onGrace = (this.graceMap ?? this.base.grace).has(id)
    if (until === undefined && !onGrace) return
    const direction = (this.connectedMap ?? this.base.connected).get(id)
    if (direction !== undefined) this.recount(id, direction, onGrace, direction, until !== undefined)
    this.graceMap ??= new Map(this.base.grace)
    if (until === undefined) this.graceMap.delete(id)
    else this.graceMap.set(id, until)
  }

  /** Stores a ban (replacing its subject's) and, unless `loaded` (read from the disk), queues it for the disk. */
  setBan(key: string, ban: Ban.Ban, loaded = false): void {
    this.banMap ??= new Map(this.base.bans)
    this.banMap.set(key, ban)
    if (loaded) return
    ;(this.bansWritten ??= new Map()).set(key, ban)
    this.bansRemoved?.delete(key)
  }

  /** Drops a ban and queues its removal from the disk (also when only the disk holds it). */
  deleteBan(key: string): void {
    if ((this.banMap ?? this.base.bans).has(key)) {
      this.banMap ??= new Map(this.base.bans)
      this.banMap.delete(key)
    }
    this.bansWritten?.delete(key)
    ;(this.bansRemoved ??= new Set()).add(key)
  }

  setStrike(key: string, strike: Strike | undefined): void {
    if (strike === undefined && !(this.strikeMap ?? this.base.strikes).has(key)) return
    this.strikeMap ??= new Map(this.base.strikes)
    if (strike === undefined) this.strikeMap.delete(key)
    else this.strikeMap.set(key, strike)
  }

  /** Sets or clears the retry time of an address (`key` from {@link retryKey}). */
  setRetry(key: string, at: number | undefined): void {
    const retry = this.retry ?? this.base.retryAt
    if (at === undefined ? !retry.has(key) : retry.get(key) === at) return
    this.retry = at === undefined ? this.workingRetry().without(key) : this.workingRetry().with(key, at)
    this.touched.add(key.slice(0, key.indexOf("|")) as NodeId.NodeId)
  }

  publish(update: PeerUpdate.PeerUpdate): void {
    ;(this.published ??= []).push(update)
  }

  wakeDial(): void {
    this.dial = true
  }

  wakeEvict(): void {
    this.evictFlag = true
  }

  done<A>(value: A): Outcome<A> {
    const state = this.state
    if (this.counts !== undefined && state !== this.base) rememberCounts(state, this.counts)
    const base = state === this.base ? undefined : this.workingIndex ?? indexes.get(this.base)
    // A base with no index yet (made by hand) gets one, so its successors need not be built from scratch.
    if (state !== this.base) deriveIndex(state, base ?? indexOf(this.base), [...this.touched])
    return {
      state,
      value,
      persist: this.persisted === undefined ? NONE : [...this.persisted.values()],
      remove: this.removed === undefined ? NONE : [...this.removed],
      persistBans: this.bansWritten === undefined ? NONE : [...this.bansWritten.values()],
      removeBans: this.bansRemoved === undefined ? NONE : [...this.bansRemoved],
      updates: this.published ?? NONE,
      wakeDial: this.dial,
      wakeEvict: this.evictFlag
    }
  }
}

/** An outcome that changes nothing. */
export const unchanged = <A>(state: State, value: A): Outcome<A> => new Draft(state).done(value)

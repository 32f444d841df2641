/**
 * A property test of the pure core: random sequences of transitions over a small pool of peers,
 * under random limits, checking after every step that the state stays internally consistent and
 * that every limit, ban and exemption is honoured, that no transition touches its input, and that
 * the index kept from step to step equals one built from scratch while every decision it serves
 * (dial, wake-up, upgrade, eviction, advertise) equals the walk over every peer it replaces. Being
 * pure, it needs no fibers or clock: a run of 80 steps, checks included, takes a few milliseconds
 * (`PM_PURE_PROP_RUNS=20000` for a longer hunt).
 *
 * Not an invariant, by design (docs/ARCHITECTURE.md#lifecycle Accepted): a peer may be dialing and connected at once,
 * when it connects inbound while we dial it; the dial is then refused in `dialed`. So the check is
 * that such a peer is connected inbound.
 */
import { assert, describe, it } from "@effect/vitest"
import { Result } from "effect"
import * as fc from "fast-check"
import * as Ban from "../../../src/domain/Ban.ts"
import * as NodeAddress from "../../../src/domain/NodeAddress.ts"
import type * as NodeId from "../../../src/domain/NodeId.ts"
import * as PeerRecord from "../../../src/domain/PeerRecord.ts"
import * as Advertise from "../../../src/domain/peermanager/Advertise.ts"
import * as Bans from "../../../src/domain/peermanager/Bans.ts"
import * as Connections from "../../../src/domain/peermanager/Connections.ts"
import * as Dialing from "../../../src/domain/peermanager/Dialing.ts"
import * as Index from "../../../src/domain/peermanager/Index.ts"
import * as Peers from "../../../src/domain/peermanager/Peers.ts"
import * as State from "../../../src/domain/peermanager/State.ts"
import type { OptionsInput } from "../../../src/services/PeerManager.ts"
import { a, b, c, d, e, mem, self, stateWith, tcp } from "./fixtures.ts"

const pool = [a, b, c, d, e, self]
const addressesOf = (id: NodeId.NodeId) => [mem(id), tcp(id, "10.0.0.1"), tcp(id, "10.1.0.2")]
const ips = ["10.0.0.7", "10.1.0.7", undefined] as const
const networks = ["10.0.0.0/16", "10.1.0.7"] as const

type Step =
  | { readonly op: "add"; readonly peer: number; readonly address: number; readonly source: number | undefined }
  | { readonly op: "tryDialNext" | "tryEvictNext" }
  | { readonly op: "dialFailed" | "dialed"; readonly inFlight: boolean; readonly pick: number; readonly peer: number; readonly address: number; readonly ip: number; readonly jitter: number }
  | { readonly op: "accepted"; readonly peer: number; readonly ip: number }
  | { readonly op: "ready" | "inactivate"; readonly peer: number }
  | { readonly op: "disconnected"; readonly peer: number; readonly jitter: number }
  | { readonly op: "errored"; readonly peer: number; readonly fatal: boolean }
  | { readonly op: "report"; readonly peer: number; readonly good: boolean }
  | { readonly op: "ban" | "unban"; readonly node: boolean; readonly peer: number; readonly network: number; readonly ms: number }
  | { readonly op: "handshakeFailed"; readonly ip: number }
  | { readonly op: "advance"; readonly ms: number }

const peer = fc.nat({ max: pool.length - 1 })
const ip = fc.nat({ max: ips.length - 1 })
const jitter = fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true })
const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ op: fc.constant("add" as const), peer, address: fc.nat({ max: 2 }), source: fc.option(peer, { nil: undefined }) }) },
  { weight: 6, arbitrary: fc.constantFrom({ op: "tryDialNext" as const }, { op: "tryEvictNext" as const }) },
  { weight: 5, arbitrary: fc.record({ op: fc.constantFrom("dialFailed" as const, "dialed" as const), inFlight: fc.nat({ max: 5 }).map((n) => n > 0), pick: fc.nat(), peer, address: fc.nat({ max: 2 }), ip, jitter }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constant("accepted" as const), peer, ip }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constantFrom("ready" as const, "inactivate" as const), peer }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant("disconnected" as const), peer, jitter }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("errored" as const), peer, fatal: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("report" as const), peer, good: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constantFrom("ban" as const, "unban" as const), node: fc.boolean(), peer, network: fc.nat({ max: 1 }), ms: fc.constantFrom(50, 1000) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("handshakeFailed" as const), ip }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("advance" as const), ms: fc.constantFrom(1, 50, 100, 1000) }) }
)

const ids = fc.subarray([a, b, c, d, e], { maxLength: 2 })
const options: fc.Arbitrary<OptionsInput> = fc
  .record({
    maxConnected: fc.nat({ max: 4 }),
    maxConnectedUpgrade: fc.nat({ max: 2 }),
    extraPeers: fc.option(fc.nat({ max: 3 }), { nil: undefined }),
    outgoing: fc.nat({ max: 4 }),
    incomingPeers: fc.option(fc.nat({ max: 3 }), { nil: undefined }),
    outgoingPeers: fc.option(fc.nat({ max: 3 }), { nil: undefined }),
    persistent: ids,
    unconditional: ids,
    scores: fc.array(fc.tuple(fc.constantFrom(a, b, c, d, e), fc.integer({ min: -2, max: 3 })), { maxLength: 3 }),
    minRetryTime: fc.constantFrom(0, 100),
    retryTimeJitter: fc.constantFrom(0, 50),
    disconnectCooldownPeriod: fc.constantFrom(0, 50),
    maxGracePeers: fc.nat({ max: 2 }),
    minConnectionDuration: fc.constantFrom(0, 200),
    banAfterMisbehaviours: fc.constantFrom(0, 2),
    banAfterFailedHandshakes: fc.constantFrom(0, 2),
    maxBans: fc.integer({ min: 1, max: 4 }),
    maxAddressesPerPeer: fc.integer({ min: 1, max: 3 }),
    maxPeersPerSource: fc.nat({ max: 2 }),
    maxPeersPerGroup: fc.nat({ max: 2 })
  })
  .map((o) => ({
    maxConnected: o.maxConnected,
    maxConnectedUpgrade: o.maxConnectedUpgrade,
    maxPeers: o.maxConnected > 0 && o.extraPeers !== undefined ? o.maxConnected + o.maxConnectedUpgrade + o.extraPeers : 0,
    maxOutgoingConnections: o.maxConnected > 0 ? Math.min(o.outgoing, o.maxConnected) : o.outgoing % 3,
    ...(o.incomingPeers === undefined ? {} : { maxIncomingPeers: o.incomingPeers }),
    ...(o.outgoingPeers === undefined ? {} : { maxOutgoingPeers: o.outgoingPeers }),
    persistentPeers: o.maxConnected > 0 ? o.persistent.slice(0, o.maxConnected) : o.persistent,
    unconditionalPeers: o.unconditional,
    peerScores: Object.fromEntries(o.scores),
    minRetryTime: o.minRetryTime,
    retryTimeJitter: o.retryTimeJitter,
    disconnectCooldownPeriod: o.disconnectCooldownPeriod,
    maxGracePeers: o.maxGracePeers,
    gracePeriod: 100,
    minConnectionDuration: o.minConnectionDuration,
    banAfterMisbehaviours: o.banAfterMisbehaviours,
    banAfterFailedHandshakes: o.banAfterFailedHandshakes,
    misbehaviourWindow: 1000,
    misbehaviourBanDuration: 500,
    failedHandshakeBanDuration: 500,
    maxBans: o.maxBans,
    maxAddressesPerPeer: o.maxAddressesPerPeer,
    maxPeersPerSource: o.maxPeersPerSource,
    maxPeersPerGroup: o.maxPeersPerGroup
  }))

/** Everything in a state, as text: equal fingerprints mean equal states (used to catch mutation of an input). */
const fingerprint = (s: State.State): string =>
  JSON.stringify(Object.entries(s).filter(([k]) => k !== "options").map(([k, v]) => [k, v instanceof Map || v instanceof Set ? [...v] : v]))

const has = <A>(set: { has: (a: A) => boolean }, label: string, where: string) => (x: A) => assert.isTrue(set.has(x), `${where}: ${String(x)} is in ${label}`)

/** Every consistency rule of one state. */
const checkState = (s: State.State, now: number, where: string) => {
  const o = s.options
  for (const [label, ids] of [["ready", s.ready], ["evict", s.evict], ["evicting", s.evicting], ["grace", s.grace.keys()], ["connectedIps", s.connectedIps.keys()], ["upgrading", s.upgrading.keys()]] as const) {
    for (const id of ids) assert.isTrue(s.connected.has(id), `${where}: ${id} in ${label} but not connected`)
  }
  for (const to of s.upgrading.values()) has(s.dialing, "dialing (upgrade target)", where)(to)
  for (const id of s.dialing) {
    has(s.peers, "peers (dialing)", where)(id)
    if (s.connected.has(id)) assert.strictEqual(s.connected.get(id), "incoming", `${where}: ${id} dialing and connected outbound`)
  }
  for (const id of s.connected.keys()) has(s.peers, "peers (connected)", where)(id)
  assert.isFalse(s.peers.has(self) || s.connected.has(self) || s.dialing.has(self), `${where}: self is a peer`)

  // Limits.
  if (o.maxConnected > 0) assert.isAtMost(State.countedConnections(s), o.maxConnected + o.maxConnectedUpgrade, `${where}: too many connections`)
  if (o.maxIncomingPeers !== undefined) assert.isAtMost(State.directionCount(s, "incoming"), o.maxIncomingPeers, `${where}: too many inbound peers`)
  assert.strictEqual(Connections.isFull(s), o.maxConnected > 0 && State.countedConnections(s) >= o.maxConnected, `${where}: isFull`)
  assert.isAtMost(s.grace.size, o.maxGracePeers, `${where}: grace slots`)

  // Bans: bounded, and every connected peer they cover is on its way out.
  assert.isAtMost(s.bans.size, o.maxBans, `${where}: ban table`)
  assert.isAtMost(s.strikes.size, o.maxBans, `${where}: strike records`)
  for (const [key, ban] of s.bans) assert.strictEqual(Ban.key(ban.subject), key, where)
  for (const id of s.connected.keys()) {
    const ip = s.connectedIps.get(id)
    if (Bans.nodeBan(s, id, now) !== undefined || (ip !== undefined && Bans.ipBan(s, ip, now) !== undefined)) {
      assert.isTrue(s.evict.has(id) || s.evicting.has(id), `${where}: banned ${id} stays connected unmarked`)
    }
  }

  // Indexes agree with the records.
  const bySource = new Map<string, number>()
  const byGroup = new Map<string, number>()
  for (const p of s.peers.values()) {
    for (const x of p.addresses) assert.strictEqual(s.owners.get(State.addressKey(x.address)), p.id, `${where}: owner of ${NodeAddress.format(x.address)}`)
    if (p.source !== undefined && !p.persistent && !PeerRecord.reached(p)) {
      bySource.set(p.source, (bySource.get(p.source) ?? 0) + 1)
      const group = p.addresses[0] && State.addressGroup(p.addresses[0].address)
      if (group !== undefined) byGroup.set(group, (byGroup.get(group) ?? 0) + 1)
    }
    const score = PeerRecord.score(p)
    const fixed = o.peerScores.get(p.id) ?? 0
    assert.strictEqual(p.persistent, o.persistentPeers.has(p.id), where)
    if (fixed > 0) assert.strictEqual(score, fixed, where)
    else if (p.persistent) assert.strictEqual(score, 32_767, where)
    else assert.isTrue(score >= -32_768 && score <= 32_766, `${where}: score ${score}`)
  }
  assert.deepStrictEqual(new Map(s.gossipBySource), bySource, `${where}: gossip per source`)
  assert.deepStrictEqual(new Map(s.gossipByGroup), byGroup, `${where}: gossip per group`)
  const addressKeys = new Set([...s.peers.values()].flatMap((p) => p.addresses.map((x) => State.retryKey(p.id, x.address))))
  for (const key of s.retryAt.keys()) has(addressKeys, "a known address (retryAt)", where)(key)
}

// -------------------------------------------------------------------------------------------
// The indexed decisions against the walks over every peer they replace
// -------------------------------------------------------------------------------------------

/** Peers best first, sorted here rather than read from the index. */
const refRanked = (s: State.State): Array<PeerRecord.PeerRecord> =>
  [...s.peers.values()].sort((x, y) => PeerRecord.score(y) - PeerRecord.score(x) || (x.id < y.id ? -1 : x.id > y.id ? 1 : 0))

const refFindUpgradeCandidate = (s: State.State, id: NodeId.NodeId, score: number): NodeId.NodeId | undefined => {
  for (const [from, to] of s.upgrading) if (to === id) return from
  const list = refRanked(s)
  for (let i = list.length - 1; i >= 0; i--) {
    const candidate = list[i]!
    if (candidate.id === id) continue
    if (PeerRecord.score(candidate) >= score) return undefined
    if (!s.connected.has(candidate.id) || s.evict.has(candidate.id) || s.evicting.has(candidate.id) || s.upgrading.has(candidate.id)) continue
    if (State.isUncounted(s, candidate.id)) continue
    return candidate.id
  }
  return undefined
}

/** The peers the limits let us dial, best first (`Dialing`'s pool, as a list). */
const refPool = (s: State.State): Array<PeerRecord.PeerRecord> => {
  const o = s.options
  let general = true
  if (o.maxConnected > 0 && State.countedConnections(s) + State.countedDials(s) >= o.maxConnected + o.maxConnectedUpgrade) general = false
  if (o.maxOutgoingConnections > 0) {
    const outgoing = [...s.connected].filter(([x, dir]) => dir === "outgoing" && !State.isUnconditional(s, x)).length
    if (outgoing + State.countedDials(s) >= o.maxOutgoingConnections) general = false
  }
  const ordinary = o.maxOutgoingPeers === undefined || State.directionCount(s, "outgoing") < o.maxOutgoingPeers
  return refRanked(s).filter((p) => (general && ordinary) || State.isUnconditional(s, p.id) || (general && State.isDirectionExempt(s, p.id)))
}

const refTryDialNext = (s: State.State, now: number): { readonly address: string | undefined; readonly upgrade: NodeId.NodeId | undefined } => {
  const o = s.options
  for (const peer of refPool(s)) {
    if (s.dialing.has(peer.id) || s.connected.has(peer.id) || peer.inactive) continue
    if (peer.lastDisconnected !== undefined && now - peer.lastDisconnected < o.disconnectCooldownPeriod) continue
    if (Bans.nodeBan(s, peer.id, now) !== undefined) continue
    for (const info of peer.addresses) {
      if (Dialing.retryTime(s, peer, info) > now) continue
      if (Bans.ipBan(s, info.address.hostname, now) !== undefined) continue
      const owner = s.owners.get(State.addressKey(info.address))
      if (owner !== undefined && owner !== peer.id && (s.connected.has(owner) || s.dialing.has(owner))) continue
      if (!State.isUnconditional(s, peer.id) && o.maxConnected > 0 && State.countedConnections(s) >= o.maxConnected) {
        const candidate = refFindUpgradeCandidate(s, peer.id, PeerRecord.score(peer))
        if (candidate === undefined) return { address: undefined, upgrade: undefined }
        return { address: NodeAddress.format(info.address), upgrade: candidate }
      }
      return { address: NodeAddress.format(info.address), upgrade: undefined }
    }
  }
  return { address: undefined, upgrade: undefined }
}

const refNextWakeAt = (s: State.State, now: number): number | undefined => {
  let earliest = Number.POSITIVE_INFINITY
  for (const peer of refPool(s)) {
    if (s.dialing.has(peer.id) || s.connected.has(peer.id) || peer.inactive) continue
    const cooldownEnd = peer.lastDisconnected === undefined ? 0 : peer.lastDisconnected + s.options.disconnectCooldownPeriod
    for (const info of peer.addresses) {
      const at = Math.max(Dialing.retryTime(s, peer, info), cooldownEnd)
      if (at > now && at < earliest) earliest = at
    }
  }
  return Number.isFinite(earliest) ? earliest : undefined
}

const refAdvertise = (s: State.State, requester: NodeId.NodeId, limit: number, random: () => number, now: number): Array<string> => {
  const out: Array<NodeAddress.NodeAddress> = []
  if (limit <= 0) return []
  const candidates: Array<{ address: NodeAddress.NodeAddress; score: number }> = []
  for (const peer of refRanked(s)) {
    if (peer.id === requester || peer.inactive || s.options.privatePeers.has(peer.id) || Bans.nodeBan(s, peer.id, now) !== undefined) continue
    for (const x of peer.addresses) {
      if (x.address.nodeId === requester || s.options.privatePeers.has(x.address.nodeId as NodeId.NodeId)) continue
      if (Bans.ipBan(s, x.address.hostname, now) !== undefined) continue
      candidates.push({ address: x.address, score: PeerRecord.score(peer) })
    }
  }
  if (candidates.length <= limit) return candidates.map((c) => NodeAddress.format(c.address))
  const best = candidates.reduce((m, c) => Math.max(m, c.score), Number.NEGATIVE_INFINITY)
  const weights = candidates.map((c) => 4 ** Math.max(c.score - best, -30))
  let total = weights.reduce((x, y) => x + y, 0)
  for (let picked = 0; picked < limit; picked++) {
    let r = random() * total
    let i = -1
    for (let j = 0; j < weights.length; j++) {
      const w = weights[j]!
      if (w === 0) continue
      i = j
      if (r < w) break
      r -= w
    }
    if (i < 0) break
    out.push(candidates[i]!.address)
    total -= weights[i]!
    weights[i] = 0
  }
  return out.map(NodeAddress.format)
}

const refTryEvictNext = (s: State.State, now: number): NodeId.NodeId | undefined => {
  for (const [id, until] of s.grace) if (until <= now && !s.evicting.has(id)) return id
  const o = s.options
  if (o.maxConnected === 0 || State.countedConnections(s) - s.evicting.size <= o.maxConnected) return undefined
  const list = refRanked(s)
  for (let i = list.length - 1; i >= 0; i--) {
    const id = list[i]!.id
    if (s.connected.has(id) && !s.evicting.has(id) && !State.isUnconditional(s, id) && !s.grace.has(id)) return id
  }
  return undefined
}

/** A seeded generator of numbers in [0, 1). */
const lcg = (seed: number) => () => (seed = (Math.imul(seed, 48271) >>> 0) % 2147483647) / 2147483647

/** The index kept step by step equals one built from scratch, and each decision it serves equals the walk it replaces. */
const checkIndex = (s: State.State, now: number, where: string) => {
  const countsOf = (c: State.ConnectionCounts) => [c.counted, c.outgoing, c.incomingLimited, c.outgoingLimited, c.incomingNotOnGrace, c.outgoingNotOnGrace]
  assert.deepStrictEqual(
    countsOf(State.connectionCounts(s)),
    countsOf(State.connectionCounts({ ...s, connected: new Map(s.connected) })),
    `${where}: connection counts kept step by step`
  )
  const fresh = Index.build(s)
  const kept = State.indexOf(s)
  const entries = (ix: Index.Index) => JSON.stringify([...ix.entries].sort(([x], [y]) => (x < y ? -1 : 1)))
  assert.strictEqual(entries(kept), entries(fresh), `${where}: the index kept step by step`)
  assert.strictEqual(kept.foreign, fresh.foreign, `${where}: foreign addresses`)
  const built = Index.records(fresh).map((p) => p.id)
  assert.deepStrictEqual(Index.records(kept).map((p) => p.id), built, `${where}: the ranking kept step by step`)
  assert.deepStrictEqual(built, refRanked(s).map((p) => p.id), `${where}: the ranking`)
  for (const at of [now, now + 49, now + 100, now + 1000]) {
    const dial = Dialing.tryDialNext(s, at)
    const ref = refTryDialNext(s, at)
    assert.deepStrictEqual(
      [dial.value && NodeAddress.format(dial.value), dial.value === undefined ? undefined : [...dial.state.upgrading].find(([, to]) => to === dial.value!.nodeId)?.[0]],
      [ref.address, ref.address === undefined ? undefined : ref.upgrade],
      `${where}: tryDialNext at ${at}`
    )
    assert.strictEqual(Dialing.nextWakeAt(s, at), refNextWakeAt(s, at), `${where}: nextWakeAt at ${at}`)
  }
  for (const requester of [a, c]) {
    for (const limit of [1, 2, 100]) {
      assert.deepStrictEqual(
        Advertise.advertise(s, requester, limit, lcg(limit + 7), now).map(NodeAddress.format),
        refAdvertise(s, requester, limit, lcg(limit + 7), now),
        `${where}: advertise to ${requester} (limit ${limit})`
      )
    }
  }
  if (s.options.maxConnected > 1) {
    const tight = { ...s, options: { ...s.options, maxConnected: s.options.maxConnected - 1 } }
    assert.strictEqual(Connections.tryEvictNext({ ...tight, evict: new Set() }, now).value, refTryEvictNext(tight, now), `${where}: tryEvictNext over capacity`)
  }
  if (s.peers.size > 2) {
    // Pruning to fewer peers than the state holds deletes what the walk from the worst would.
    const tight = { ...s, options: { ...s.options, maxPeers: s.peers.size - 2 } }
    const draft = new State.Draft(tight)
    Peers.prune(draft)
    const expected = new Set<NodeId.NodeId>()
    const list = refRanked(s)
    for (const unprovenOnly of [true, false]) {
      for (let i = list.length - 1; i >= 0 && s.peers.size - expected.size > tight.options.maxPeers; i--) {
        const p = list[i]!
        if (expected.has(p.id) || p.persistent || s.dialing.has(p.id) || s.connected.has(p.id)) continue
        if (unprovenOnly && (PeerRecord.reached(p) || PeerRecord.score(p) > 0)) continue
        expected.add(p.id)
      }
    }
    assert.deepStrictEqual(new Set(draft.done(undefined).remove), expected, `${where}: prune`)
  }
  for (const id of pool) {
    const score = State.scoreOf(s, id) + 1
    assert.strictEqual(Dialing.findUpgradeCandidate(s, id, score), refFindUpgradeCandidate(s, id, score), `${where}: findUpgradeCandidate for ${id}`)
  }
}

/** What the shell will write agrees with the state it will commit. */
const checkOutcome = (out: State.Outcome<unknown>, where: string) => {
  for (const p of out.persist) assert.strictEqual(out.state.peers.get(p.id), p, `${where}: persisted ${p.id} differs from the state`)
  for (const id of out.remove) assert.isFalse(out.state.peers.has(id), `${where}: removed ${id} is still a peer`)
  for (const ban of out.persistBans) assert.strictEqual(out.state.bans.get(Ban.key(ban.subject)), ban, `${where}: persisted ban`)
  for (const key of out.removeBans) assert.isFalse(out.state.bans.has(key), `${where}: removed ban ${key} still in force`)
}

const run = (input: OptionsInput, steps: ReadonlyArray<Step>) => {
  let state = stateWith(input)
  const o = state.options
  let now = 1000
  const inFlight: Array<NodeAddress.NodeAddress> = []
  const up = new Set<NodeId.NodeId>()
  for (const [i, s] of steps.entries()) {
    const where = `step ${i} ${JSON.stringify(s)}`
    const before = state
    const print = fingerprint(before)
    const id = "peer" in s ? pool[s.peer]! : undefined
    let out: State.Outcome<unknown> | undefined
    switch (s.op) {
      case "add": {
        const added = Peers.add(before, addressesOf(id!)[s.address]!, now, s.source === undefined ? undefined : pool[s.source])
        assert.strictEqual(Result.isFailure(added), id === self, where)
        if (Result.isSuccess(added)) out = added.success
        break
      }
      case "tryDialNext": {
        const dial = Dialing.tryDialNext(before, now)
        out = dial
        const got = dial.value
        if (got === undefined) break
        const gid = got.nodeId as NodeId.NodeId
        const p = before.peers.get(gid)
        assert.isDefined(p, `${where}: dispensed an unknown peer`)
        assert.isFalse(before.connected.has(gid) || before.dialing.has(gid) || p!.inactive, `${where}: dispensed ${gid} connected, dialing or inactive`)
        assert.isUndefined(Bans.nodeBan(before, gid, now), `${where}: dispensed a banned peer`)
        assert.isUndefined(Bans.ipBan(before, got.hostname, now), `${where}: dispensed a banned address`)
        const info = PeerRecord.findAddress(p!, got)
        assert.isTrue(info !== undefined && Dialing.retryTime(before, p!, info) <= now, `${where}: dispensed a frozen address`)
        assert.isFalse(p!.lastDisconnected !== undefined && now - p!.lastDisconnected < o.disconnectCooldownPeriod, `${where}: dispensed a peer in cooldown`)
        if (!State.isUnconditional(before, gid)) {
          if (o.maxConnected > 0) assert.isBelow(State.countedConnections(before) + State.countedDials(before), o.maxConnected + o.maxConnectedUpgrade, where)
          if (o.maxOutgoingConnections > 0) {
            const outgoing = [...before.connected].filter(([x, dir]) => dir === "outgoing" && !State.isUnconditional(before, x)).length
            assert.isBelow(outgoing + State.countedDials(before), o.maxOutgoingConnections, where)
          }
          if (o.maxOutgoingPeers !== undefined && !State.isDirectionExempt(before, gid)) assert.isBelow(State.directionCount(before, "outgoing"), o.maxOutgoingPeers, where)
        }
        inFlight.push(got)
        break
      }
      case "dialFailed":
      case "dialed": {
        const useInFlight = s.inFlight && inFlight.length > 0
        const target = useInFlight ? inFlight.splice(s.pick % inFlight.length, 1)[0]! : addressesOf(id!)[s.address]!
        for (let k = inFlight.length - 1; k >= 0; k--) if (inFlight[k]!.nodeId === target.nodeId) inFlight.splice(k, 1)
        out = s.op === "dialFailed" ? Dialing.dialFailed(before, target, now, s.jitter) : Dialing.dialed(before, target, now, ips[s.ip])
        if (s.op === "dialed" && out.value === undefined) assert.strictEqual(out.state.connected.get(target.nodeId as NodeId.NodeId), "outgoing", where)
        assert.isFalse(out.state.dialing.has(target.nodeId as NodeId.NodeId), `${where}: still dialing`)
        break
      }
      case "accepted":
        out = Connections.accepted(before, id!, now, ips[s.ip])
        if (out.value === undefined) assert.strictEqual(out.state.connected.get(id!), "incoming", where)
        else assert.strictEqual(out.state.connected.get(id!), before.connected.get(id!), `${where}: a refusal changed the connection`)
        break
      case "ready":
        out = Connections.ready(before, id!, [1])
        break
      case "inactivate":
        out = Connections.inactivate(before, id!)
        break
      case "disconnected":
        out = Connections.disconnected(before, id!, now, s.jitter)
        assert.isFalse(out.state.connected.has(id!), where)
        break
      case "errored":
        out = Connections.errored(before, id!, s.fatal, now)
        break
      case "report":
        out = Connections.report(before, id!, s.good ? "good" : "bad")
        break
      case "ban": {
        const subject = s.node ? Ban.node(id!) : Result.getOrThrow(Ban.parseSubject(networks[s.network]!))
        out = Bans.ban(before, { subject, since: now, until: now + s.ms, reason: "property" }, now)
        break
      }
      case "unban":
        out = Bans.unban(before, s.node ? Ban.node(id!) : Result.getOrThrow(Ban.parseSubject(networks[s.network]!)), now)
        break
      case "handshakeFailed":
        out = Connections.handshakeFailed(before, ips[s.ip] ?? "", now)
        break
      case "tryEvictNext": {
        const evict = Connections.tryEvictNext(before, now)
        out = evict
        if (evict.value !== undefined) {
          assert.isTrue(before.connected.has(evict.value) && !before.evicting.has(evict.value), `${where}: evicting ${evict.value} again or unconnected`)
          assert.isTrue(evict.state.evicting.has(evict.value), where)
        }
        break
      }
      case "advance":
        now += s.ms
        break
    }
    assert.strictEqual(fingerprint(before), print, `${where}: the transition changed its input state`)
    if (out === undefined) continue
    checkOutcome(out, where)
    state = out.state
    for (const u of out.updates) {
      assert.strictEqual(u.status === "up", !up.has(u.nodeId), `${where}: ${u.status} of ${u.nodeId} out of turn`)
      if (u.status === "up") up.add(u.nodeId)
      else up.delete(u.nodeId)
    }
    assert.deepStrictEqual(new Set(state.ready), up, `${where}: ready peers vs published updates`)
    // Pruning runs when an add stores an address (kept, or pruned straight away).
    if (s.op === "add" && o.maxPeers > 0 && (out.value === true || out.remove.length > 0)) {
      const exempt = [...state.peers.values()].filter((p) => p.persistent || state.connected.has(p.id) || state.dialing.has(p.id)).length
      assert.isAtMost(state.peers.size, Math.max(o.maxPeers, exempt), `${where}: pruning left too many peers`)
    }
    checkState(state, now, where)
    checkIndex(state, now, where)
  }
}

describe("PeerManager pure core properties", () => {
  it("random transition sequences keep the state consistent and every limit and ban honoured", { timeout: 120_000 }, () => {
    fc.assert(fc.property(options, fc.array(step, { maxLength: 80, size: "max" }), (input, steps) => run(input, steps)), {
      numRuns: Number(process.env["PM_PURE_PROP_RUNS"] ?? 500)
    })
  })
})

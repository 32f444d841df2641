/**
 * The known-peer set as plain functions (docs/ARCHITECTURE.md#lifecycle Add, §3.6, §8.2–8.3): adding addresses, gossip
 * bounds, loading stored peers and the order in which a full store is pruned.
 */
import { assert, describe, it } from "@effect/vitest"
import { Result } from "effect"
import * as Ban from "../../../src/domain/Ban.ts"
import * as NodeAddress from "../../../src/domain/NodeAddress.ts"
import type * as NodeId from "../../../src/domain/NodeId.ts"
import * as PeerRecord from "../../../src/domain/PeerRecord.ts"
import * as Bans from "../../../src/domain/peermanager/Bans.ts"
import * as Connections from "../../../src/domain/peermanager/Connections.ts"
import * as Dialing from "../../../src/domain/peermanager/Dialing.ts"
import * as Peers from "../../../src/domain/peermanager/Peers.ts"
import * as State from "../../../src/domain/peermanager/State.ts"
import type { OptionsInput } from "../../../src/services/PeerManager.ts"
import { a, admitAccepted, admitDialed, b, c, connectOut, d, dispense, e, letters, mem, self, stateWith, tcp, withAddresses } from "./fixtures.ts"

const ban = (state: State.State, subject: string) =>
  Bans.ban(state, { subject: Result.getOrThrow(Ban.parseSubject(subject)), since: 0, until: 3_600_000, reason: "test" }, 0).state

/** Adds gossip: each address learned from `source`. */
const gossip = (state: State.State, source: NodeId.NodeId, addresses: ReadonlyArray<NodeAddress.NodeAddress>) =>
  addresses.reduce((s, address) => Result.getOrThrow(Peers.add(s, address, 0, source)).state, state)

interface AddCase {
  readonly name: string
  readonly options?: OptionsInput
  readonly setup?: (s: State.State) => State.State
  readonly address: NodeAddress.NodeAddress
  readonly source?: NodeId.NodeId
  /** `true`/`false` as `add` returns it, or `refused` for an `AddressRefusal`. */
  readonly expected: boolean | "refused"
}

const addCases: ReadonlyArray<AddCase> = [
  { name: "keeps a new peer's address", address: mem(a), expected: true },
  { name: "keeps a known peer's second address (27)", setup: (s) => withAddresses(s, [mem(a)]), address: tcp(a), expected: true },
  { name: "ignores an address it already knows (27)", setup: (s) => withAddresses(s, [mem(a), tcp(a)]), address: mem(a), expected: false },
  { name: "refuses an invalid address (29)", address: NodeAddress.make({ path: "foo" }), expected: "refused" },
  { name: "refuses a memory address without a node ID (29)", address: NodeAddress.make({ protocol: "memory" }), expected: "refused" },
  { name: "refuses our own address (29, 48)", address: mem(self), expected: "refused" },
  { name: "ignores a new address of an inactive peer (30)", setup: (s) => Connections.inactivate(withAddresses(s, [mem(a)]), a).state, address: tcp(a), expected: false },
  { name: "ignores an address beyond maxAddressesPerPeer", options: { maxAddressesPerPeer: 2 }, setup: (s) => withAddresses(s, [mem(a), tcp(a)]), address: tcp(a, "10.0.0.1"), expected: false },
  { name: "ignores a banned peer's address", setup: (s) => ban(s, a), address: mem(a), expected: false },
  { name: "ignores an address inside a banned network", setup: (s) => ban(s, "10.0.0.0/8"), address: tcp(a, "10.1.1.1"), expected: false },
  { name: "returns false when the new peer ranks lowest of a full store and is pruned at once", options: { maxPeers: 2, maxConnected: 1, peerScores: { [a]: 2, [b]: 1 } }, setup: (s) => withAddresses(s, [mem(a), mem(b)]), address: mem(c), expected: false },
  { name: "returns true when the new peer displaces the worst of a full store", options: { maxPeers: 2, maxConnected: 1, peerScores: { [c]: 5 } }, setup: (s) => withAddresses(s, [mem(a), mem(b)]), address: mem(c), expected: true },
  { name: "gossip never adds to a peer we reached (tendermint#1581)", setup: (s) => connectOut(s, a), address: tcp(a, "6.6.6.6"), source: b, expected: false },
  { name: "the peer's own word (no source) may add to a reached peer", setup: (s) => connectOut(s, a), address: tcp(a, "10.0.0.2"), expected: true },
  { name: "gossip may add to a known peer never reached", setup: (s) => withAddresses(s, [tcp(a, "10.0.0.1")]), address: tcp(a, "10.0.0.4"), source: b, expected: true },
  { name: "maxPeersPerSource bounds what one source teaches", options: { maxPeersPerSource: 1 }, setup: (s) => gossip(s, a, [mem(b)]), address: mem(c), source: a, expected: false },
  { name: "maxPeersPerSource does not bound another source", options: { maxPeersPerSource: 1 }, setup: (s) => gossip(s, a, [mem(b)]), address: mem(c), source: d, expected: true },
  { name: "a source announcing its own address is not gossip", options: { maxPeersPerSource: 1 }, setup: (s) => gossip(s, a, [mem(b)]), address: mem(a), source: a, expected: true },
  { name: "maxPeersPerSource 0 is no limit", options: { maxPeersPerSource: 0 }, setup: (s) => gossip(s, a, [mem(b), mem(c)]), address: mem(d), source: a, expected: true },
  { name: "maxPeersPerGroup bounds one IPv4 /16", options: { maxPeersPerGroup: 1 }, setup: (s) => gossip(s, a, [tcp(b, "10.1.0.1")]), address: tcp(c, "10.1.255.9"), source: d, expected: false },
  { name: "another IPv4 /16 is another group", options: { maxPeersPerGroup: 1 }, setup: (s) => gossip(s, a, [tcp(b, "10.1.0.1")]), address: tcp(c, "10.2.0.1"), source: d, expected: true },
  { name: "maxPeersPerGroup bounds one IPv6 /32", options: { maxPeersPerGroup: 1 }, setup: (s) => gossip(s, a, [tcp(b, "[2001:db8:1::1]")]), address: tcp(c, "[2001:db8:ffff::9]"), source: d, expected: false },
  { name: "a DNS name is a group of its own", options: { maxPeersPerGroup: 1 }, setup: (s) => gossip(s, a, [tcp(b, "example.com")]), address: tcp(c, "example.org"), source: d, expected: true },
  { name: "memory addresses belong to no group", options: { maxPeersPerGroup: 1 }, setup: (s) => gossip(s, a, [mem(b)]), address: mem(c), source: d, expected: true },
  { name: "group limits do not apply to addresses we were told directly", options: { maxPeersPerGroup: 1 }, setup: (s) => gossip(s, a, [tcp(b, "10.1.0.1")]), address: tcp(c, "10.1.0.2"), expected: true }
]

describe("Peers.add", () => {
  for (const t of addCases) {
    it(t.name, () => {
      const before = (t.setup ?? ((s) => s))(stateWith(t.options))
      const out = Peers.add(before, t.address, 0, t.source)
      if (t.expected === "refused") {
        assert.isTrue(Result.isFailure(out))
        assert.strictEqual(Result.isFailure(out) ? out.failure.address : "", NodeAddress.format(t.address))
        return
      }
      const outcome = Result.getOrThrow(out)
      assert.strictEqual(outcome.value, t.expected)
      assert.strictEqual(outcome.wakeDial, t.expected, "only a kept address wakes the dialer")
      const id = t.address.nodeId as NodeId.NodeId
      const addresses = (st: State.State) => st.peers.get(id)?.addresses.map((x) => NodeAddress.format(x.address)) ?? []
      if (t.expected) {
        assert.deepStrictEqual(addresses(outcome.state), [...addresses(before), NodeAddress.format(t.address)])
        assert.include(outcome.persist.map((p) => p.id), id)
      } else {
        assert.deepStrictEqual(addresses(outcome.state), addresses(before))
        assert.notInclude(outcome.persist.map((p) => p.id), id)
      }
    })
  }

  it("a new peer gets its configured persistence and fixed score", () => {
    const state = withAddresses(stateWith({ persistentPeers: [a], peerScores: { [b]: 7 } }), [mem(a), mem(b), mem(c)])
    assert.deepStrictEqual([a, b, c].map((id) => [state.peers.get(id)!.persistent, State.scoreOf(state, id)]), [[true, 32_767], [false, 7], [false, 0]])
  })

  it("remembers the source of a gossiped peer and counts it per source and group until it is reached", () => {
    let state = gossip(stateWith(), a, [tcp(b, "10.1.0.1"), tcp(c, "10.1.0.2")])
    assert.strictEqual(state.peers.get(b)!.source, a)
    assert.deepStrictEqual([state.gossipBySource.get(a), state.gossipByGroup.get(State.addressGroup(tcp(b, "10.1.0.1"))!)], [2, 2])
    state = admitDialed(dispense(state, tcp(b, "10.1.0.1")), tcp(b, "10.1.0.1"))
    assert.strictEqual(state.gossipBySource.get(a), 1, "reached: no longer counted")
    state = admitAccepted(state, c)
    assert.deepStrictEqual([state.gossipBySource.size, state.gossipByGroup.size], [0, 0])
  })

  it("a persistent peer is never counted as gossip", () => {
    const state = gossip(stateWith({ persistentPeers: [b], maxPeersPerSource: 1 }), a, [mem(b)])
    assert.strictEqual(state.gossipBySource.size, 0)
    assert.isTrue(Result.getOrThrow(Peers.add(state, mem(c), 0, a)).value)
  })
})

describe("pruning a full store", () => {
  it("adding a persistent peer prunes the lowest-scored one, and says so (28)", () => {
    const state = withAddresses(stateWith({ persistentPeers: [a, c], maxPeers: 2, maxConnected: 2 }), [mem(a), tcp(a), mem(b)])
    const out = Result.getOrThrow(Peers.add(state, mem(c)))
    assert.strictEqual(letters(out.state.peers.keys()), "ac")
    assert.deepStrictEqual(out.remove, [b])
    assert.isFalse(out.state.owners.has(State.addressKey(mem(b))))
  })

  it("prunes unproven peers first, even when a reached one ranks lower", () => {
    let state = connectOut(stateWith({ maxPeers: 3, maxConnected: 1 }), a)
    state = Connections.disconnected(state, a, 1).state
    for (let i = 0; i < 3; i++) state = Connections.report(state, a, "bad").state // reached, score -3
    state = withAddresses(state, [mem(b), mem(c), mem(d)])
    assert.strictEqual(letters(state.peers.keys()), "abc")
  })

  it("an unreached peer that scores above 0 survives the unproven pass", () => {
    let state = withAddresses(stateWith({ maxPeers: 2, maxConnected: 1 }), [mem(e)])
    state = Connections.report(state, e, "good").state // never reached, score 1
    state = Connections.report(withAddresses(state, [mem(a)]), a, "bad").state
    state = withAddresses(state, [mem(b)])
    assert.strictEqual(letters(state.peers.keys()), "be")
  })

  it("when only proven peers are left, prunes the worst-ranked of them", () => {
    let state = stateWith({ maxPeers: 2, maxConnected: 1, peerScores: { [b]: 2, [c]: 3 } })
    for (const id of [a, b]) state = Connections.disconnected(connectOut(state, id), id, 1).state
    state = withAddresses(state, [mem(c)])
    assert.strictEqual(letters(state.peers.keys()), "bc")
  })

  it("a newcomer ranking lowest of a full store is pruned at once; a better one displaces the worst", () => {
    const lowest = Result.getOrThrow(Peers.add(withAddresses(stateWith({ maxPeers: 2, maxConnected: 1, peerScores: { [a]: 2, [b]: 1 } }), [mem(a), mem(b)]), mem(c)))
    assert.deepStrictEqual([lowest.value, letters(lowest.state.peers.keys()), lowest.persist, lowest.remove], [false, "ab", [], [c]])
    const better = Result.getOrThrow(Peers.add(withAddresses(stateWith({ maxPeers: 2, maxConnected: 1, peerScores: { [c]: 5 } }), [mem(a), mem(b)]), mem(c)))
    assert.deepStrictEqual([better.value, State.ranked(better.state).map((p) => p.id), better.remove], [true, [c, a], [b]])
  })

  it("never prunes a persistent, dialing or connected peer: the newcomer goes instead", () => {
    let state = stateWith({ maxPeers: 2, maxConnected: 1, maxConnectedUpgrade: 1, peerScores: { [b]: 1, [c]: 3, [d]: 4 } })
    state = dispense(withAddresses(connectOut(state, a), [mem(b)]), mem(b)) // a connected, b dialing as its upgrade
    const refused = Result.getOrThrow(Peers.add(state, mem(c)))
    assert.deepStrictEqual([refused.value, letters(refused.state.peers.keys())], [false, "ab"])
    // Once b's dial has failed, b may go to make room for a better peer.
    const displaced = Result.getOrThrow(Peers.add(Dialing.dialFailed(state, mem(b), 0, 0).state, mem(d)))
    assert.deepStrictEqual([displaced.value, letters(displaced.state.peers.keys())], [true, "ad"])
    const persistent = withAddresses(stateWith({ maxPeers: 1, maxConnected: 1, persistentPeers: [a] }), [mem(a)])
    assert.isFalse(Result.getOrThrow(Peers.add(persistent, mem(b))).value)
  })
})

describe("Peers.load", () => {
  const row = (id: NodeId.NodeId, fields: Partial<PeerRecord.PeerRecord> = {}) => PeerRecord.empty(id, { addresses: [PeerRecord.addressInfo(mem(id))], ...fields })

  it("drops our own ID from the store (26)", () => {
    const out = Peers.load(stateWith({}, a), [row(a), row(b)])
    assert.strictEqual(letters(out.state.peers.keys()), "b")
    assert.deepStrictEqual(out.remove, [a])
  })

  it("configures persistence and fixed scores, rewriting only rows whose persistent flag changed (25)", () => {
    const out = Peers.load(stateWith({ persistentPeers: [b], peerScores: { [c]: 1 } }), [row(a, { persistent: true }), row(b), row(c)])
    assert.deepStrictEqual([a, b, c].map((id) => State.scoreOf(out.state, id)), [0, 32_767, 1])
    assert.strictEqual(letters(out.persist.map((p) => p.id)), "ab")
  })

  it("prunes to maxPeers", () => {
    const out = Peers.load(stateWith({ maxPeers: 2, maxConnected: 1, peerScores: { [a]: 1, [c]: 2 } }), [row(a), row(b), row(c)])
    assert.deepStrictEqual([letters(out.state.peers.keys()), out.remove], ["ac", [b]])
  })
})

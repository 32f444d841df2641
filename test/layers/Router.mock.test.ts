/**
 * docs/ARCHITECTURE.md#router 94-99: the Router over a fake transport whose connections hand out scripted handshake
 * results — accepting, dialing, stalled and abandoned handshakes, the accept loop's end, parallel
 * dials, eviction — plus raw inbound bytes the router cannot decode.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Scope } from "effect"
import { TestClock } from "effect/testing"
import * as Ban from "../../src/domain/Ban.ts"
import * as Endpoint from "../../src/domain/Endpoint.ts"
import * as NodeInfo from "../../src/domain/NodeInfo.ts"
import { PeerError } from "../../src/domain/PeerError.ts"
import * as PeerUpdate from "../../src/domain/PeerUpdate.ts"
import type * as NodeId from "../../src/domain/NodeId.ts"
import { FilterRejected } from "../../src/services/Router.ts"
import { AcceptError, DialError, TransportClosed } from "../../src/services/Transport.ts"
import * as Assertions from "../../src/testing/Assertions.ts"
import { settle, within } from "../../src/testing/Within.ts"
import * as F from "./Router.fixtures.ts"

/** A node and a probe on its peer updates. */
const nodeWithUpdates = (options: Parameters<typeof F.makeNode>[0] = {}) =>
  Effect.gen(function* () {
    const node = yield* F.makeNode(options)
    const updates = yield* Assertions.probe(yield* node.peerManager.subscribe)
    return { ...node, updates }
  })

/** Lets every runnable fiber run, without moving the clock. */
const flush = Effect.gen(function* () {
  for (let i = 0; i < 50; i++) yield* Effect.yieldNow
})

const routedIds = (node: F.MockNode) => Effect.map(node.router.peers, (ps) => ps.map((p) => p.nodeId))

const stateOf = (node: F.MockNode, id: NodeId.NodeId) => Effect.map(node.peerManager.peers, (ps) => ps.find((p) => p.nodeId === id))

/** Handshake scripts that must be refused, and why. */
const refusedHandshakes = (peer: ReturnType<typeof F.key>): ReadonlyArray<readonly [string, F.Script]> => [
  ["an empty NodeInfo", F.presents({ nodeInfo: NodeInfo.make({ nodeId: "" as NodeId.NodeId, listenAddr: "", network: "", moniker: "" }), publicKey: peer.publicKey })],
  ["a key that does not match the node ID", F.presents({ nodeInfo: F.infoOf(peer), publicKey: F.key(99).publicKey })],
  ["ourselves (selfInfo with selfKey)", F.presents({ nodeInfo: F.infoOf(F.selfKey), publicKey: F.selfKey.publicKey })],
  ["a peer on network \"other-network\"", F.presents(F.peerOf(peer, { network: "other-network" }))],
  ["a peer sharing no channel with us", F.presents(F.peerOf(peer, { channels: [3] }))]
]

describe("Router accepting over a mocked transport", () => {
  it.effect("94: a connection whose handshake presents a valid peer is routed and published up", () =>
    Effect.gen(function* () {
      const node = yield* nodeWithUpdates()
      const peer = F.key(1)
      const conn = yield* F.makeConnection(F.presents(F.peerOf(peer)))
      yield* node.transport.incoming(conn)
      const up = yield* Assertions.update(node.updates, peer.nodeId, "up")
      assert.deepStrictEqual([...up.channels], [1])
      const [routed] = yield* node.router.peers
      assert.strictEqual(routed!.nodeId, peer.nodeId)
      assert.strictEqual(routed!.direction, "incoming")
      assert.strictEqual(conn.handshakes(), 1)
      const options = conn.handshakeOptions[0]!
      assert.strictEqual(options.expectedId, undefined)
      assert.strictEqual(options.nodeKey.nodeId, F.selfKey.nodeId)
      assert.strictEqual(options.timeout, 20_000)
      assert.deepStrictEqual([...options.nodeInfo.channels], [1])
      assert.isFalse(conn.isClosed())
    }).pipe(Effect.scoped))

  for (const [name, script] of refusedHandshakes(F.key(2))) {
    it.effect(`94: a handshake presenting ${name} closes the connection within 100 ms, and nothing is published`, () =>
      Effect.gen(function* () {
        const node = yield* nodeWithUpdates()
        const conn = yield* F.makeConnection(script)
        yield* node.transport.incoming(conn)
        yield* within(100, "the refused connection to close", conn.awaitClosed)
        yield* Assertions.empty(node.updates)
        assert.deepStrictEqual(yield* node.router.peers, [])
        // An unknown inbound peer is not created, not even by `inactivate` (docs/ARCHITECTURE.md#router 100).
        assert.deepStrictEqual(yield* node.peerManager.peers, [])
      }).pipe(Effect.scoped))
  }

  it.effect("94: a transport that skips the checks and presents ourselves is refused by PeerManager.accepted", () =>
    Effect.gen(function* () {
      const node = yield* nodeWithUpdates()
      const conn = yield* F.makeConnection(F.presentsUnchecked({ nodeInfo: F.infoOf(F.selfKey), publicKey: F.selfKey.publicKey }))
      yield* node.transport.incoming(conn)
      yield* within(100, "the self connection to close", conn.awaitClosed)
      yield* Assertions.empty(node.updates)
      assert.deepStrictEqual(yield* node.router.peers, [])
    }).pipe(Effect.scoped))

  it.effect("a peer refused by the ID filter is closed after its handshake and never reaches the PeerManager", () =>
    Effect.gen(function* () {
      const peer = F.key(3)
      const seen: Array<string> = []
      const node = yield* nodeWithUpdates({
        router: { filterPeerById: (id) => Effect.suspend(() => (seen.push(id), Effect.fail(new FilterRejected({ message: "banned" })))) }
      })
      const conn = yield* F.makeConnection(F.presents(F.peerOf(peer)))
      yield* node.transport.incoming(conn)
      yield* within(100, "the filtered connection to close", conn.awaitClosed)
      assert.deepStrictEqual(seen, [peer.nodeId])
      assert.strictEqual(conn.handshakes(), 1)
      yield* Assertions.empty(node.updates)
      assert.deepStrictEqual(yield* node.peerManager.peers, [])
    }).pipe(Effect.scoped))

  it.effect("95: once accept fails with TransportClosed the accept loop stops (no further accept calls), and stopping is clean", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const node = yield* Scope.provide(F.makeNode(), scope)
      yield* settle(1)
      assert.strictEqual(node.transport.acceptCalls(), 1)
      yield* node.transport.acceptFails(new TransportClosed({ transport: "mock", message: "closed" }))
      yield* settle(1_000)
      assert.strictEqual(node.transport.acceptCalls(), 1)
      // Dialing still works after the transport stopped accepting.
      const peer = F.key(4)
      const conn = yield* F.makeConnection(F.presents(F.peerOf(peer)))
      node.transport.onDial(peer.nodeId, Effect.succeed(conn))
      yield* node.peerManager.add(F.mockAddress(peer.nodeId))
      yield* within(100, "the dialed peer to be routed", Effect.repeat(routedIds(node), { until: (ids) => ids.length === 1 }))
      yield* within(100, "the router to stop", Scope.close(scope, Exit.void))
      assert.isTrue(conn.isClosed())
    }))

  it.effect("a transient accept error does not stop the accept loop", () =>
    Effect.gen(function* () {
      const node = yield* nodeWithUpdates()
      yield* node.transport.acceptFails(new AcceptError({ transport: "mock", message: "EMFILE: too many open files" }))
      const peer = F.key(5)
      yield* node.transport.incoming(yield* F.makeConnection(F.presents(F.peerOf(peer))))
      yield* Assertions.update(node.updates, peer.nodeId, "up")
      assert.isAtLeast(node.transport.acceptCalls(), 2)
    }).pipe(Effect.scoped))

  it.effect("96: three stalled inbound handshakes are all in flight at once, and a fourth completes while they stall (no head-of-line blocking)", () =>
    Effect.gen(function* () {
      const node = yield* nodeWithUpdates()
      const gate = yield* Deferred.make<void>()
      const stalled = [F.key(10), F.key(11), F.key(12)]
      const conns = yield* Effect.forEach(stalled, (k) => F.makeConnection(F.presentsAfter(gate, F.peerOf(k))))
      for (const c of conns) yield* node.transport.incoming(c)
      const fast = F.key(13)
      yield* node.transport.incoming(yield* F.makeConnection(F.presents(F.peerOf(fast))))
      yield* Assertions.update(node.updates, fast.nodeId, "up")
      assert.deepStrictEqual(conns.map((c) => c.handshakes()), [1, 1, 1], "all three stalled handshakes started")
      assert.isFalse(yield* Deferred.isDone(gate))
      assert.deepStrictEqual(yield* routedIds(node), [fast.nodeId])
      yield* Deferred.succeed(gate, undefined)
      yield* Assertions.receiveUnordered(node.updates, stalled.map((k) => PeerUpdate.up(k.nodeId, [1])))
      assert.sameMembers([...(yield* routedIds(node))], [fast.nodeId, ...stalled.map((k) => k.nodeId)])
    }).pipe(Effect.scoped))

  it.effect("a handshake that never completes is abandoned at the handshake timeout and its connection closed, even when the transport ignores the timeout", () =>
    Effect.gen(function* () {
      const node = yield* nodeWithUpdates({ router: { handshakeTimeout: 1_000 } })
      const conn = yield* F.makeConnection(F.neverAnswers)
      yield* node.transport.incoming(conn)
      yield* flush
      assert.strictEqual(conn.handshakes(), 1)
      yield* TestClock.adjust(998)
      yield* flush
      assert.isFalse(conn.isClosed(), "closed before the timeout")
      yield* TestClock.adjust(1)
      yield* within(5, "the abandoned connection to close", conn.awaitClosed)
      yield* Assertions.noUpdates(node.updates)
    }).pipe(Effect.scoped))

  it.effect("a handshake the transport times out is abandoned at the timeout and its connection closed", () =>
    Effect.gen(function* () {
      const node = yield* nodeWithUpdates({ router: { handshakeTimeout: 1_000 } })
      const conn = yield* F.makeConnection(F.presentsAfter(yield* Deferred.make<void>(), F.peerOf(F.key(6))))
      yield* node.transport.incoming(conn)
      yield* flush
      yield* TestClock.adjust(998)
      yield* flush
      assert.isFalse(conn.isClosed())
      yield* TestClock.adjust(1)
      yield* within(5, "the abandoned connection to close", conn.awaitClosed)
    }).pipe(Effect.scoped))

  it.effect("maxConcurrentHandshakes bounds handshakes in flight: a new connection takes the slot of the one waiting longest", () =>
    Effect.gen(function* () {
      const node = yield* nodeWithUpdates({ router: { maxConcurrentHandshakes: 1, handshakeTimeout: 1_000 } })
      const stuck = yield* F.makeConnection(F.neverAnswers)
      const next = F.key(7)
      const arriving = yield* F.makeConnection(F.presents(F.peerOf(next)))
      yield* node.transport.incoming(stuck)
      yield* settle(10)
      assert.strictEqual(stuck.handshakes(), 1)
      yield* node.transport.incoming(arriving)
      // No waiting for the stuck handshake's timeout: it is dropped, and the new one runs at once.
      yield* Assertions.update(node.updates, next.nodeId, "up", 10)
      assert.isTrue(stuck.isClosed())
    }).pipe(Effect.scoped))

  it.effect("a timed-out handshake frees its slot", () =>
    Effect.gen(function* () {
      const node = yield* nodeWithUpdates({ router: { maxConcurrentHandshakes: 1, handshakeTimeout: 1_000 } })
      const stuck = yield* F.makeConnection(F.neverAnswers)
      yield* node.transport.incoming(stuck)
      yield* TestClock.adjust(1_000)
      yield* within(10, "the stuck connection to close", stuck.awaitClosed)
      const next = F.key(8)
      yield* node.transport.incoming(yield* F.makeConnection(F.presents(F.peerOf(next))))
      yield* Assertions.update(node.updates, next.nodeId, "up")
    }).pipe(Effect.scoped))

  it.effect("handshakes in progress are bounded per IP and per network (/24): the excess is closed without a handshake", () =>
    Effect.gen(function* () {
      const node = yield* nodeWithUpdates({ router: { maxPendingHandshakesPerIp: 2, maxPendingHandshakesPerSubnet: 3 } })
      const ip = F.freshEndpoint()
      const sameIp = yield* Effect.forEach([0, 1, 2], () => F.makeConnection(F.neverAnswers, ip))
      for (const c of sameIp) yield* node.transport.incoming(c)
      yield* within(10, "the third from one IP to close", sameIp[2]!.awaitClosed)
      assert.deepStrictEqual(sameIp.map((c) => c.handshakes()), [1, 1, 0])
      const net = ip.ip.split(".").slice(0, 3).join(".")
      const neighbours = yield* Effect.forEach([201, 202], (n) => F.makeConnection(F.neverAnswers, Endpoint.make({ protocol: "mock", ip: `${net}.${n}`, port: 26656 })))
      for (const c of neighbours) yield* node.transport.incoming(c)
      yield* within(10, "the fourth from the network to close", neighbours[1]!.awaitClosed)
      assert.deepStrictEqual(neighbours.map((c) => c.handshakes()), [1, 0])
    }).pipe(Effect.scoped))
})

describe("Router and bans of networks", () => {
  it.effect("a connection from a banned network is closed before any handshake", () =>
    Effect.gen(function* () {
      const node = yield* nodeWithUpdates()
      yield* node.peerManager.ban("10.99.0.0/16", { reason: "abuse" })
      const conn = yield* F.makeConnection(F.presents(F.peerOf(F.key(60))), Endpoint.make({ protocol: "mock", ip: "10.99.3.4", port: 26656 }))
      yield* node.transport.incoming(conn)
      yield* within(10, "the connection to close", conn.awaitClosed)
      assert.strictEqual(conn.handshakes(), 0)
    }).pipe(Effect.scoped))

  it.effect("repeated failed handshakes from one IP get it banned; other addresses are not affected", () =>
    Effect.gen(function* () {
      const node = yield* nodeWithUpdates({ peerManager: { banAfterFailedHandshakes: 3 }, router: { handshakeTimeout: 100 } })
      const ip = F.freshEndpoint()
      for (let i = 0; i < 3; i++) {
        const silent = yield* F.makeConnection(F.neverAnswers, ip)
        yield* node.transport.incoming(silent)
        yield* TestClock.adjust(100)
        yield* within(10, "the silent connection to time out", silent.awaitClosed)
      }
      assert.deepStrictEqual((yield* node.peerManager.bans).map((b) => Ban.formatSubject(b.subject)), [`${ip.ip}/32`])
      const refused = yield* F.makeConnection(F.presents(F.peerOf(F.key(61))), ip)
      yield* node.transport.incoming(refused)
      yield* within(10, "the banned address's connection to close", refused.awaitClosed)
      assert.strictEqual(refused.handshakes(), 0)
      yield* node.transport.incoming(yield* F.makeConnection(F.presents(F.peerOf(F.key(62)))))
      yield* Assertions.update(node.updates, F.key(62).nodeId, "up")
    }).pipe(Effect.scoped))
})

describe("Router per-IP admission of inbound connections", () => {
  it.effect("connections beyond maxIncomingConnectionAttempts from one IP are closed without a handshake", () =>
    Effect.gen(function* () {
      const node = yield* nodeWithUpdates({ router: { maxIncomingConnectionAttempts: 1 } })
      const ip = F.freshEndpoint()
      const first = yield* F.makeConnection(F.presents(F.peerOf(F.key(50))), ip)
      const second = yield* F.makeConnection(F.presents(F.peerOf(F.key(51))), ip)
      const elsewhere = yield* F.makeConnection(F.presents(F.peerOf(F.key(52))))
      yield* node.transport.incoming(first)
      yield* Assertions.update(node.updates, F.key(50).nodeId, "up")
      yield* node.transport.incoming(second)
      yield* within(10, "the excess connection to close", second.awaitClosed)
      assert.strictEqual(second.handshakes(), 0)
      yield* node.transport.incoming(elsewhere)
      yield* Assertions.update(node.updates, F.key(52).nodeId, "up")
    }).pipe(Effect.scoped))

  it.effect("an IP whose last connection closed may reconnect only after the window", () =>
    Effect.gen(function* () {
      const node = yield* nodeWithUpdates({ router: { incomingConnectionWindow: 100 } })
      const ip = F.freshEndpoint()
      const peer = F.key(53)
      const first = yield* F.makeConnection(F.presents(F.peerOf(peer)), ip)
      yield* node.transport.incoming(first)
      yield* Assertions.update(node.updates, peer.nodeId, "up")
      yield* first.close
      yield* Assertions.update(node.updates, peer.nodeId, "down")
      const tooSoon = yield* F.makeConnection(F.presents(F.peerOf(peer)), ip)
      yield* node.transport.incoming(tooSoon)
      yield* within(10, "the early reconnection to close", tooSoon.awaitClosed)
      assert.strictEqual(tooSoon.handshakes(), 0)
      yield* TestClock.adjust(100)
      const later = yield* F.makeConnection(F.presents(F.peerOf(peer)), ip)
      yield* node.transport.incoming(later)
      yield* Assertions.update(node.updates, peer.nodeId, "up")
    }).pipe(Effect.scoped))
})

describe("Router dialing over a mocked transport", () => {
  it.effect("97: a dialed peer with a valid handshake is routed (outgoing) and published up", () =>
    Effect.gen(function* () {
      const node = yield* nodeWithUpdates()
      const peer = F.key(20)
      const conn = yield* F.makeConnection(F.presents(F.peerOf(peer)))
      node.transport.onDial(peer.nodeId, Effect.succeed(conn))
      yield* node.peerManager.add(F.mockAddress(peer.nodeId))
      yield* Assertions.update(node.updates, peer.nodeId, "up")
      assert.strictEqual(node.transport.dials.length, 1)
      assert.strictEqual(node.transport.dials[0]!.protocol, "mock")
      assert.strictEqual(node.transport.dials[0]!.path, peer.nodeId)
      assert.strictEqual(conn.handshakeOptions[0]!.expectedId, peer.nodeId)
      const [routed] = yield* node.router.peers
      assert.strictEqual(routed!.direction, "outgoing")
      assert.strictEqual((yield* stateOf(node, peer.nodeId))!.state, "ready")
    }).pipe(Effect.scoped))

  const peer = F.key(21)
  const dialCases: ReadonlyArray<readonly [string, F.Script]> = [
    ["an empty NodeInfo", F.presents({ nodeInfo: NodeInfo.make({ nodeId: "" as NodeId.NodeId, listenAddr: "", network: "", moniker: "" }), publicKey: peer.publicKey })],
    ["a key that does not match the node ID", F.presents({ nodeInfo: F.infoOf(peer), publicKey: F.key(98).publicKey })],
    ["another node ID than the one dialed (ourselves)", F.presents({ nodeInfo: F.infoOf(F.selfKey), publicKey: F.selfKey.publicKey })],
    ["a peer on network \"other-network\"", F.presents(F.peerOf(peer, { network: "other-network" }))]
  ]
  for (const [name, script] of dialCases) {
    it.effect(`97: a dial whose handshake presents ${name} closes the connection within 100 ms and marks the dial failed`, () =>
      Effect.gen(function* () {
        const node = yield* nodeWithUpdates()
        const conn = yield* F.makeConnection(script)
        node.transport.onDial(peer.nodeId, Effect.succeed(conn))
        yield* node.peerManager.add(F.mockAddress(peer.nodeId))
        yield* within(100, "the refused connection to close", conn.awaitClosed)
        yield* settle(10)
        const state = yield* stateOf(node, peer.nodeId)
        assert.strictEqual(state!.state, "candidate", "the dial is no longer in flight")
        assert.strictEqual(state!.inactive, name.includes("other-network"), "only an incompatible peer is inactivated")
        yield* Assertions.empty(node.updates)
        assert.deepStrictEqual(yield* node.router.peers, [])
        assert.strictEqual(node.transport.dials.length, 1, "zero retry time: no second dial")
      }).pipe(Effect.scoped))
  }

  it.effect("97: a dial error marks the dial failed", () =>
    Effect.gen(function* () {
      const node = yield* nodeWithUpdates()
      node.transport.onDial(peer.nodeId, Effect.fail(new DialError({ endpoint: `mock:${peer.nodeId}`, reason: "refused", message: "connection refused" })))
      yield* node.peerManager.add(F.mockAddress(peer.nodeId))
      yield* settle(10)
      assert.strictEqual(node.transport.dials.length, 1)
      assert.strictEqual((yield* stateOf(node, peer.nodeId))!.state, "candidate")
      yield* Assertions.empty(node.updates)
    }).pipe(Effect.scoped))

  it.effect("a dial that hangs is abandoned at the dial timeout and marked failed", () =>
    Effect.gen(function* () {
      const node = yield* nodeWithUpdates({ router: { dialTimeout: 500 } })
      node.transport.onDial(peer.nodeId, Effect.never)
      yield* node.peerManager.add(F.mockAddress(peer.nodeId))
      yield* settle(1)
      assert.strictEqual((yield* stateOf(node, peer.nodeId))!.state, "dialing")
      yield* TestClock.adjust(500)
      yield* settle(1)
      assert.strictEqual((yield* stateOf(node, peer.nodeId))!.state, "candidate")
    }).pipe(Effect.scoped))

  it.effect("a dialed handshake that never completes is abandoned at the handshake timeout, freeing its dial slot, even when the transport ignores the timeout", () =>
    Effect.gen(function* () {
      const node = yield* nodeWithUpdates({ router: { maxConcurrentDials: 1, handshakeTimeout: 1_000 } })
      const [stuckKey, nextKey] = [F.key(25), F.key(26)]
      const stuck = yield* F.makeConnection(F.neverAnswers)
      node.transport.onDial(stuckKey.nodeId, Effect.succeed(stuck))
      node.transport.onDial(nextKey.nodeId, F.makeConnection(F.presents(F.peerOf(nextKey))))
      yield* node.peerManager.add(F.mockAddress(stuckKey.nodeId))
      yield* flush
      yield* node.peerManager.add(F.mockAddress(nextKey.nodeId))
      yield* flush
      assert.strictEqual(node.transport.dials.length, 1, "the only dial slot is taken")
      yield* TestClock.adjust(1_000)
      yield* Assertions.update(node.updates, nextKey.nodeId, "up")
      assert.isTrue(stuck.isClosed())
      assert.strictEqual((yield* stateOf(node, stuckKey.nodeId))!.state, "candidate")
    }).pipe(Effect.scoped))

  it.effect("98: with a, b and c added and 3 dial slots, all three are dialed while all three handshakes are blocked", () =>
    Effect.gen(function* () {
      const node = yield* nodeWithUpdates({ router: { maxConcurrentDials: 3 } })
      const gate = yield* Deferred.make<void>()
      const keys = [F.key(30), F.key(31), F.key(32)]
      const conns = yield* Effect.forEach(keys, (k) => F.makeConnection(F.presentsAfter(gate, F.peerOf(k))))
      keys.forEach((k, i) => node.transport.onDial(k.nodeId, Effect.succeed(conns[i]!)))
      for (const k of keys) yield* node.peerManager.add(F.mockAddress(k.nodeId))
      yield* within(100, "three handshakes in flight", Effect.repeat(Effect.sync(() => conns.filter((c) => c.handshakes() === 1).length), { until: (n) => n === 3 }))
      assert.strictEqual(node.transport.dials.length, 3)
      yield* Deferred.succeed(gate, undefined)
      yield* within(100, "all three routed", Effect.repeat(routedIds(node), { until: (ids) => ids.length === 3 }))
    }).pipe(Effect.scoped))

  it.effect("maxConcurrentDials bounds dials in flight: with 2 slots the third dial waits for a handshake to finish", () =>
    Effect.gen(function* () {
      const node = yield* nodeWithUpdates({ router: { maxConcurrentDials: 2 } })
      const gate = yield* Deferred.make<void>()
      const keys = [F.key(33), F.key(34), F.key(35)]
      const conns = yield* Effect.forEach(keys, (k) => F.makeConnection(F.presentsAfter(gate, F.peerOf(k))))
      keys.forEach((k, i) => node.transport.onDial(k.nodeId, Effect.succeed(conns[i]!)))
      for (const k of keys) yield* node.peerManager.add(F.mockAddress(k.nodeId))
      yield* settle(20)
      assert.strictEqual(node.transport.dials.length, 2)
      yield* Deferred.succeed(gate, undefined)
      yield* within(100, "all three routed", Effect.repeat(routedIds(node), { until: (ids) => ids.length === 3 }))
      assert.strictEqual(node.transport.dials.length, 3)
    }).pipe(Effect.scoped))
})

describe("Router eviction and peer errors over a mocked transport", () => {
  const connected = (extra: Parameters<typeof F.makeNode>[0] = {}) =>
    Effect.gen(function* () {
      const node = yield* nodeWithUpdates(extra)
      const peer = F.key(40)
      const conn = yield* F.makeConnection(F.presents(F.peerOf(peer)))
      yield* node.transport.incoming(conn)
      yield* Assertions.update(node.updates, peer.nodeId, "up")
      return { node, peer, conn }
    })

  it.effect("99: a fatal error for a connected peer evicts it: down is published and the connection closed", () =>
    Effect.gen(function* () {
      const { conn, node, peer } = yield* connected()
      yield* node.peerManager.errored(peer.nodeId, true)
      yield* Assertions.update(node.updates, peer.nodeId, "down")
      assert.isTrue(conn.isClosed())
      assert.isAtLeast(conn.closes(), 1)
      assert.deepStrictEqual(yield* node.router.peers, [])
    }).pipe(Effect.scoped))

  it.effect("a fatal PeerError sent on a channel evicts the peer", () =>
    Effect.gen(function* () {
      const { conn, node, peer } = yield* connected()
      const ch = yield* node.router.openChannel(F.channel1)
      yield* ch.sendError(new PeerError({ nodeId: peer.nodeId, message: "sent garbage", fatal: true }))
      yield* Assertions.update(node.updates, peer.nodeId, "down")
      assert.isTrue(conn.isClosed())
    }).pipe(Effect.scoped))

  it.effect("a PeerError with a ban disconnects the peer, refuses it while the ban lasts, and lets it back after", () =>
    Effect.gen(function* () {
      const { conn, node, peer } = yield* connected()
      const ch = yield* node.router.openChannel(F.channel1)
      yield* ch.sendError(new PeerError({ nodeId: peer.nodeId, message: "double-signing gossip", fatal: true, ban: "1 hour" }))
      yield* Assertions.update(node.updates, peer.nodeId, "down")
      assert.isTrue(conn.isClosed())
      const again = yield* F.makeConnection(F.presents(F.peerOf(peer)))
      yield* node.transport.incoming(again)
      yield* within(10, "the banned peer's new connection to close", again.awaitClosed)
      assert.strictEqual((yield* node.peerManager.bans)[0]?.reason, "double-signing gossip")
      yield* TestClock.adjust("1 hour")
      yield* node.transport.incoming(yield* F.makeConnection(F.presents(F.peerOf(peer))))
      yield* Assertions.update(node.updates, peer.nodeId, "up")
    }).pipe(Effect.scoped))

  it.effect("a non-fatal PeerError on an unlimited node lowers the score and keeps the connection", () =>
    Effect.gen(function* () {
      const { conn, node, peer } = yield* connected()
      const ch = yield* node.router.openChannel(F.channel1)
      const before = (yield* node.peerManager.scores).get(peer.nodeId)!
      yield* ch.sendError(new PeerError({ nodeId: peer.nodeId, message: "slow", fatal: false }))
      yield* settle(10)
      assert.strictEqual((yield* node.peerManager.scores).get(peer.nodeId), before - 1)
      assert.isFalse(conn.isClosed())
      yield* Assertions.noUpdates(node.updates)
    }).pipe(Effect.scoped))

  it.effect("a non-fatal PeerError on a full node disconnects the peer", () =>
    Effect.gen(function* () {
      const { conn, node, peer } = yield* connected({ peerManager: { maxConnected: 1, maxPeers: 2, maxConnectedUpgrade: 0 } })
      const ch = yield* node.router.openChannel(F.channel1)
      yield* ch.sendError(new PeerError({ nodeId: peer.nodeId, message: "slow", fatal: false }))
      yield* Assertions.update(node.updates, peer.nodeId, "down")
      assert.isTrue(conn.isClosed())
    }).pipe(Effect.scoped))

  it.effect("undecodable bytes from a peer are dropped and lower its score; the connection stays", () =>
    Effect.gen(function* () {
      const { conn, node, peer } = yield* connected()
      const ch = yield* node.router.openChannel(F.channel1)
      const probe = yield* Assertions.probe(ch.messages)
      const before = (yield* node.peerManager.scores).get(peer.nodeId)!
      yield* conn.inject(1, Uint8Array.of(0xff, 0xff, 0xff))
      yield* conn.inject(1, new TextEncoder().encode("\n\x05hello"))
      yield* Assertions.receive(probe, { from: peer.nodeId, channelId: 1, message: F.str("hello") })
      assert.strictEqual((yield* node.peerManager.scores).get(peer.nodeId), before - 1)
      assert.isFalse(conn.isClosed())
      yield* Assertions.noUpdates(node.updates)
    }).pipe(Effect.scoped))

  it.effect("bytes on a channel we do not serve are dropped without penalty", () =>
    Effect.gen(function* () {
      const { conn, node, peer } = yield* connected()
      const ch = yield* node.router.openChannel(F.channel1)
      const probe = yield* Assertions.probe(ch.messages)
      const before = (yield* node.peerManager.scores).get(peer.nodeId)!
      yield* conn.inject(7, new TextEncoder().encode("\n\x01x"))
      yield* conn.inject(1, new TextEncoder().encode("\n\x01y"))
      yield* Assertions.receive(probe, { from: peer.nodeId, channelId: 1, message: F.str("y") })
      assert.strictEqual((yield* node.peerManager.scores).get(peer.nodeId), before)
    }).pipe(Effect.scoped))

  it.effect("messages sent to the peer reach its connection, encoded, on the channel's ID", () =>
    Effect.gen(function* () {
      const { conn, node, peer } = yield* connected()
      const ch = yield* node.router.openChannel(F.channel1)
      yield* ch.send({ to: peer.nodeId, message: F.str("hi") })
      yield* within(10, "the message to be written", Effect.repeat(Effect.sync(() => conn.sent.length), { until: (n) => n === 1 }))
      assert.strictEqual(conn.sent[0]!.channelId, 1)
      assert.deepStrictEqual([...conn.sent[0]!.data], [0x0a, 0x02, 0x68, 0x69])
    }).pipe(Effect.scoped))

  it.effect("stopping the router closes every peer connection", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const node = yield* Scope.provide(F.makeNode(), scope)
      const conns = yield* Effect.forEach([F.key(41), F.key(42)], (k) =>
        Effect.tap(F.makeConnection(F.presents(F.peerOf(k))), (c) => node.transport.incoming(c)))
      yield* within(100, "both routed", Effect.repeat(routedIds(node), { until: (ids) => ids.length === 2 }))
      yield* within(100, "the router to stop", Scope.close(scope, Exit.void))
      assert.isTrue(conns.every((c) => c.isClosed()))
    }))
})

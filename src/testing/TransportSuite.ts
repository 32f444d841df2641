/**
 * The transport conformance suite (docs/ARCHITECTURE.md#transports and more): every `Transport` layer registers it and must
 * pass it unchanged. Tendermint runs the same table against every transport (`withTransports`).
 *
 * ```ts
 * TransportSuite.run({
 *   name: "memory",
 *   environment: MemoryNetwork.layer,
 *   transport: (key) => MemoryTransport.layer.pipe(Layer.provide(NodeIdentity.layer(key)))
 * })
 * ```
 *
 * @since 0.1.0
 */
import { assert, describe, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Scope from "effect/Scope"
import { TestClock } from "effect/testing"
import * as Endpoint from "../domain/Endpoint.ts"
import * as NodeInfo from "../domain/NodeInfo.ts"
import * as NodeKey from "../domain/NodeKey.ts"
import { Transport, type Connection, type HandshakeOptions } from "../services/Transport.ts"
import { key } from "./Keys.ts"

/** How the suite builds the transports under test. */
export interface Options<R> {
  /** Shown in test names. */
  readonly name: string
  /** Services shared by the transports of one test (e.g. a `MemoryNetwork`), built fresh per test. */
  readonly environment: Layer.Layer<R>
  /** A listening transport for the node holding `key`. */
  readonly transport: (key: NodeKey.NodeKey) => Layer.Layer<Transport, unknown, R>
  /**
   * Real I/O (sockets): tests run with the live clock, and timeouts use short real durations.
   * Otherwise they run on `TestClock`.
   */
  readonly live?: boolean
  /** Endpoints this transport must refuse to dial, beyond the generic invalid ones. */
  readonly invalidEndpoints?: ReadonlyArray<Endpoint.Endpoint>
  /** Endpoints (other than the listening one) that must reach the given listening endpoint. */
  readonly aliasEndpoints?: (listening: Endpoint.Endpoint) => ReadonlyArray<Endpoint.Endpoint>
}

/** Deterministic keys for the suite's nodes (`Keys.key`, re-exported for existing users). */
export { key }

/** A valid NodeInfo for `k` on network "conformance" with channels 0xf0 and 0x0f. */
export const nodeInfo = (k: NodeKey.NodeKey, overrides: Partial<NodeInfo.NodeInfo> = {}): NodeInfo.NodeInfo => ({
  ...NodeInfo.make({
    nodeId: k.nodeId,
    listenAddr: "tcp://127.0.0.1:26656",
    network: "conformance",
    moniker: `node-${k.nodeId.slice(0, 6)}`,
    channels: [0xf0, 0x0f],
    version: "1.2.3",
    protocolVersion: { p2p: 8n, block: 11n, app: 7n },
    other: { txIndex: "on", rpcAddress: "tcp://127.0.0.1:26657" }
  }),
  ...overrides
})

const bytes = (n: number, seed = 0) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff)

/** Registers the suite under `describe("Transport conformance: <name>")`. */
export const run = <R>(options: Options<R>): void => {
  const test = options.live === true ? it.live : it.effect
  const shortTimeout = options.live === true ? Duration.millis(300) : Duration.seconds(20)

  /** Builds a transport in the current scope. */
  const makeTransport = (k: NodeKey.NodeKey) =>
    Effect.map(Layer.build(options.transport(k)), (ctx) => Context.get(ctx, Transport))

  const provided = <A, E>(self: Effect.Effect<A, E, R | Scope.Scope>) =>
    Effect.scoped(self).pipe(Effect.provide(options.environment)) as Effect.Effect<A, E>

  const listening = (t: Transport["Service"]) =>
    Effect.flatMap(t.endpoints, (eps) => {
      const ep = eps[0]
      return ep === undefined ? Effect.die(new Error(`transport ${t.name} has no endpoint`)) : Effect.succeed(ep)
    })

  /** a dials b; returns [a's end, b's end]. */
  const connect = (a: Transport["Service"], b: Transport["Service"], to?: Endpoint.Endpoint) =>
    Effect.gen(function* () {
      const accepting = yield* Effect.forkChild(b.accept)
      const ab = yield* a.dial(to ?? (yield* listening(b)))
      const ba = yield* Fiber.join(accepting)
      return [ab, ba] as const
    })

  const handshakeBoth = (ab: Connection, ba: Connection, ka: NodeKey.NodeKey, kb: NodeKey.NodeKey, extra: Partial<HandshakeOptions> = {}) =>
    Effect.all([
      ab.handshake({ nodeInfo: nodeInfo(ka), nodeKey: ka, expectedId: kb.nodeId, ...extra }),
      ba.handshake({ nodeInfo: nodeInfo(kb), nodeKey: kb })
    ], { concurrency: 2 })

  /** Two transports, connected and handshaken. */
  const pair = Effect.gen(function* () {
    const [ka, kb] = [key(1), key(2)]
    const a = yield* makeTransport(ka)
    const b = yield* makeTransport(kb)
    const [ab, ba] = yield* connect(a, b)
    yield* handshakeBoth(ab, ba, ka, kb)
    return { a, b, ab, ba, ka, kb }
  })

  describe(`Transport conformance: ${options.name}`, () => {
    test("accept waiting when the transport closes fails with TransportClosed, and every later accept too", () =>
      provided(Effect.gen(function* () {
        const t = yield* makeTransport(key(1))
        const waiting = yield* Effect.forkChild(Effect.scoped(t.accept))
        yield* t.close
        const exit = yield* Fiber.await(waiting)
        assert.isTrue(Exit.isFailure(exit))
        const again = yield* Effect.flip(Effect.scoped(t.accept))
        assert.strictEqual(again._tag, "TransportClosed")
        yield* t.close // idempotent
      })))

    test("a transport can dial its own endpoint", () =>
      provided(Effect.gen(function* () {
        const t = yield* makeTransport(key(1))
        const [ab, ba] = yield* connect(t, t)
        assert.deepStrictEqual(ab.localEndpoint.protocol, ba.remoteEndpoint.protocol)
      })))

    test("dialing an empty endpoint, one without protocol, or an unknown protocol fails with DialError", () =>
      provided(Effect.gen(function* () {
        const t = yield* makeTransport(key(1))
        const own = yield* listening(t)
        const bad = [
          Endpoint.make({}),
          Endpoint.make({ ip: own.ip, port: own.port, path: own.path }),
          Endpoint.make({ protocol: "foo", ip: own.ip, port: own.port, path: own.path }),
          ...(options.invalidEndpoints ?? [])
        ]
        for (const ep of bad) {
          const err = yield* Effect.flip(Effect.scoped(t.dial(ep)))
          assert.strictEqual(err._tag, "DialError", `dialing ${Endpoint.format(ep)}`)
        }
      })))

    if (options.aliasEndpoints !== undefined) {
      const aliases = options.aliasEndpoints
      test("equivalent endpoints reach the listener", () =>
        provided(Effect.gen(function* () {
          const a = yield* makeTransport(key(1))
          const b = yield* makeTransport(key(2))
          for (const ep of aliases(yield* listening(b))) {
            yield* Effect.scoped(connect(a, b, ep))
          }
        })))
    }

    test("an interrupted dial is cancelled", () =>
      provided(Effect.gen(function* () {
        const a = yield* makeTransport(key(1))
        const b = yield* makeTransport(key(2))
        const fiber = yield* Effect.forkChild(Effect.scoped(a.dial(yield* listening(b))))
        yield* Fiber.interrupt(fiber)
        const exit = yield* Fiber.await(fiber)
        assert.isTrue(Exit.isFailure(exit))
      })))

    test("dialing a closed transport fails, and a closed transport can still dial out", () =>
      provided(Effect.gen(function* () {
        const a = yield* makeTransport(key(1))
        const b = yield* makeTransport(key(2))
        const bEndpoint = yield* listening(b)
        yield* a.close
        const [ab, ba] = yield* connect(a, b)
        assert.isDefined(ab)
        assert.isDefined(ba)
        yield* b.close
        const err = yield* Effect.flip(Effect.scoped(a.dial(bEndpoint)))
        assert.strictEqual(err._tag, "DialError")
      })))

    test("transports expose distinct valid endpoints in their protocols, and none once closed", () =>
      provided(Effect.gen(function* () {
        const a = yield* makeTransport(key(1))
        const b = yield* makeTransport(key(2))
        assert.isTrue(a.name.length > 0)
        const [ea, eb] = [yield* a.endpoints, yield* b.endpoints]
        assert.isTrue(ea.length > 0 && eb.length > 0)
        for (const ep of [...ea, ...eb]) {
          assert.isTrue(a.protocols.includes(ep.protocol), `${ep.protocol} in ${a.protocols.join(",")}`)
          assert.isTrue(Endpoint.validate(ep)._tag === "Success", Endpoint.format(ep))
        }
        assert.notStrictEqual(Endpoint.format(ea[0]!), Endpoint.format(eb[0]!))
        yield* a.close
        assert.deepStrictEqual(yield* a.endpoints, [])
        assert.strictEqual((yield* b.endpoints).length, eb.length)
      })))

    test("handshake exchanges every NodeInfo field and the public keys, both ways", () =>
      provided(Effect.gen(function* () {
        const [ka, kb] = [key(1), key(2)]
        const a = yield* makeTransport(ka)
        const b = yield* makeTransport(kb)
        const [ab, ba] = yield* connect(a, b)
        const [fromB, fromA] = yield* handshakeBoth(ab, ba, ka, kb)
        assert.deepStrictEqual(fromB.nodeInfo, nodeInfo(kb))
        assert.deepStrictEqual(fromA.nodeInfo, nodeInfo(ka))
        assert.deepStrictEqual(fromB.publicKey, kb.publicKey)
        assert.deepStrictEqual(fromA.publicKey, ka.publicKey)
      })))

    test("an interrupted handshake ends, and a silent peer's handshake fails with HandshakeTimeout", () =>
      provided(Effect.gen(function* () {
        const [ka, kb] = [key(1), key(2)]
        const a = yield* makeTransport(ka)
        const b = yield* makeTransport(kb)
        const [ab] = yield* connect(a, b)
        const interrupted = yield* Effect.forkChild(ab.handshake({ nodeInfo: nodeInfo(ka), nodeKey: ka }))
        yield* Fiber.interrupt(interrupted)
        assert.isTrue(Exit.isFailure(yield* Fiber.await(interrupted)))

        const [ab2] = yield* connect(a, b)
        const fiber = yield* Effect.forkChild(ab2.handshake({ nodeInfo: nodeInfo(ka), nodeKey: ka, timeout: shortTimeout }))
        if (options.live !== true) yield* TestClock.adjust(shortTimeout)
        const err = yield* Effect.flip(Fiber.join(fiber))
        assert.strictEqual(err._tag, "HandshakeTimeout")
      })))

    test("handshake rejects an invalid NodeInfo with InvalidPeerNodeInfo", () =>
      provided(Effect.gen(function* () {
        const [ka, kb] = [key(1), key(2)]
        const [ab, ba] = yield* connect(yield* makeTransport(ka), yield* makeTransport(kb))
        const [err] = yield* Effect.all([
          Effect.flip(ab.handshake({ nodeInfo: nodeInfo(ka), nodeKey: ka })),
          Effect.exit(ba.handshake({ nodeInfo: nodeInfo(kb, { moniker: "" }), nodeKey: kb }))
        ], { concurrency: 2 })
        assert.strictEqual(err._tag, "InvalidPeerNodeInfo")
      })))

    test("handshake rejects a NodeInfo whose ID is not the peer's key with PeerKeyMismatch", () =>
      provided(Effect.gen(function* () {
        const [ka, kb] = [key(1), key(2)]
        const [ab, ba] = yield* connect(yield* makeTransport(ka), yield* makeTransport(kb))
        const [err] = yield* Effect.all([
          Effect.flip(ab.handshake({ nodeInfo: nodeInfo(ka), nodeKey: ka })),
          Effect.exit(ba.handshake({ nodeInfo: nodeInfo(key(3)), nodeKey: kb }))
        ], { concurrency: 2 })
        assert.strictEqual(err._tag, "PeerKeyMismatch")
      })))

    test("handshake rejects a peer that is not the one dialed with UnexpectedPeer", () =>
      provided(Effect.gen(function* () {
        const [ka, kb] = [key(1), key(2)]
        const [ab, ba] = yield* connect(yield* makeTransport(ka), yield* makeTransport(kb))
        const [err] = yield* Effect.all([
          Effect.flip(ab.handshake({ nodeInfo: nodeInfo(ka), nodeKey: ka, expectedId: key(3).nodeId })),
          Effect.exit(ba.handshake({ nodeInfo: nodeInfo(kb), nodeKey: kb }))
        ], { concurrency: 2 })
        assert.strictEqual(err._tag, "UnexpectedPeer")
      })))

    test("handshake with ourselves fails with SelfConnection", () =>
      provided(Effect.gen(function* () {
        const ka = key(1)
        const t = yield* makeTransport(ka)
        const [ab, ba] = yield* connect(t, t)
        const [e1, e2] = yield* Effect.all([
          Effect.flip(ab.handshake({ nodeInfo: nodeInfo(ka), nodeKey: ka })),
          Effect.flip(ba.handshake({ nodeInfo: nodeInfo(ka), nodeKey: ka }))
        ], { concurrency: 2 })
        assert.strictEqual(e1._tag, "SelfConnection")
        assert.strictEqual(e2._tag, "SelfConnection")
      })))

    test("handshake rejects a peer on another network with IncompatiblePeer", () =>
      provided(Effect.gen(function* () {
        const [ka, kb] = [key(1), key(2)]
        const [ab, ba] = yield* connect(yield* makeTransport(ka), yield* makeTransport(kb))
        const [err] = yield* Effect.all([
          Effect.flip(ab.handshake({ nodeInfo: nodeInfo(ka), nodeKey: ka })),
          Effect.exit(ba.handshake({ nodeInfo: nodeInfo(kb, { network: "elsewhere" }), nodeKey: kb }))
        ], { concurrency: 2 })
        assert.strictEqual(err._tag, "IncompatiblePeer")
        if (err._tag === "IncompatiblePeer") assert.strictEqual(err.reason, "network")
      })))

    test("local and remote endpoints mirror each other", () =>
      provided(Effect.gen(function* () {
        const { ab, ba } = yield* pair
        assert.strictEqual(Endpoint.format(ab.localEndpoint), Endpoint.format(ba.remoteEndpoint))
        assert.strictEqual(Endpoint.format(ab.remoteEndpoint), Endpoint.format(ba.localEndpoint))
      })))

    test("messages flow both ways, in order per channel, and survive closing both transports", () =>
      provided(Effect.gen(function* () {
        const { a, b, ab, ba } = yield* pair
        yield* ab.send(0xf0, bytes(3, 1))
        yield* ab.send(0x0f, bytes(5, 2))
        yield* ab.send(0xf0, bytes(7, 3))
        const first = yield* ba.receive
        const second = yield* ba.receive
        const third = yield* ba.receive
        const onF0 = [first, second, third].filter((m) => m.channelId === 0xf0)
        assert.deepStrictEqual(onF0.map((m) => m.data), [bytes(3, 1), bytes(7, 3)])
        assert.deepStrictEqual([first, second, third].find((m) => m.channelId === 0x0f)?.data, bytes(5, 2))
        yield* ba.send(0x0f, bytes(1, 4))
        assert.deepStrictEqual((yield* ab.receive).data, bytes(1, 4))
        yield* a.close
        yield* b.close
        yield* ab.send(0xf0, bytes(2, 5))
        assert.deepStrictEqual((yield* ba.receive).data, bytes(2, 5))
      })))

    test("closing one end makes receive and send fail with ConnectionClosed on both ends; close is idempotent", () =>
      provided(Effect.gen(function* () {
        const { ab, ba } = yield* pair
        const waiting = yield* Effect.forkChild(ab.receive)
        yield* ba.close
        const err = yield* Effect.flip(Fiber.join(waiting))
        assert.strictEqual(err._tag, "ConnectionClosed")
        for (const c of [ab, ba]) {
          assert.strictEqual((yield* Effect.flip(c.receive))._tag, "ConnectionClosed")
          assert.strictEqual((yield* Effect.flip(c.send(0xf0, bytes(1))))._tag, "ConnectionClosed")
        }
        yield* ba.close
        yield* ab.close
        yield* ab.awaitClosed
      })))

    test("one 4 MiB message arrives intact", () =>
      provided(Effect.gen(function* () {
        const { ab, ba } = yield* pair
        const big = bytes(4 * 1024 * 1024, 9)
        const [, got] = yield* Effect.all([ab.send(0xf0, big), ba.receive], { concurrency: 2 })
        assert.strictEqual(got.data.length, big.length)
        assert.isTrue(Buffer.from(got.data).equals(Buffer.from(big)))
      })))

    test("10,000 small messages arrive in order", () =>
      provided(Effect.gen(function* () {
        const { ab, ba } = yield* pair
        const n = 10_000
        const sender = Effect.forEach(Array.from({ length: n }, (_, i) => i), (i) => ab.send(0x0f, Uint8Array.of(i & 0xff, (i >> 8) & 0xff)), { discard: true })
        const receiver = Effect.gen(function* () {
          for (let i = 0; i < n; i++) {
            const m = yield* ba.receive
            if (m.data[0] !== (i & 0xff) || m.data[1] !== ((i >> 8) & 0xff)) return yield* Effect.die(new Error(`message ${i} out of order`))
          }
          return n
        })
        const [, count] = yield* Effect.all([sender, receiver], { concurrency: 2 })
        assert.strictEqual(count, n)
      })))

    test("100 concurrent connections each exchange 100 messages", () =>
      provided(Effect.gen(function* () {
        const [ka, kb] = [key(1), key(2)]
        const a = yield* makeTransport(ka)
        const b = yield* makeTransport(kb)
        const target = yield* listening(b)
        const one = (i: number) =>
          Effect.scoped(Effect.gen(function* () {
            const accepting = yield* Effect.forkChild(b.accept)
            const ab = yield* a.dial(target)
            const ba = yield* Fiber.join(accepting)
            yield* handshakeBoth(ab, ba, ka, kb)
            const send = Effect.forEach(Array.from({ length: 100 }, (_, j) => j), (j) => ab.send(0xf0, Uint8Array.of(i, j)), { discard: true })
            const recv = Effect.forEach(Array.from({ length: 100 }, (_, j) => j), (j) =>
              Effect.flatMap(ba.receive, (m) => (m.data[1] === j ? Effect.void : Effect.die(new Error(`connection ${i}: message ${j} out of order`)))), { discard: true })
            yield* Effect.all([send, recv], { concurrency: 2 })
            return 100
          }))
        const counts = yield* Effect.forEach(Array.from({ length: 100 }, (_, i) => i), one, { concurrency: 100 })
        assert.strictEqual(counts.reduce((x, y) => x + y, 0), 10_000)
      })))
  })
}

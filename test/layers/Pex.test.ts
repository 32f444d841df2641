/**
 * The PEX reactor (docs/ARCHITECTURE.md#pex scenarios 125-133 and 135, in CometBFT's wire form, docs/PROTOCOL.md#pex-messages) on
 * in-memory test networks under `TestClock`. Misbehaviour is provoked from a "raw" node: a test node
 * without the reactor whose channel 0x00 sends crafted `tendermint.p2p.Message`s. A "sniffer" opens
 * channel 0x00 as `google.protobuf.Empty`, whose unknown fields keep the exact bytes that crossed the
 * connection, so what a node sends can be compared with the fixture hex byte for byte.
 */
import { assert, describe, it } from "@effect/vitest"
import { create, fromBinary, toBinary } from "@bufbuild/protobuf"
import { EmptySchema, type Empty } from "@bufbuild/protobuf/wkt"
import { Clock, Context, Effect, Exit, Layer, Result, Scope } from "effect"
import * as ChannelDescriptor from "../../src/domain/ChannelDescriptor.ts"
import * as Endpoint from "../../src/domain/Endpoint.ts"
import * as Envelope from "../../src/domain/Envelope.ts"
import * as NodeAddress from "../../src/domain/NodeAddress.ts"
import * as NodeId from "../../src/domain/NodeId.ts"
import type * as PeerUpdate from "../../src/domain/PeerUpdate.ts"
import * as PexWire from "../../src/domain/PexWire.ts"
import * as PexLayer from "../../src/layers/Pex.ts"
import { MessageSchema, type Message, type NetAddress } from "../../src/proto/tendermint/p2p/pex_pb.ts"
import * as AddressResolver from "../../src/layers/AddressResolver.ts"
import { PeerManager } from "../../src/services/PeerManager.ts"
import * as Pex from "../../src/services/Pex.ts"
import { Router, type Channel } from "../../src/services/Router.ts"
import { Transport } from "../../src/services/Transport.ts"
import * as Assertions from "../../src/testing/Assertions.ts"
import * as TestNetwork from "../../src/testing/TestNetwork.ts"
import { eventually, within } from "../../src/testing/Within.ts"
import { hasFixture, hex, readJsonFixture, toHex } from "../fixtures.ts"

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/**
 * Starts the PEX reactor on a test node, owned by the node's scope (TestNetwork has no hook for
 * per-node layers, so the layer is built from the node's services). `hosts` is the static DNS table
 * its AddressResolver answers from.
 */
const withPex = (node: TestNetwork.TestNode, options: Pex.OptionsInput = {}, hosts: Readonly<Record<string, ReadonlyArray<string>>> = {}) =>
  Effect.gen(function* () {
    const services = Layer.mergeAll(
      Layer.succeed(Router, node.router),
      Layer.succeed(PeerManager, node.peerManager),
      AddressResolver.layerStatic(hosts)
    )
    const context = yield* Layer.buildWithScope(PexLayer.layer({ memoryAddresses: true, ...options }).pipe(Layer.provide(services)), node.scope)
    return Context.get(context, Pex.Pex)
  })

/** A probe on a node's peer updates, for the test's scope. */
const updatesOf = (node: TestNetwork.TestNode) => Effect.flatMap(node.peerManager.subscribe, (s) => Assertions.probe(s))

/** Waits (virtual time) for `status` about `nodeId`, skipping other updates. */
const awaitStatus = (p: Assertions.Probe<PeerUpdate.PeerUpdate>, nodeId: NodeId.NodeId, status: PeerUpdate.PeerStatus, millis = 15_000) =>
  within(millis, `${status} of ${nodeId.slice(0, 8)}`, Effect.gen(function* () {
    while (true) {
      const u = yield* p.take
      if (u.nodeId === nodeId && u.status === status) return u
    }
  }))

/** The next PEX message a raw channel receives, within `millis`. */
const nextMessage = (p: Assertions.Probe<Envelope.Inbound<Message>>, millis = 3_000) =>
  within(millis, "a PEX message", p.take)

/** The reasons of the misbehaviours a reactor reported, oldest first. */
const reasons = (pex: Pex.Pex["Service"]) => Effect.map(pex.stats, (s) => s.recentMisbehaviours.map((m) => m.reason))

/** Node IDs that are not test nodes': 40 hex characters from a number. */
const fakeId = (n: number) => NodeId.unsafeDecode("f" + n.toString(16).padStart(39, "0"))

const request = () => PexWire.requestMessage()
const addrs = (entries: ReadonlyArray<NetAddress>) => PexWire.addrsMessage(entries)
const net = (id: string, ip: string, port: number) => PexWire.netAddress(id, ip, port)

/** A real node (with PEX) and a raw node (channel 0x00 only); `raw` dials `real` unless `realDials`. */
const pair = (options: { readonly pex?: Pex.OptionsInput; readonly realDials?: boolean; readonly network?: Partial<TestNetwork.Options> } = {}) =>
  Effect.gen(function* () {
    const network = yield* TestNetwork.make({ nodes: 2, channels: [Pex.descriptor], mesh: false, ...options.network })
    const [real, raw] = network.nodes as [TestNetwork.TestNode, TestNetwork.TestNode]
    const pex = yield* withPex(real, options.pex)
    const rawChannel = yield* raw.router.openChannel(Pex.descriptor)
    const inbox = yield* Assertions.probe(rawChannel.messages)
    const realUpdates = yield* updatesOf(real)
    if (options.realDials === true) yield* network.connect(real, raw)
    else yield* network.connect(raw, real)
    return { network, real, raw, pex, rawChannel, inbox, realUpdates }
  })

/** The raw node waits for the real node's request (answering nothing yet). */
const awaitRequest = (inbox: Assertions.Probe<Envelope.Inbound<Message>>, millis = 3_000) =>
  Effect.gen(function* () {
    const env = yield* nextMessage(inbox, millis)
    assert.strictEqual(env.message.sum.case, "pexRequest")
    return env
  })

const sendTo = (channel: Channel<typeof MessageSchema>, to: NodeId.NodeId, message: Message) => channel.send(Envelope.to(to, message))

/** Whether every node knows (has an address for) every other node. */
const everyoneKnowsEveryone = (nodes: ReadonlyArray<TestNetwork.TestNode>) =>
  Effect.gen(function* () {
    for (const n of nodes) {
      const known = new Set((yield* n.peerManager.peers).filter((p) => p.addresses.length > 0).map((p) => p.nodeId))
      for (const m of nodes) if (m !== n && !known.has(m.nodeId)) return false
    }
    return true
  })

/** One-byte-length protobuf field (enough for the small messages here). */
const field = (tag: string, bodyHex: string) => tag + (bodyHex.length / 2).toString(16).padStart(2, "0") + bodyHex
const ascii = (s: string) => Buffer.from(s, "ascii").toString("hex")
/** `Message{pex_addrs{addrs:[{id, ip, port 9090}]}}` laid out by hand, as CometBFT's vector is. */
const addrsHex = (id: string, ip: string) => field("12", field("0a", field("0a", ascii(id)) + field("12", ascii(ip)) + "188247"))

interface Vectors {
  readonly pex_message_vectors: ReadonlyArray<{ readonly name: string; readonly hex: string }>
}
const vector = (name: string): string | undefined => {
  if (!hasFixture("protobuf-vectors.json")) return undefined
  return readJsonFixture<Vectors>("protobuf-vectors.json").pex_message_vectors.find((v) => v.name === name)?.hex
}

const sniffDescriptor = ChannelDescriptor.make({ id: Pex.CHANNEL_ID, name: "pex-sniffer", messageType: EmptySchema, recvMessageCapacity: 64000 })
/** The exact bytes a sniffer received (its unknown fields, written back verbatim). */
const rawBytes = (m: Empty) => toHex(toBinary(EmptySchema, m))

// ---------------------------------------------------------------------------------------------
// Wire form
// ---------------------------------------------------------------------------------------------

describe("PEX wire form (docs/PROTOCOL.md#pex-messages)", () => {
  it("the channel descriptor is CometBFT's", () => {
    const d = Pex.descriptor
    assert.deepStrictEqual(
      { id: d.id, priority: d.priority, send: d.sendQueueCapacity, buffer: d.recvBufferCapacity, max: d.recvMessageCapacity, type: d.messageType.typeName },
      { id: 0, priority: 1, send: 10, buffer: 128, max: 64000, type: "tendermint.p2p.Message" }
    )
  })

  it("pex_request and pex_addrs encode to the fixture's bytes", () => {
    const req = vector("PexRequest")
    const res = vector("PexAddrs")
    if (req === undefined || res === undefined) return
    assert.strictEqual(toHex(toBinary(MessageSchema, request())), req)
    const endpoint = Endpoint.make({ protocol: "mconn", ip: "127.0.0.1", port: 9090 })
    const entries = PexWire.toNetAddresses(NodeAddress.make({ protocol: "mconn", nodeId: "1", hostname: "127.0.0.1", port: 9090 }), [endpoint])
    assert.strictEqual(toHex(toBinary(MessageSchema, addrs(entries))), res)
    // The hand layout used by the live test below reproduces the vector.
    assert.strictEqual(addrsHex("1", "127.0.0.1"), res)
    const decoded = fromBinary(MessageSchema, hex(res))
    assert.strictEqual(decoded.sum.case, "pexAddrs")
  })

  it.effect("a node's request crosses the connection as the fixture's bytes, and its answer in CometBFT's layout", () =>
    Effect.gen(function* () {
      const req = vector("PexRequest")
      const res = vector("PexAddrs")
      if (req === undefined || res === undefined) return
      const network = yield* TestNetwork.make({ nodes: 2, channels: [Pex.descriptor], mesh: false })
      const [real, sniffer] = network.nodes as [TestNetwork.TestNode, TestNetwork.TestNode]
      const known = fakeId(1)
      yield* real.peerManager.add(NodeAddress.unsafeParse(`mconn://${known}@127.0.0.1:9090`))
      yield* withPex(real)
      const channel = yield* sniffer.router.openChannel(sniffDescriptor)
      const inbox = yield* Assertions.probe(channel.messages)
      yield* network.connect(real, sniffer)
      const got = yield* within(3_000, "the request", inbox.take)
      assert.strictEqual(rawBytes(got.message), req)
      // Send the fixture's request bytes verbatim; the answer is the vector's layout with a real ID.
      yield* channel.send(Envelope.to(real.nodeId, fromBinary(EmptySchema, hex(req))))
      const answer = yield* within(3_000, "the answer", inbox.take)
      assert.strictEqual(rawBytes(answer.message), addrsHex(known, "127.0.0.1"))
    }).pipe(Effect.scoped))
})

// ---------------------------------------------------------------------------------------------
// Pure pieces
// ---------------------------------------------------------------------------------------------

describe("PEX pure pieces", () => {
  const o = { ...Pex.defaults, requestIntervalMin: 200, requestIntervalMax: 3_600_000 }

  it("135. the interval: 24.4 s after added 0 of 10 with one peer, 10 min when ≥ 95% full, 1 s with no peer", () => {
    assert.strictEqual(PexWire.nextRequestInterval({ added: 0, totalPeers: 10, available: 1, storeRatio: 0 }, o), 24_400)
    assert.strictEqual(PexWire.nextRequestInterval({ added: 0, totalPeers: 10, available: 1, storeRatio: 0.95 }, o), 600_000)
    assert.strictEqual(PexWire.nextRequestInterval({ added: 0, totalPeers: 10, available: 0, storeRatio: 0.5 }, o), 1_000)
    // Short while everything is new, capped by requestIntervalMax as discoveries dry up.
    assert.strictEqual(PexWire.nextRequestInterval({ added: 10, totalPeers: 10, available: 2, storeRatio: 0 }, o), 300)
    assert.strictEqual(PexWire.nextRequestInterval({ added: 0, totalPeers: 1000, available: 1, storeRatio: 0 }, Pex.defaults), Pex.defaults.requestIntervalMax)
    assert.strictEqual(PexWire.storeRatio(19, 20), 0.95)
    assert.strictEqual(PexWire.storeRatio(500, 0), 0)
  })

  it("received entries: invalid ID, IP or port is misbehaviour; undialable entries are skipped; memory entries map back", () => {
    const id = fakeId(7)
    const tag = (e: NetAddress, memory = false) => PexWire.fromNetAddress(e, memory)._tag
    assert.strictEqual(tag(net("zz", "1.2.3.4", 1)), "Invalid")
    assert.strictEqual(tag(net(id, "1.2.3", 1)), "Invalid")
    assert.strictEqual(tag(net(id, "", 1)), "Invalid")
    assert.strictEqual(tag(net(id, "1.2.3.4", 65536)), "Invalid")
    assert.strictEqual(tag(net(id, "0.0.0.0", 0)), "Skip")
    assert.strictEqual(tag(net(id, "0.0.0.0", 26656), true), "Skip")
    assert.strictEqual(tag(net(id, "1.2.3.4", 0)), "Skip")
    assert.strictEqual(tag(net(id, "224.0.0.1", 26656)), "Skip")
    const mem = PexWire.fromNetAddress(net(id, "0.0.0.0", 0), true)
    assert.strictEqual(mem._tag === "Address" ? NodeAddress.format(mem.address) : mem._tag, `memory:${id}`)
    const v6 = PexWire.fromNetAddress(net(id.toUpperCase(), "2001:DB8::1", 26656), false)
    assert.strictEqual(v6._tag === "Address" ? NodeAddress.format(v6.address) : v6._tag, `mconn://${id}@[2001:db8::1]:26656`)
  })

  it("listen addresses: scheme stripped, unspecified IPs skipped, memory nodes' 0.0.0.0:0 is memory:<id>", () => {
    const id = fakeId(9)
    const f = (s: string, memory = false) => {
      const a = PexWire.fromListenAddr(id, s, memory)
      return a === undefined ? undefined : NodeAddress.format(a)
    }
    assert.strictEqual(f("tcp://10.1.2.3:26656"), `mconn://${id}@10.1.2.3:26656`)
    assert.strictEqual(f("[::1]:26656"), `mconn://${id}@[::1]:26656`)
    assert.strictEqual(f("Node.Example:26656"), `mconn://${id}@node.example:26656`)
    assert.strictEqual(f("tcp://0.0.0.0:26656"), undefined)
    assert.strictEqual(f("0.0.0.0:0"), undefined)
    assert.strictEqual(f("0.0.0.0:0", true), `memory:${id}`)
    assert.strictEqual(f("garbage"), undefined)
  })

  it("options: defaults apply and bad values name their field", () => {
    const ok = Pex.decodeOptions({ minRequestInterval: "5 seconds" })
    assert.isTrue(Result.isSuccess(ok))
    if (Result.isSuccess(ok)) {
      assert.strictEqual(ok.success.minRequestInterval, 5_000)
      assert.strictEqual(ok.success.maxAddressesSent, 100)
      assert.strictEqual(ok.success.maxAddressesAccepted, 250)
      assert.strictEqual(ok.success.seedMode, false)
    }
    const option = (input: unknown) => {
      const r = Pex.decodeOptions(input)
      return Result.isFailure(r) ? r.failure.option : "ok"
    }
    assert.strictEqual(option({ maxAddressesSent: 251 }), "maxAddressesSent")
    assert.strictEqual(option({ requestIntervalMin: 0 }), "requestIntervalMin")
    assert.strictEqual(option({ requestIntervalMin: 10_000, requestIntervalMax: 5_000 }), "requestIntervalMax")
    assert.strictEqual(option({ seedDisconnectDelay: "soon" }), "seedDisconnectDelay")
  })

  it.effect("closing the reactor's scope stops it and releases channel 0x00", () =>
    Effect.gen(function* () {
      const network = yield* TestNetwork.make({ nodes: 1, channels: [Pex.descriptor] })
      const node = network.nodes[0]!
      const scope = yield* Scope.fork(node.scope)
      const services = Layer.mergeAll(
        Layer.succeed(Router, node.router),
        Layer.succeed(PeerManager, node.peerManager),
        Layer.succeed(Transport, node.transport),
        AddressResolver.layerStatic({})
      )
      yield* Layer.buildWithScope(PexLayer.layer().pipe(Layer.provide(services)), scope)
      const taken = yield* Effect.exit(node.router.openChannel(Pex.descriptor))
      assert.isTrue(taken._tag === "Failure" && String(taken.cause).includes("ChannelAlreadyOpen"))
      yield* Scope.close(scope, Exit.void)
      yield* node.router.openChannel(Pex.descriptor)
    }).pipe(Effect.scoped))

  it.effect("the layer refuses bad options with InvalidPexOptions", () =>
    Effect.gen(function* () {
      const network = yield* TestNetwork.make({ nodes: 1, channels: [Pex.descriptor] })
      const exit = yield* Effect.exit(withPex(network.nodes[0]!, { maxAddressesSent: -1 }))
      assert.isTrue(exit._tag === "Failure" && String(exit.cause).includes("InvalidPexOptions"))
    }).pipe(Effect.scoped))
})

// ---------------------------------------------------------------------------------------------
// Requests and answers
// ---------------------------------------------------------------------------------------------

describe("PEX requests and answers", () => {
  it.effect("125. the node asks its new peer, and answers a peer it knows nothing else about with an empty list", () =>
    Effect.gen(function* () {
      const { real, rawChannel, inbox, pex } = yield* pair({ realDials: true })
      yield* awaitRequest(inbox)
      yield* sendTo(rawChannel, real.nodeId, request())
      const answer = yield* nextMessage(inbox)
      assert.strictEqual(answer.message.sum.case, "pexAddrs")
      assert.deepStrictEqual(answer.message.sum.case === "pexAddrs" ? answer.message.sum.value.addrs : undefined, [])
      const stats = yield* pex.stats
      assert.strictEqual(stats.requestsSent, 1)
      assert.strictEqual(stats.requestsAnswered, 1)
    }).pipe(Effect.scoped))

  it.effect("129. a node that knows 110 peers answers with exactly 100 addresses", () =>
    Effect.gen(function* () {
      const { real, raw, rawChannel, inbox } = yield* pair()
      for (let i = 0; i < 110; i++) yield* real.peerManager.add(NodeAddress.unsafeParse(`mconn://${fakeId(i + 1)}@10.0.${i >> 8}.${(i & 0xff) + 1}:26656`))
      yield* sendTo(rawChannel, real.nodeId, request())
      const env = yield* within(3_000, "the answer", Effect.gen(function* () {
        while (true) {
          const e = yield* inbox.take
          if (e.message.sum.case === "pexAddrs") return e
        }
      }))
      const entries = env.message.sum.case === "pexAddrs" ? env.message.sum.value.addrs : []
      assert.strictEqual(entries.length, 100)
      assert.strictEqual(new Set(entries.map((e) => e.id)).size, 100)
      assert.isFalse(entries.some((e) => e.id === raw.nodeId))
    }).pipe(Effect.scoped))

  it.effect("answers: a hostname with several IPs gives several entries, memory addresses travel as 0.0.0.0:0, unresolvable ones are skipped, private peers never appear", () =>
    Effect.gen(function* () {
      const secret = fakeId(66)
      const network = yield* TestNetwork.make({ nodes: 2, channels: [Pex.descriptor], mesh: false, peerManager: { privatePeers: [secret] } })
      const [real, raw] = network.nodes as [TestNetwork.TestNode, TestNetwork.TestNode]
      const [multi, mem, lost, v6] = [fakeId(11), fakeId(12), fakeId(13), fakeId(14)]
      yield* real.peerManager.add(NodeAddress.unsafeParse(`mconn://${multi}@seed.example:26656`))
      yield* real.peerManager.add(NodeAddress.unsafeParse(`memory:${mem}`))
      yield* real.peerManager.add(NodeAddress.unsafeParse(`mconn://${lost}@nowhere.example:26656`))
      yield* real.peerManager.add(NodeAddress.unsafeParse(`mconn://${v6}@[2001:db8::7]:26656`))
      yield* real.peerManager.add(NodeAddress.unsafeParse(`mconn://${secret}@10.9.9.9:26656`))
      yield* withPex(real, {}, { "seed.example": ["10.0.0.1", "10.0.0.2"] })
      const rawChannel = yield* raw.router.openChannel(Pex.descriptor)
      const inbox = yield* Assertions.probe(rawChannel.messages)
      yield* network.connect(raw, real)
      yield* sendTo(rawChannel, real.nodeId, request())
      const env = yield* nextMessage(inbox)
      const entries = env.message.sum.case === "pexAddrs" ? env.message.sum.value.addrs : []
      const seen = entries.map((e) => `${e.id.slice(-2)}@${e.ip}:${e.port}`).sort()
      assert.deepStrictEqual(seen, [`${multi.slice(-2)}@10.0.0.1:26656`, `${multi.slice(-2)}@10.0.0.2:26656`, `${mem.slice(-2)}@0.0.0.0:0`, `${v6.slice(-2)}@2001:db8::7:26656`].sort())
      assert.isFalse(entries.some((e) => e.id === secret || e.id === lost))
    }).pipe(Effect.scoped))

  it.effect("127. the first two requests are free; a third within 10 s disconnects the peer, unanswered", () =>
    Effect.gen(function* () {
      const { real, raw, rawChannel, inbox, realUpdates, pex } = yield* pair({ pex: { requestIntervalMin: 60_000, requestIntervalMax: 60_000 } })
      yield* awaitRequest(inbox)
      yield* sendTo(rawChannel, real.nodeId, request())
      assert.strictEqual((yield* nextMessage(inbox)).message.sum.case, "pexAddrs")
      yield* sendTo(rawChannel, real.nodeId, request())
      assert.strictEqual((yield* nextMessage(inbox)).message.sum.case, "pexAddrs")
      yield* sendTo(rawChannel, real.nodeId, request())
      yield* awaitStatus(realUpdates, raw.nodeId, "down")
      yield* Assertions.empty(inbox, 100)
      assert.deepStrictEqual(yield* reasons(pex), ["request_too_soon"])
    }).pipe(Effect.scoped))

  it.effect("127b. a third request 10 s after the second is answered", () =>
    Effect.gen(function* () {
      const { real, raw, rawChannel, inbox } = yield* pair({ pex: { requestIntervalMin: 60_000, requestIntervalMax: 60_000 } })
      yield* awaitRequest(inbox)
      for (let i = 0; i < 3; i++) {
        if (i === 2) yield* within(11_000, "10 s", Effect.sleep(10_000))
        yield* sendTo(rawChannel, real.nodeId, request())
        assert.strictEqual((yield* nextMessage(inbox)).message.sum.case, "pexAddrs")
      }
      assert.strictEqual(yield* real.peerManager.status(raw.nodeId), "up")
    }).pipe(Effect.scoped))

  it.effect("the node asks one peer at a time: no second request while one is outstanding, then ≥ 11 s apart", () =>
    Effect.gen(function* () {
      const { real, rawChannel, inbox, pex } = yield* pair({ realDials: true, pex: { requestIntervalMin: 100, requestIntervalMax: 100 } })
      yield* awaitRequest(inbox)
      const first = yield* Clock.currentTimeMillis
      // Unanswered: nothing more comes, however short the interval.
      yield* Assertions.empty(inbox, 30_000)
      assert.deepStrictEqual((yield* pex.stats).outstanding.length, 1)
      yield* sendTo(rawChannel, real.nodeId, addrs([]))
      yield* awaitRequest(inbox, 15_000)
      const second = yield* Clock.currentTimeMillis
      yield* sendTo(rawChannel, real.nodeId, addrs([]))
      yield* awaitRequest(inbox, 15_000)
      const third = yield* Clock.currentTimeMillis
      assert.isAtLeast(second - first, 11_000)
      assert.isAtLeast(third - second, 11_000)
      assert.isBelow(third - second, 12_000)
    }).pipe(Effect.scoped))

  it.effect("requestNow asks an eligible peer at once, and nobody while the only peer was just asked", () =>
    Effect.gen(function* () {
      const { raw, rawChannel, real, inbox, pex } = yield* pair({ realDials: true, pex: { requestIntervalMin: 600_000, requestIntervalMax: 600_000 } })
      yield* awaitRequest(inbox)
      assert.strictEqual(yield* pex.requestNow, undefined)
      yield* sendTo(rawChannel, real.nodeId, addrs([]))
      yield* eventually(1_000, "the answer to be taken in", Effect.map(pex.stats, (s) => s.responsesReceived === 1))
      assert.strictEqual(yield* pex.requestNow, undefined)
      yield* within(12_000, "11 s", Effect.sleep(11_000))
      assert.strictEqual(yield* pex.requestNow, raw.nodeId)
      yield* awaitRequest(inbox)
    }).pipe(Effect.scoped))

  it.effect("a stream of inbound requests does not postpone the node's own requests", () =>
    Effect.gen(function* () {
      const { network, real, raw, rawChannel, inbox } = yield* pair({ pex: { minRequestInterval: 0, requestIntervalMin: 2_000, requestIntervalMax: 2_000, peerRequestInterval: 2_000 } })
      const third = yield* network.addNode
      const thirdChannel = yield* third.router.openChannel(Pex.descriptor)
      const thirdInbox = yield* Assertions.probe(thirdChannel.messages)
      yield* network.connect(third, real)
      // The raw node floods requests every 100 ms; the third node answers the real node's requests.
      let requestsToThird = 0
      const flood = Effect.forever(Effect.andThen(sendTo(rawChannel, real.nodeId, request()), Effect.sleep(100)))
      const answerThird = Effect.forever(Effect.gen(function* () {
        const env = yield* thirdInbox.take
        if (env.message.sum.case === "pexRequest") {
          requestsToThird++
          yield* sendTo(thirdChannel, real.nodeId, addrs([]))
        }
      }))
      const answerRaw = Effect.forever(Effect.gen(function* () {
        const env = yield* inbox.take
        if (env.message.sum.case === "pexRequest") yield* sendTo(rawChannel, real.nodeId, addrs([]))
      }))
      yield* Effect.forkScoped(flood)
      yield* Effect.forkScoped(answerThird)
      yield* Effect.forkScoped(answerRaw)
      // Each request goes to a random eligible peer: 40 s (about 20 requests) make three to the quiet
      // one all but certain (a 1 in 5,000 chance of fewer), where 20 s left a 1 in 20 chance.
      yield* eventually(40_000, "several requests to the quiet peer", Effect.sync(() => requestsToThird >= 3))
      assert.strictEqual(yield* real.peerManager.status(raw.nodeId), "up")
    }).pipe(Effect.scoped))
})

// ---------------------------------------------------------------------------------------------
// Misbehaviour
// ---------------------------------------------------------------------------------------------

describe("PEX misbehaviour disconnects the peer", () => {
  it.effect("128. an unsolicited pex_addrs (after the solicited one) disconnects the sender", () =>
    Effect.gen(function* () {
      const { real, raw, rawChannel, inbox, realUpdates, pex } = yield* pair({ realDials: true })
      yield* awaitRequest(inbox)
      yield* sendTo(rawChannel, real.nodeId, addrs([]))
      yield* eventually(1_000, "the answer to be taken in", Effect.map(pex.stats, (s) => s.responsesReceived === 1))
      assert.strictEqual(yield* real.peerManager.status(raw.nodeId), "up")
      yield* sendTo(rawChannel, real.nodeId, addrs([]))
      yield* awaitStatus(realUpdates, raw.nodeId, "down", 10_000)
      assert.strictEqual((yield* pex.stats).misbehaviours, 1)
      assert.deepStrictEqual(yield* reasons(pex), ["unsolicited_addrs"])
    }).pipe(Effect.scoped))

  it.effect("130. more than 250 addresses in an answer disconnects the sender", () =>
    Effect.gen(function* () {
      const { real, raw, rawChannel, inbox, realUpdates, pex } = yield* pair({ realDials: true })
      yield* awaitRequest(inbox)
      const many = Array.from({ length: 251 }, (_, i) => net(fakeId(i + 1), `10.1.${i >> 8}.${(i & 0xff) + 1}`, 26656))
      yield* sendTo(rawChannel, real.nodeId, addrs(many))
      yield* awaitStatus(realUpdates, raw.nodeId, "down")
      assert.deepStrictEqual(yield* reasons(pex), ["too_many_addresses"])
      assert.isFalse((yield* real.peerManager.peers).some((p) => p.nodeId === fakeId(1)))
    }).pipe(Effect.scoped))

  it.effect("250 addresses are accepted and added as mconn addresses (with the gossip caps off)", () =>
    Effect.gen(function* () {
      const { real, raw, rawChannel, inbox, pex } = yield* pair({ realDials: true, network: { peerManager: { maxPeersPerSource: 0, maxPeersPerGroup: 0 } } })
      yield* awaitRequest(inbox)
      const many = Array.from({ length: 250 }, (_, i) => net(fakeId(i + 1), `10.1.${i >> 8}.${(i & 0xff) + 1}`, 26656))
      yield* sendTo(rawChannel, real.nodeId, addrs(many))
      yield* eventually(2_000, "250 addresses added", Effect.map(pex.stats, (s) => s.addressesAdded === 250))
      assert.strictEqual(yield* real.peerManager.status(raw.nodeId), "up")
      const known = yield* real.peerManager.addresses(fakeId(1))
      assert.deepStrictEqual(known.map(NodeAddress.format), [`mconn://${fakeId(1)}@10.1.0.1:26656`])
    }).pipe(Effect.scoped))

  it.effect("gossip is bounded: one source adds at most its share, and at most a group's share of one /16", () =>
    Effect.gen(function* () {
      const { real, rawChannel, inbox, pex } = yield* pair({ realDials: true, network: { peerManager: { maxPeersPerSource: 64, maxPeersPerGroup: 32 } } })
      yield* awaitRequest(inbox)
      // 250 addresses in one /16: the group's share (32) is all that is kept.
      yield* sendTo(rawChannel, real.nodeId, addrs(Array.from({ length: 250 }, (_, i) => net(fakeId(i + 1), `10.1.${i >> 8}.${(i & 0xff) + 1}`, 26656))))
      yield* eventually(2_000, "the answer to be taken in", Effect.map(pex.stats, (s) => s.responsesReceived === 1))
      assert.strictEqual((yield* pex.stats).addressesAdded, 32)
      // The next answer, 250 addresses each in its own /16: the source's share (64) caps it.
      yield* awaitRequest(inbox, 30_000)
      yield* sendTo(rawChannel, real.nodeId, addrs(Array.from({ length: 250 }, (_, i) => net(fakeId(1000 + i), `11.${i}.0.1`, 26656))))
      yield* eventually(2_000, "the second answer to be taken in", Effect.map(pex.stats, (s) => s.responsesReceived === 2))
      assert.strictEqual((yield* pex.stats).addressesAdded, 64)
    }).pipe(Effect.scoped))

  const invalid: ReadonlyArray<readonly [string, NetAddress]> = [
    ["an IP that does not parse", net(fakeId(1), "10.1.2", 26656)],
    ["a port ≥ 65536", net(fakeId(1), "10.1.2.3", 65536)],
    ["an invalid node ID", net("not-a-node-id", "10.1.2.3", 26656)]
  ]
  for (const [what, entry] of invalid) {
    it.effect(`an answer with ${what} disconnects the sender and adds nothing`, () =>
      Effect.gen(function* () {
        const { real, raw, rawChannel, inbox, realUpdates, pex } = yield* pair({ realDials: true })
        yield* awaitRequest(inbox)
        const good = net(fakeId(2), "10.1.2.4", 26656)
        yield* sendTo(rawChannel, real.nodeId, addrs([good, entry]))
        yield* awaitStatus(realUpdates, raw.nodeId, "down")
        assert.deepStrictEqual(yield* reasons(pex), ["invalid_address"])
        assert.isFalse((yield* real.peerManager.peers).some((p) => p.nodeId === fakeId(2)))
      }).pipe(Effect.scoped))
  }

  it.effect("a message with no known type disconnects the sender", () =>
    Effect.gen(function* () {
      const { real, raw, rawChannel, realUpdates, pex } = yield* pair()
      yield* sendTo(rawChannel, real.nodeId, create(MessageSchema))
      yield* awaitStatus(realUpdates, raw.nodeId, "down")
      assert.deepStrictEqual(yield* reasons(pex), ["unknown_message"])
    }).pipe(Effect.scoped))

  it.effect("misbehaviour costs the peer a point of score", () =>
    Effect.gen(function* () {
      const { real, raw, rawChannel, realUpdates } = yield* pair()
      const before = (yield* real.peerManager.scores).get(raw.nodeId) ?? 0
      yield* sendTo(rawChannel, real.nodeId, addrs([]))
      yield* awaitStatus(realUpdates, raw.nodeId, "down")
      assert.strictEqual((yield* real.peerManager.scores).get(raw.nodeId), before - 1)
    }).pipe(Effect.scoped))

  it.effect("on a memory network {id, 0.0.0.0, 0} is memory:<id>; an undialable entry is skipped, not punished", () =>
    Effect.gen(function* () {
      const { real, raw, rawChannel, inbox, pex } = yield* pair({ realDials: true })
      yield* awaitRequest(inbox)
      yield* sendTo(rawChannel, real.nodeId, addrs([net(fakeId(5), "0.0.0.0", 0), net(fakeId(6), "0.0.0.0", 26656), net(fakeId(7), "10.0.0.7", 0)]))
      yield* eventually(1_000, "the answer to be taken in", Effect.map(pex.stats, (s) => s.responsesReceived === 1))
      assert.deepStrictEqual((yield* real.peerManager.addresses(fakeId(5))).map(NodeAddress.format), [`memory:${fakeId(5)}`])
      assert.deepStrictEqual(yield* real.peerManager.addresses(fakeId(6)), [])
      assert.deepStrictEqual(yield* real.peerManager.addresses(fakeId(7)), [])
      assert.strictEqual(yield* real.peerManager.status(raw.nodeId), "up")
      assert.deepStrictEqual(yield* reasons(pex), [])
    }).pipe(Effect.scoped))
})

// ---------------------------------------------------------------------------------------------
// Inbound peers, seed mode
// ---------------------------------------------------------------------------------------------

describe("PEX inbound peers and seed mode", () => {
  it.effect("an inbound peer's NodeInfo listen address is added as mconn://id@host:port", () =>
    Effect.gen(function* () {
      const { real, raw } = yield* pair({ network: { router: { nodeInfo: { network: "test", moniker: "n", listenAddr: "tcp://10.1.2.3:26656" } } } })
      const mconn = Effect.map(real.peerManager.addresses(raw.nodeId), (a) => a.filter((x) => x.protocol === "mconn").map(NodeAddress.format))
      yield* eventually(1_000, "the listen address", Effect.map(mconn, (a) => a.length > 0))
      assert.deepStrictEqual(yield* mconn, [`mconn://${raw.nodeId}@10.1.2.3:26656`])
    }).pipe(Effect.scoped))

  it.effect("an unspecified listen address is not added", () =>
    Effect.gen(function* () {
      const { real, raw } = yield* pair({ network: { router: { nodeInfo: { network: "test", moniker: "n", listenAddr: "tcp://0.0.0.0:26656" } } } })
      yield* within(1_000, "a while", Effect.sleep(500))
      // Only the memory address the test network's `connect` adds itself.
      assert.deepStrictEqual((yield* real.peerManager.addresses(raw.nodeId)).map(NodeAddress.format), [`memory:${raw.nodeId}`])
    }).pipe(Effect.scoped))

  it.effect("a seed answers an inbound peer's request once, then disconnects it without lowering its score", () =>
    Effect.gen(function* () {
      const { real, raw, rawChannel, inbox, realUpdates } = yield* pair({ pex: { seedMode: true } })
      yield* real.peerManager.add(NodeAddress.unsafeParse(`mconn://${fakeId(3)}@10.3.3.3:26656`))
      const before = (yield* real.peerManager.scores).get(raw.nodeId) ?? 0
      yield* sendTo(rawChannel, real.nodeId, request())
      const answer = yield* nextMessage(inbox)
      assert.strictEqual(answer.message.sum.case, "pexAddrs")
      assert.strictEqual(answer.message.sum.case === "pexAddrs" ? answer.message.sum.value.addrs[0]?.id : undefined, fakeId(3))
      // A second request while leaving is ignored, not answered and not punished.
      yield* sendTo(rawChannel, real.nodeId, request())
      yield* awaitStatus(realUpdates, raw.nodeId, "down", 5_000)
      yield* Assertions.empty(inbox, 0)
      assert.strictEqual((yield* real.peerManager.scores).get(raw.nodeId) ?? 0, before)
    }).pipe(Effect.scoped))

  it.effect("a peer coming back to a seed again and again is answered each time and never banned (letting it go is no misbehaviour)", () =>
    Effect.gen(function* () {
      const { real, raw, rawChannel, inbox, realUpdates } = yield* pair({ pex: { seedMode: true }, network: { peerManager: { ...TestNetwork.peerManagerDefaults, banAfterMisbehaviours: 2 } } })
      for (let visit = 1; visit <= 4; visit++) {
        // The raw node knows the seed and dials it again after each goodbye.
        if (visit > 1) yield* awaitStatus(realUpdates, raw.nodeId, "up", 5_000)
        yield* sendTo(rawChannel, real.nodeId, request())
        assert.strictEqual((yield* nextMessage(inbox)).message.sum.case, "pexAddrs", `visit ${visit}`)
        yield* awaitStatus(realUpdates, raw.nodeId, "down", 5_000)
      }
      assert.deepStrictEqual(yield* real.peerManager.bans, [])
    }).pipe(Effect.scoped))
})

// ---------------------------------------------------------------------------------------------
// Discovery
// ---------------------------------------------------------------------------------------------

describe("PEX discovery", () => {
  it.effect("126. four nodes in a chain, each knowing one neighbour, all learn the other three within 60 s", () =>
    Effect.gen(function* () {
      const network = yield* TestNetwork.make({ nodes: 4, channels: [Pex.descriptor], mesh: false })
      for (const n of network.nodes) yield* withPex(n)
      for (let i = 0; i < 3; i++) yield* network.nodes[i]!.peerManager.add(network.nodes[i + 1]!.address)
      yield* eventually(60_000, "every node to know every other", everyoneKnowsEveryone(network.nodes))
    }).pipe(Effect.scoped))

  it.effect("131. eight nodes with maxPeers 4 and maxConnected 3 each fill at least 90% of their store", () =>
    Effect.gen(function* () {
      const network = yield* TestNetwork.make({ nodes: 8, channels: [Pex.descriptor], mesh: false, peerManager: { maxPeers: 4, maxConnected: 3 } })
      for (const n of network.nodes) yield* withPex(n)
      for (let i = 0; i < 8; i++) yield* network.nodes[i]!.peerManager.add(network.nodes[(i + 1) % 8]!.address)
      yield* eventually(120_000, "every store at 90%", Effect.gen(function* () {
        for (const n of network.nodes) if ((yield* n.peerManager.peers).length / 4 < 0.9) return false
        return true
      }))
    }).pipe(Effect.scoped))

  it.effect("132. three nodes with maxPeers 25 and maxConnected 25 learn each other", () =>
    Effect.gen(function* () {
      const network = yield* TestNetwork.make({ nodes: 3, channels: [Pex.descriptor], mesh: false, peerManager: { maxPeers: 25, maxConnected: 25 } })
      for (const n of network.nodes) yield* withPex(n)
      yield* network.nodes[1]!.peerManager.add(network.nodes[0]!.address)
      yield* network.nodes[2]!.peerManager.add(network.nodes[0]!.address)
      yield* eventually(60_000, "every node to know every other", everyoneKnowsEveryone(network.nodes))
    }).pipe(Effect.scoped))

  it.effect("133. network growth: 5 meshed nodes, then 10 more knowing only node 0, all 15 know the other 14", () =>
    Effect.gen(function* () {
      const network = yield* TestNetwork.make({ nodes: 5, channels: [Pex.descriptor] })
      for (const n of network.nodes) yield* withPex(n)
      yield* eventually(30_000, "the first five to know each other", everyoneKnowsEveryone(network.nodes))
      const first = network.nodes[0]!
      for (let i = 0; i < 10; i++) {
        const n = yield* network.addNode
        yield* withPex(n)
        yield* n.peerManager.add(first.address)
      }
      assert.strictEqual(network.nodes.length, 15)
      yield* eventually(120_000, "all 15 to know the other 14", everyoneKnowsEveryone(network.nodes))
    }).pipe(Effect.scoped))

  it.effect("convergence: 20 nodes, each told only about node 0, all know each other", () =>
    Effect.gen(function* () {
      const wallStart = performance.now()
      const network = yield* TestNetwork.make({ nodes: 20, channels: [Pex.descriptor], mesh: false })
      const pexes = yield* Effect.forEach(network.nodes, (n) => withPex(n))
      const start = yield* Clock.currentTimeMillis
      for (const n of network.nodes.slice(1)) yield* n.peerManager.add(network.nodes[0]!.address)
      yield* eventually(300_000, "20 nodes to know each other", everyoneKnowsEveryone(network.nodes))
      const virtual = (yield* Clock.currentTimeMillis) - start
      const wall = performance.now() - wallStart
      const stats = yield* Effect.forEach(pexes, (p) => p.stats)
      const sent = stats.reduce((s, x) => s + x.requestsSent, 0)
      console.log(`PEX convergence, 20 nodes: ${(virtual / 1000).toFixed(2)} s virtual, ${(wall / 1000).toFixed(2)} s wall, ${sent} requests sent in all`)
      assert.isBelow(virtual, 300_000)
    }).pipe(Effect.scoped), 120_000)
})

/**
 * The Router layer (SPEC §4): accept, dial and evict loops and per-peer routing, all fibers owned
 * by the layer's scope. Closing the scope interrupts the loops, closes every peer connection,
 * reports each peer disconnected and ends every open channel's `messages`; it never waits on
 * reactors (SPEC §9.2.22).
 *
 * @since 0.1.0
 */
import { fromBinary, type DescMessage, type MessageShape } from "@bufbuild/protobuf"
import { type Cause, Clock, type Duration, Effect, Exit, FiberSet, Layer, Metric, Queue, Scope, Semaphore, Stream } from "effect"
import * as ChannelDescriptor from "../domain/ChannelDescriptor.ts"
import * as Ban from "../domain/Ban.ts"
import * as Endpoint from "../domain/Endpoint.ts"
import * as Ip from "../domain/Ip.ts"
import type * as Envelope from "../domain/Envelope.ts"
import * as NodeAddress from "../domain/NodeAddress.ts"
import type * as NodeId from "../domain/NodeId.ts"
import * as NodeInfo from "../domain/NodeInfo.ts"
import { AddressResolver } from "../services/AddressResolver.ts"
import * as Metrics from "./Metrics.ts"
import { NodeIdentity } from "../services/NodeIdentity.ts"
import { PeerManager } from "../services/PeerManager.ts"
import {
  ChannelAlreadyOpen,
  Router,
  TooManyChannels,
  type Channel,
  type Options,
  type RoutedPeer
} from "../services/Router.ts"
import { DialError, HandshakeTimeout, Transport, type Connection, type HandshakeError, type Peer } from "../services/Transport.ts"
import * as Handshake from "./Handshake.ts"
import * as Codec from "../wire/MessageCodec.ts"
import * as ConnTracker from "../domain/router/ConnTracker.ts"
import * as PendingHandshakes from "../domain/router/PendingHandshakes.ts"
import * as MessageType from "../domain/router/MessageType.ts"
import { resolveOptions } from "./router/Options.ts"
import * as PeerQueue from "./router/PeerQueue.ts"

export * from "../services/Router.ts"

export { resolveOptions } from "./router/Options.ts"

type Counter = Metric.Metric<number, unknown>

interface OpenChannel {
  readonly descriptor: ChannelDescriptor.ChannelDescriptor
  readonly inbound: Queue.Queue<Envelope.Inbound<unknown>, Cause.Done>
  readonly sentMsgs: Counter
  readonly receivedMsgs: Counter
}

interface PeerEntry extends RoutedPeer {
  readonly queue: PeerQueue.PeerQueue
  readonly connection: Connection
  /** `p2p_peer_send_bytes_total` / `p2p_peer_receive_bytes_total` of this peer, by channel. */
  readonly sentBytes: Map<number, Counter>
  readonly receivedBytes: Map<number, Counter>
  /** `p2p_peer_pending_send_bytes` of this peer. */
  readonly pendingBytes: Metric.Metric<number, unknown>
}

/** Inbound handshake failures that count toward banning the address (`PeerManager.handshakeFailed`). */
const ABUSIVE_HANDSHAKE_FAILURES: ReadonlySet<string> = new Set(["HandshakeAuthFailed", "HandshakeTimeout", "InvalidPeerNodeInfo", "PeerKeyMismatch", "ConnectionError", "ConnectionClosed"])

/** Reasons a connection can fail without the peer breaking the protocol. */
const BENIGN_CONNECTION_ERRORS: ReadonlySet<string> = new Set(["io", "pong_timeout", "send_timeout", "not_handshaken"])

/** A channel ID as CometBFT labels it: Go's `%#x` (`0x0`, `0x30`). */
export const channelLabel = (id: number): string => `0x${id.toString(16)}`

/**
 * Ends a channel's inbound queue: its `messages` stream completes (rather than failing with an
 * interruption, which is what a bare `Queue.shutdown` gives its readers), buffered messages are
 * dropped, and a receive loop waiting for room is released (its message is counted as dropped).
 */
const closeInbound = (inbound: Queue.Queue<Envelope.Inbound<unknown>, Cause.Done>) => {
  Queue.endUnsafe(inbound)
  Queue.shutdownUnsafe(inbound)
}

/** Builds the router and starts its loops in the current scope. */
export const make = (input: Options) =>
  Effect.gen(function* () {
    const options = yield* resolveOptions(input)
    const transport = yield* Transport
    const peerManager = yield* PeerManager
    const resolver = yield* AddressResolver
    const { key } = yield* NodeIdentity
    const metricsContext = yield* Effect.context<never>()
    // Hot-path counts accumulate in plain numbers and reach the metrics once a second (and at
    // shutdown): a metric update per message would cost more than the message's queue hop.
    const pendingCounts = new Map<Counter, number>()
    const count = (m: Counter, n: number) => {
      pendingCounts.set(m, (pendingCounts.get(m) ?? 0) + n)
    }
    const sendBytesByType = new Map<string, Counter>()
    const receiveBytesByType = new Map<string, Counter>()
    const byType = (cache: Map<string, Counter>, metric: Counter, messageType: string) => {
      let m = cache.get(messageType)
      if (m === undefined) {
        m = Metric.withAttributes(metric, { message_type: messageType })
        cache.set(messageType, m)
      }
      return m
    }
    const perChannel = (cache: Map<number, Counter>, metric: Counter, peer: NodeId.NodeId, channelId: number) => {
      let m = cache.get(channelId)
      if (m === undefined) {
        m = Metric.withAttributes(metric, { peer_id: peer, chID: channelLabel(channelId) })
        cache.set(channelId, m)
      }
      return m
    }
    /** Bytes waiting for a peer: its router queue and its connection's channel queues. */
    const pendingBytesOf = (entry: PeerEntry) =>
      entry.connection.status === undefined
        ? Effect.succeed(entry.queue.bytes())
        : Effect.map(entry.connection.status, (status) => status.channels.reduce((sum, c) => sum + c.sendQueueBytes, entry.queue.bytes()))
    const flushCounts = Effect.gen(function* () {
      for (const [m, n] of pendingCounts) m.updateUnsafe(n, metricsContext)
      pendingCounts.clear()
      let queued = 0
      for (const entry of peers.values()) {
        queued += entry.queue.size()
        entry.pendingBytes.updateUnsafe(yield* pendingBytesOf(entry), metricsContext)
      }
      Metrics.routerPeerQueueSend.updateUnsafe(queued, metricsContext)
    })
    /** Drops a gone peer's series, so a node that meets many peers over time does not grow its metrics without bound. */
    const forgetMetrics = (entry: PeerEntry) => {
      for (const m of [...entry.sentBytes.values(), ...entry.receivedBytes.values(), entry.pendingBytes]) {
        const unflushed = pendingCounts.get(m)
        pendingCounts.delete(m)
        if (unflushed !== undefined) m.updateUnsafe(unflushed, metricsContext)
        Metric.removeUnsafe(m, metricsContext)
      }
    }
    yield* Effect.addFinalizer(() => flushCounts)
    yield* Effect.forkScoped(Effect.forever(Effect.andThen(Effect.sleep(1000), flushCounts)))
    // Gauges exist from the start, at zero, rather than from their first change.
    yield* Metric.update(Metrics.peers, 0)
    yield* Metric.update(Metrics.routerPeerQueueSend, 0)
    yield* Metric.update(Metrics.peersEvicted, 0)
    const dropped = (reason: string) => Metric.withAttributes(Metrics.peerQueueDroppedMsgs, { reason })
    const droppedUnknownPeer = dropped("unknown_peer")
    const droppedNoChannel = dropped("peer_lacks_channel")
    const droppedUnknownChannel = dropped("unknown_channel")
    const droppedUndecodable = dropped("undecodable")
    const droppedUnencodable = dropped("unencodable")
    const droppedClosed = dropped("channel_closed")
    const refusals = new Map<string, Counter>()
    const refused = (reason: string) => {
      let m = refusals.get(reason)
      if (m === undefined) refusals.set(reason, m = Metric.withAttributes(Metrics.inboundRefused, { reason }))
      return m
    }

    const fibers = yield* FiberSet.make()
    const channels = new Map<number, OpenChannel>()
    const peers = new Map<NodeId.NodeId, PeerEntry>()
    // Stopping the router ends every open channel's `messages`, so reactors reading them finish
    // instead of waiting forever on a router that is gone (v0.36 closes the queues in OnStop too).
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        for (const ch of channels.values()) closeInbound(ch.inbound)
      })
    )
    const advertised = new Map<number, ChannelDescriptor.ChannelDescriptor>()
    for (const d of input.channels ?? []) advertised.set(d.id, yield* Effect.fromResult(ChannelDescriptor.validate(d)))
    const declared = new Set(advertised.keys())
    /** Eviction asked for while the peer was admitted but not yet routed. */
    const evictRequested = new Set<NodeId.NodeId>()
    /** Admitted by the PeerManager, route not yet registered. */
    const admittedPeers = new Set<NodeId.NodeId>()
    let tracker = ConnTracker.make(options.maxIncomingConnectionAttempts, options.incomingConnectionWindow, options.maxIncomingConnectionsPerSubnet)
    let pending = PendingHandshakes.make<Connection>({
      max: options.maxConcurrentHandshakes,
      perIp: options.maxPendingHandshakesPerIp,
      perGroup: options.maxPendingHandshakesPerSubnet
    })
    const dialSlots = yield* Semaphore.make(options.maxConcurrentDials)

    const endpoints = yield* transport.endpoints
    const first = endpoints[0]
    const listenAddr = input.nodeInfo.listenAddr ??
      (first !== undefined && first.ip !== "" ? `tcp://${first.ip.includes(":") ? `[${first.ip}]` : first.ip}:${first.port}` : "0.0.0.0:0")

    const nodeInfo = (): NodeInfo.NodeInfo =>
      NodeInfo.make({
        nodeId: key.nodeId,
        listenAddr,
        network: input.nodeInfo.network,
        moniker: input.nodeInfo.moniker,
        channels: [...advertised.keys()],
        ...(input.nodeInfo.version === undefined ? {} : { version: input.nodeInfo.version }),
        ...(input.nodeInfo.protocolVersion === undefined ? {} : { protocolVersion: input.nodeInfo.protocolVersion }),
        ...(input.nodeInfo.other === undefined ? {} : { other: input.nodeInfo.other })
      })

    /**
     * The transport is asked to bound the handshake, and the router bounds it too: a transport that
     * ignores the timeout must not pin a handshake slot or dial worker forever (SPEC §9.1.3).
     */
    const handshake = (conn: Connection, expectedId?: NodeId.NodeId): Effect.Effect<Peer, HandshakeError> => {
      const handshakeOptions = {
        nodeInfo: nodeInfo(),
        nodeKey: key,
        timeout: options.handshakeTimeout,
        channels: [...advertised.values()],
        ...(expectedId === undefined ? {} : { expectedId })
      }
      return conn.handshake(handshakeOptions).pipe(
        // The transport checks too; checking here as well keeps a third-party transport that forgets
        // from admitting an unvalidated, mismatched or incompatible peer (SPEC §4.7).
        Effect.flatMap((peer) => Effect.fromResult(Handshake.check(Endpoint.format(conn.remoteEndpoint), handshakeOptions, peer))),
        Effect.timeoutOrElse({
          duration: options.handshakeTimeout,
          orElse: () => {
            const remote = Endpoint.format(conn.remoteEndpoint)
            return Effect.fail(new HandshakeTimeout({ remote, timeoutMillis: options.handshakeTimeout, message: `handshake with ${remote} did not complete within ${options.handshakeTimeout} ms` }))
          }
        })
      )
    }

    /** Handshake failures that show the peer incompatible mark it inactive. */
    const onHandshakeError = (error: HandshakeError) =>
      Effect.andThen(
        error._tag === "IncompatiblePeer" ? Effect.ignore(peerManager.inactivate(error.nodeId as NodeId.NodeId)) : Effect.void,
        Effect.logDebug(`handshake failed: ${error.message}`)
      )

    // -------------------------------------------------------------------------------------------
    // Per-peer routing
    // -------------------------------------------------------------------------------------------

    const route = (conn: Connection, info: NodeInfo.NodeInfo, direction: "incoming" | "outgoing") =>
      Effect.gen(function* () {
        const id = info.nodeId
        let capacity = options.peerQueueSize
        for (const d of advertised.values()) capacity = Math.max(capacity, d.sendQueueCapacity)
        const queue = yield* PeerQueue.make(options.queueType, capacity)
        const entry: PeerEntry = {
          nodeId: id,
          nodeInfo: info,
          remoteEndpoint: conn.remoteEndpoint,
          direction,
          channels: new Set(info.channels),
          queue,
          connection: conn,
          sentBytes: new Map(),
          receivedBytes: new Map(),
          pendingBytes: Metric.withAttributes(Metrics.peerPendingSendBytes, { peer_id: id })
        }
        const cleanup = Effect.gen(function* () {
          if (peers.get(id) === entry) peers.delete(id)
          forgetMetrics(entry)
          admittedPeers.delete(id)
          evictRequested.delete(id)
          yield* queue.close
          yield* conn.close
          yield* Metric.update(Metrics.peers, peers.size)
          yield* peerManager.disconnected(id)
          yield* Effect.logDebug(`peer ${id} disconnected`)
        })
        return yield* Effect.gen(function* () {
          peers.set(id, entry)
          admittedPeers.delete(id)
          yield* Metric.update(Metrics.peers, peers.size)
          // The queue exists before `up` is published, so a reactor may send the moment it hears of the peer.
          yield* peerManager.ready(id, entry.channels)
          if (evictRequested.delete(id)) return
          const sendLoop = Effect.gen(function* () {
            while (true) {
              const item = yield* queue.take
              yield* conn.send(item.channelId, item.data)
              const ch = channels.get(item.channelId)
              if (ch !== undefined) count(ch.sentMsgs, 1)
              count(perChannel(entry.sentBytes, Metrics.peerSendBytesTotal, id, item.channelId), item.data.length)
              count(byType(sendBytesByType, Metrics.messageSendBytesTotal, item.messageType), item.data.length)
            }
          })
          const receiveLoop = Effect.gen(function* () {
            while (true) {
              const m = yield* conn.receive
              const ch = channels.get(m.channelId)
              if (ch === undefined) {
                count(droppedUnknownChannel, 1)
                continue
              }
              count(ch.receivedMsgs, 1)
              count(perChannel(entry.receivedBytes, Metrics.peerReceiveBytesTotal, id, m.channelId), m.data.length)
              let message: unknown
              try {
                message = fromBinary(ch.descriptor.messageType, m.data)
              } catch (e) {
                count(droppedUndecodable, 1)
                yield* Effect.logDebug(`peer ${id} sent an undecodable message on channel ${channelLabel(m.channelId)}: ${(e as Error).message}`)
                yield* Effect.ignore(peerManager.errored(id, false))
                continue
              }
              count(byType(receiveBytesByType, Metrics.messageReceiveBytesTotal, MessageType.label(ch.descriptor.messageType, message)), m.data.length)
              // Waits while the reactor is behind: backpressure reaches the connection and the peer.
              const envelope = { from: id, channelId: m.channelId, message }
              if (!Queue.offerUnsafe(ch.inbound, envelope) && !(yield* Queue.offer(ch.inbound, envelope))) count(droppedClosed, 1)
            }
          })
          const exit = yield* Effect.exit(Effect.raceFirst(sendLoop, receiveLoop))
          if (Exit.isFailure(exit)) {
            yield* Effect.logDebug(`peer ${id} route ended`, exit.cause)
            // A protocol violation (not a hang-up, an I/O error or a timeout) counts as misbehaviour.
            const error = Exit.findErrorOption(exit)
            if (error._tag === "Some" && error.value._tag === "ConnectionError" && !BENIGN_CONNECTION_ERRORS.has(error.value.reason)) {
              yield* Effect.ignore(peerManager.errored(id, true))
            }
          }
        }).pipe(Effect.ensuring(cleanup))
      })

    // -------------------------------------------------------------------------------------------
    // Inbound
    // -------------------------------------------------------------------------------------------

    /**
     * One inbound connection, from accept to route. Admission happens before any handshake work:
     * the per-IP and per-network limits, then a pending-handshake slot (the oldest pending
     * connection gives up its slot when all are taken). The handshake then starts at once; the
     * transport bounds it from the accept, and so does the router.
     */
    const inbound = (conn: Connection) =>
      Effect.gen(function* () {
        const ip = conn.remoteEndpoint.ip
        // Read the time first: `tracker` and `pending` must be read and written with no suspension in between.
        const now = yield* Clock.currentTimeMillis
        const banned = yield* peerManager.checkIp(ip)
        if (banned !== undefined) {
          count(refused("banned"), 1)
          return yield* Effect.logDebug(`refusing inbound connection from banned ${ip} (${Ban.formatSubject(banned.subject)}: ${banned.reason})`)
        }
        // Connections with no IP (an in-process transport's) are not subject to per-IP limits.
        const admitted = ip === "" ? { tracker } : ConnTracker.add(tracker, ip, now)
        if ("rejected" in admitted) {
          count(refused(admitted.reason), 1)
          return yield* Effect.logDebug(`refusing inbound connection: ${admitted.rejected}`)
        }
        const slot = PendingHandshakes.admit(pending, { key: conn, ip, group: Ip.group(ip), since: now })
        if ("rejected" in slot) {
          count(refused(slot.rejected), 1)
          return yield* Effect.logDebug(`refusing inbound connection: ${slot.message}`)
        }
        tracker = admitted.tracker
        pending = slot.set
        if (slot.evicted !== undefined) {
          count(refused("pending_evicted"), 1)
          yield* Effect.logDebug(`dropping the handshake with ${Endpoint.format(slot.evicted.key.remoteEndpoint)} (waiting since ${slot.evicted.since}) to make room`)
          yield* slot.evicted.key.close
        }
        const leavePending = Effect.sync(() => {
          pending = PendingHandshakes.remove(pending, conn)
        })
        yield* Effect.gen(function* () {
          if (input.filterPeerByIp !== undefined) {
            const filtered = yield* Effect.exit(input.filterPeerByIp(conn.remoteEndpoint))
            if (Exit.isFailure(filtered)) {
              count(refused("filtered"), 1)
              return yield* Effect.logInfo(`inbound connection from ${Endpoint.format(conn.remoteEndpoint)} filtered`, filtered.cause)
            }
          }
          const shaken = yield* Effect.exit(handshake(conn))
          yield* leavePending
          if (Exit.isFailure(shaken)) {
            const error = Exit.findErrorOption(shaken)
            if (error._tag === "Some") {
              yield* onHandshakeError(error.value)
              // Garbage, failed authentication, silence or hanging up: what a legitimate peer does
              // not do; repeated, it gets the address banned. A different network does not count.
              if (ABUSIVE_HANDSHAKE_FAILURES.has(error.value._tag)) yield* Effect.ignore(peerManager.handshakeFailed(ip))
            }
            return
          }
          const info = shaken.value.nodeInfo
          if (input.filterPeerById !== undefined) {
            const filtered = yield* Effect.exit(input.filterPeerById(info.nodeId))
            if (Exit.isFailure(filtered)) {
              count(refused("filtered"), 1)
              return yield* Effect.logInfo(`inbound peer ${info.nodeId} filtered`, filtered.cause)
            }
          }
          const admittedByManager = yield* Effect.exit(peerManager.accepted(info.nodeId, ip))
          if (Exit.isFailure(admittedByManager)) {
            const rejection = Exit.findErrorOption(admittedByManager)
            if (rejection._tag === "Some" && rejection.value._tag === "ConnectionRejected") count(refused(rejection.value.reason), 1)
            return yield* Effect.logDebug(`inbound peer ${info.nodeId} refused`, admittedByManager.cause)
          }
          admittedPeers.add(info.nodeId)
          yield* route(conn, info, "incoming")
        }).pipe(Effect.ensuring(Effect.andThen(leavePending, Effect.flatMap(Clock.currentTimeMillis, (now) => Effect.sync(() => {
          if (ip !== "") tracker = ConnTracker.remove(tracker, ip, now)
        })))))
      })

    const acceptLoop = Effect.gen(function* () {
      while (true) {
        const scope = yield* Scope.make()
        const accepted = yield* Effect.exit(Scope.provide(transport.accept, scope))
        if (Exit.isFailure(accepted)) {
          yield* Scope.close(scope, Exit.void)
          const error = Exit.findErrorOption(accepted)
          if (error._tag === "Some" && error.value._tag === "TransportClosed") return
          // Transient (e.g. out of file descriptors): keep accepting, after a pause (SPEC §9.1.2).
          yield* Effect.logWarning("accept failed; retrying", accepted.cause)
          yield* Effect.sleep(100)
          continue
        }
        yield* FiberSet.run(fibers, Effect.ensuring(inbound(accepted.value), Scope.close(scope, Exit.void)))
      }
    })

    // -------------------------------------------------------------------------------------------
    // Outbound
    // -------------------------------------------------------------------------------------------

    const dial = (address: NodeAddress.NodeAddress) =>
      Effect.gen(function* () {
        const endpoints = yield* resolver.resolve(address).pipe(
          Effect.timeoutOrElse({
            duration: options.resolveTimeout,
            orElse: () => Effect.fail(new DialError({ endpoint: NodeAddress.format(address), reason: "timeout", message: `resolving ${NodeAddress.format(address)} timed out` }))
          })
        )
        let lastError: unknown = new DialError({ endpoint: NodeAddress.format(address), reason: "unsupported_protocol", message: `no endpoint of ${NodeAddress.format(address)} uses a protocol of transport ${transport.name}` })
        for (const endpoint of endpoints) {
          if (!transport.protocols.includes(endpoint.protocol)) continue
          if (input.filterPeerByIp !== undefined) {
            const filtered = yield* Effect.exit(input.filterPeerByIp(endpoint))
            if (Exit.isFailure(filtered)) {
              lastError = filtered.cause
              continue
            }
          }
          const conn = yield* Effect.exit(transport.dial(endpoint).pipe(
            Effect.timeoutOrElse({
              duration: options.dialTimeout,
              orElse: () => Effect.fail(new DialError({ endpoint: Endpoint.format(endpoint), reason: "timeout", message: `dialing ${Endpoint.format(endpoint)} timed out after ${options.dialTimeout} ms` }))
            })
          ))
          if (Exit.isSuccess(conn)) return conn.value
          lastError = conn.cause
        }
        return yield* Effect.fail(lastError)
      })

    const connect = (address: NodeAddress.NodeAddress) =>
      Effect.scoped(Effect.gen(function* () {
        let released = false
        const release = Effect.suspend(() => {
          if (released) return Effect.void
          released = true
          return Effect.asVoid(dialSlots.release(1))
        })
        yield* Effect.addFinalizer(() => release)
        const conn = yield* Effect.exit(dial(address))
        if (Exit.isFailure(conn)) {
          yield* Effect.logDebug(`dialing ${NodeAddress.format(address)} failed`, conn.cause)
          return yield* Effect.ignore(peerManager.dialFailed(address))
        }
        const shaken = yield* Effect.exit(handshake(conn.value, address.nodeId as NodeId.NodeId))
        if (Exit.isFailure(shaken)) {
          const error = Exit.findErrorOption(shaken)
          if (error._tag === "Some") yield* onHandshakeError(error.value)
          return yield* Effect.ignore(peerManager.dialFailed(address))
        }
        yield* release
        const info = shaken.value.nodeInfo
        if (input.filterPeerById !== undefined) {
          const filtered = yield* Effect.exit(input.filterPeerById(info.nodeId))
          if (Exit.isFailure(filtered)) {
            yield* Effect.logInfo(`outbound peer ${info.nodeId} filtered`, filtered.cause)
            return yield* Effect.ignore(peerManager.dialFailed(address))
          }
        }
        const admitted = yield* Effect.exit(peerManager.dialed(address, conn.value.remoteEndpoint.ip))
        if (Exit.isFailure(admitted)) return yield* Effect.logDebug(`outbound peer ${info.nodeId} refused`, admitted.cause)
        admittedPeers.add(info.nodeId)
        yield* route(conn.value, info, "outgoing")
      }))

    const dialLoop = Effect.gen(function* () {
      while (true) {
        yield* dialSlots.take(1)
        const address = yield* Effect.onInterrupt(peerManager.dialNext, () => dialSlots.release(1))
        yield* FiberSet.run(fibers, connect(address))
      }
    })

    // -------------------------------------------------------------------------------------------
    // Eviction
    // -------------------------------------------------------------------------------------------

    const evictLoop = Effect.gen(function* () {
      while (true) {
        const id = yield* peerManager.evictNext
        const entry = peers.get(id)
        yield* Metric.update(Metrics.peersEvicted, 1)
        if (entry === undefined) {
          // Admitted but not routed yet: the route evicts it as soon as it registers. Otherwise the
          // peer is already gone and the request is stale.
          if (admittedPeers.has(id)) evictRequested.add(id)
          continue
        }
        yield* Effect.logDebug(`evicting peer ${id}`)
        yield* entry.queue.close
        yield* entry.connection.close
      }
    })

    yield* Effect.forkScoped(acceptLoop)
    yield* Effect.forkScoped(dialLoop)
    yield* Effect.forkScoped(evictLoop)

    // -------------------------------------------------------------------------------------------
    // Channels
    // -------------------------------------------------------------------------------------------

    const openChannel = <Desc extends DescMessage>(descriptor: ChannelDescriptor.ChannelDescriptor<Desc>) =>
      Effect.gen(function* () {
        yield* Effect.fromResult(ChannelDescriptor.validate(descriptor))
        const id = descriptor.id
        if (channels.has(id)) return yield* new ChannelAlreadyOpen({ channelId: id, message: `channel ${channelLabel(id)} (${descriptor.name}) is already open` })
        if (!advertised.has(id) && advertised.size >= NodeInfo.MAX_CHANNELS) {
          return yield* new TooManyChannels({ channelId: id, message: `cannot open channel ${channelLabel(id)} (${descriptor.name}): a node advertises at most ${NodeInfo.MAX_CHANNELS} channels` })
        }
        const inbound = yield* Queue.bounded<Envelope.Inbound<unknown>, Cause.Done>(descriptor.recvBufferCapacity)
        const attrs = { chID: channelLabel(id) }
        const open: OpenChannel = {
          descriptor,
          inbound,
          sentMsgs: Metric.withAttributes(Metrics.messageSendTotal, attrs),
          receivedMsgs: Metric.withAttributes(Metrics.messageReceiveTotal, attrs)
        }
        yield* Effect.acquireRelease(
          Effect.sync(() => {
            channels.set(id, open)
            advertised.set(id, descriptor)
          }),
          () =>
            Effect.sync(() => {
              if (channels.get(id) === open) channels.delete(id)
              if (!declared.has(id)) advertised.delete(id)
              closeInbound(inbound)
            })
        )

        const enqueue = (entry: PeerEntry, data: Uint8Array, messageType: string) =>
          Effect.flatMap(entry.queue.offer({ channelId: id, priority: descriptor.priority, data, messageType }), (ok) =>
            Effect.sync(() => {
              if (!ok) count(droppedClosed, 1)
            }))

        const send = (envelope: Envelope.Outbound<MessageShape<Desc>>): Effect.Effect<void> =>
          Effect.suspend(() => {
            let data: Uint8Array
            try {
              data = Codec.encode(descriptor.messageType, envelope.message)
            } catch (e) {
              count(droppedUnencodable, 1)
              return Effect.logWarning(`channel ${channelLabel(id)}: cannot encode message: ${(e as Error).message}`)
            }
            const messageType = MessageType.label(descriptor.messageType, envelope.message)
            if (envelope.broadcast === true) {
              const targets: Array<PeerEntry> = []
              for (const entry of peers.values()) {
                if (entry.channels.has(id)) targets.push(entry)
                else count(droppedNoChannel, 1)
              }
              return Effect.forEach(targets, (entry) => enqueue(entry, data, messageType), { discard: true })
            }
            const entry = peers.get(envelope.to)
            if (entry === undefined) {
              count(droppedUnknownPeer, 1)
              return Effect.void
            }
            if (!entry.channels.has(id)) {
              count(droppedNoChannel, 1)
              return Effect.void
            }
            return enqueue(entry, data, messageType)
          })

        const channel: Channel<Desc> = {
          descriptor,
          send,
          sendError: (error) =>
            error.ban === undefined
              ? Effect.ignore(peerManager.errored(error.nodeId as NodeId.NodeId, error.fatal))
              : peerManager.ban(error.nodeId, { duration: error.ban as Duration.Input, reason: error.message }).pipe(
                Effect.catch((e) => Effect.logWarning(`channel ${channelLabel(id)}: cannot ban ${error.nodeId}: ${e.message}`)),
                Effect.asVoid
              ),
          messages: Stream.fromQueue(inbound) as unknown as Stream.Stream<Envelope.Inbound<MessageShape<Desc>>>
        }
        return channel
      })

    return Router.of({
      openChannel,
      nodeInfo: Effect.sync(nodeInfo),
      peers: Effect.sync(() => [...peers.values()].map(({ nodeId, nodeInfo, remoteEndpoint, direction, channels }) => ({ nodeId, nodeInfo, remoteEndpoint, direction, channels }))),
      connectionStatus: (nodeId) =>
        Effect.suspend(() => {
          const status = peers.get(nodeId)?.connection.status
          return status === undefined ? Effect.succeed(undefined) : status
        })
    })
  })

/** The router as a layer; building it starts the loops. */
export const layer = (options: Options) => Layer.effect(Router, make(options))

/**
 * An in-process connection pair (docs/ARCHITECTURE.md#memory-transport): two bounded queues crossed between the ends, one shared
 * closer, and a handshake that proves key possession by signing the peer's random challenge, so tests
 * exercise the same checks as TCP.
 *
 * @since 0.1.0
 */
import { randomBytes } from "node:crypto"
import { Clock, Deferred, Effect, Queue, Result } from "effect"
import * as Endpoint from "../domain/Endpoint.ts"
import { FlowMonitor } from "../domain/FlowMonitor.ts"
import * as NodeInfo from "../domain/NodeInfo.ts"
import * as NodeKey from "../domain/NodeKey.ts"
import type { Pair } from "../services/MemoryNetwork.ts"
import * as Handshake from "./Handshake.ts"
import {
  ConnectionClosed,
  HandshakeAuthFailed,
  InvalidPeerNodeInfo,
  type Connection,
  type ConnectionStatus,
  type HandshakeOptions,
  type Peer,
  type Received
} from "../services/Transport.ts"

type Hello = { readonly _tag: "Hello"; readonly nodeInfo: Uint8Array; readonly publicKey: Uint8Array; readonly challenge: Uint8Array }
type Auth = { readonly _tag: "Auth"; readonly signature: Uint8Array }
type HandshakeRecord = Hello | Auth

/** What one direction of the pair carries. */
interface Direction {
  readonly messages: Queue.Queue<Received, ConnectionClosed>
  readonly handshake: Queue.Queue<HandshakeRecord, ConnectionClosed>
}

const DOMAIN = new TextEncoder().encode("effect-p2p/memory-handshake/v1")

const signedBytes = (challenge: Uint8Array) => {
  const out = new Uint8Array(DOMAIN.length + challenge.length)
  out.set(DOMAIN)
  out.set(challenge, DOMAIN.length)
  return out
}

export type { Pair } from "../services/MemoryNetwork.ts"

/** Creates a connection pair between two endpoints, each direction buffering `bufferSize` messages. */
export const makePair = Effect.fn("MemoryConnection.makePair")(function* (dialerEndpoint: Endpoint.Endpoint, acceptorEndpoint: Endpoint.Endpoint, bufferSize: number): Effect.fn.Return<Pair> {
  const makeDirection = Effect.gen(function* () {
    return {
      messages: yield* Queue.bounded<Received, ConnectionClosed>(bufferSize),
      handshake: yield* Queue.bounded<HandshakeRecord, ConnectionClosed>(4)
    } satisfies Direction
  })
  const toAcceptor = yield* makeDirection
  const toDialer = yield* makeDirection
  const closed = yield* Deferred.make<void>()
  const clock = yield* Clock.Clock
  const created = clock.currentTimeMillisUnsafe()
  let isClosed = false

  const close = Effect.suspend(() => {
    if (isClosed) return Effect.void
    isClosed = true
    const err = (d: Endpoint.Endpoint) => new ConnectionClosed({ remote: Endpoint.format(d), message: `connection to ${Endpoint.format(d)} is closed` })
    return Effect.all([
      Queue.fail(toAcceptor.messages, err(acceptorEndpoint)),
      Queue.fail(toAcceptor.handshake, err(acceptorEndpoint)),
      Queue.fail(toDialer.messages, err(dialerEndpoint)),
      Queue.fail(toDialer.handshake, err(dialerEndpoint)),
      Deferred.succeed(closed, undefined)
    ], { discard: true })
  })

  const end = (local: Endpoint.Endpoint, remote: Endpoint.Endpoint, outbound: Direction, inbound: Direction): Connection => {
    const remoteText = Endpoint.format(remote)
    const closedError = () => new ConnectionClosed({ remote: remoteText, message: `connection to ${remoteText} is closed` })
    const failIfClosed = Effect.suspend(() => (isClosed ? Effect.fail(closedError()) : Effect.void))
    let pending: ReadonlyArray<Received> = []
    let pendingIndex = 0
    const sent = new FlowMonitor(created)
    const received = new FlowMonitor(created)
    const delivered = (item: Received) => {
      received.update(item.data.length, clock.currentTimeMillisUnsafe())
      return item
    }

    const exchange = Effect.fn("MemoryConnection.exchange")(function* (options: HandshakeOptions): Effect.fn.Return<Peer, ConnectionClosed | HandshakeAuthFailed | InvalidPeerNodeInfo> {
      yield* failIfClosed
      const challenge = new Uint8Array(randomBytes(32))
      yield* Queue.offer(outbound.handshake, {
        _tag: "Hello",
        nodeInfo: NodeInfo.encode(options.nodeInfo),
        publicKey: options.nodeKey.publicKey,
        challenge
      })
      const hello = yield* Queue.take(inbound.handshake)
      if (hello._tag !== "Hello") {
        return yield* new HandshakeAuthFailed({ remote: remoteText, message: `${remoteText} sent its signature before its hello` })
      }
      const info = NodeInfo.decode(hello.nodeInfo)
      if (Result.isFailure(info)) {
        return yield* new InvalidPeerNodeInfo({ remote: remoteText, nodeId: "", reason: info.failure.reason, message: `handshake with ${remoteText}: ${info.failure.message}` })
      }
      yield* Queue.offer(outbound.handshake, { _tag: "Auth", signature: NodeKey.sign(options.nodeKey, signedBytes(hello.challenge)) })
      const auth = yield* Queue.take(inbound.handshake)
      if (auth._tag !== "Auth" || !NodeKey.verify(hello.publicKey, signedBytes(challenge), auth.signature)) {
        return yield* new HandshakeAuthFailed({ remote: remoteText, message: `${remoteText} could not prove it holds the key it presented` })
      }
      return { nodeInfo: info.success, publicKey: hello.publicKey }
    })

    return {
      localEndpoint: local,
      remoteEndpoint: remote,
      handshake: (options) => Handshake.run(remoteText, options, exchange(options)),
      send: (channelId, data) =>
        Effect.suspend(() => {
          if (isClosed) return Effect.fail(closedError())
          sent.update(data.length, clock.currentTimeMillisUnsafe())
          return Queue.offerUnsafe(outbound.messages, { channelId, data })
            ? Effect.void
            : Effect.flatMap(Queue.offer(outbound.messages, { channelId, data }), (ok) => (ok ? Effect.void : Effect.fail(closedError())))
        }),
      receive: Effect.suspend(() => {
        if (isClosed) return Effect.fail(closedError())
        // Take everything buffered at once and hand it out one by one: one wake-up per batch.
        if (pending.length > pendingIndex) return Effect.succeed(delivered(pending[pendingIndex++]!))
        return Effect.map(Queue.takeAll(inbound.messages), (batch) => {
          pending = batch
          pendingIndex = 1
          return delivered(batch[0])
        })
      }),
      close,
      awaitClosed: Deferred.await(closed),
      status: Effect.sync((): ConnectionStatus => {
        const now = clock.currentTimeMillisUnsafe()
        return { duration: now - created, send: sent.status(now), receive: received.status(now), channels: [] }
      })
    }
  }

  return {
    dialer: end(dialerEndpoint, acceptorEndpoint, toAcceptor, toDialer),
    acceptor: end(acceptorEndpoint, dialerEndpoint, toDialer, toAcceptor),
    close,
    isClosed: () => isClosed
  }
})

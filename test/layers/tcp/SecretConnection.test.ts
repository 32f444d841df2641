/**
 * `SecretConnection.handshake` with our NodeInfo passed in: the AuthSigMessage and the NodeInfo
 * leave in one write, frame 0 and frame 1 as without it, and a peer that sends them in two writes
 * (the other side here, or CometBFT) completes the exchange with it.
 */
import { assert, it } from "@effect/vitest"
import { Effect, Queue } from "effect"
import * as NodeInfo from "../../../src/domain/NodeInfo.ts"
import * as NodeKey from "../../../src/domain/NodeKey.ts"
import type { ByteStream } from "../../../src/layers/tcp/ByteStream.ts"
import * as SecretConnection from "../../../src/layers/tcp/SecretConnection.ts"
import { SEALED_FRAME_SIZE, nodeCryptoAead } from "../../../src/wire/FrameCipher.ts"
import { EPHEMERAL_KEY_MESSAGE_LENGTH } from "../../../src/wire/SecretConnectionCrypto.ts"

/** Two ends of an in-memory byte pipe; `writes` records each end's writes. */
const pipe = Effect.gen(function* () {
  const ab = yield* Queue.unbounded<Uint8Array>()
  const ba = yield* Queue.unbounded<Uint8Array>()
  const end = (incoming: Queue.Queue<Uint8Array>, outgoing: Queue.Queue<Uint8Array>) => {
    const writes: Array<number> = []
    const stream: ByteStream = {
      read: Queue.take(incoming),
      push: () => {
        throw new Error("the handshake tests only pull")
      },
      pause: () => {},
      resume: () => {},
      write: (chunk) => Effect.sync(() => {
        writes.push(chunk.length)
        Queue.offerUnsafe(outgoing, chunk.slice())
      }),
      tryWrite: (chunk) => (writes.push(chunk.length), Queue.offerUnsafe(outgoing, chunk.slice()), true),
      cancelDrained: () => {},
      close: Effect.void
    }
    return { stream, writes }
  }
  return [end(ba, ab), end(ab, ba)] as const
})

const info = (key: NodeKey.NodeKey) => NodeInfo.make({ nodeId: key.nodeId, listenAddr: "tcp://127.0.0.1:26656", network: "test", moniker: "m", channels: [1] })

it.effect("with our NodeInfo, the AuthSigMessage and the NodeInfo go in one write of two frames; both sides get the peer's NodeInfo", () =>
  Effect.gen(function* () {
    const [a, b] = yield* pipe
    const keyA = NodeKey.fromSeed(new Uint8Array(32).fill(1))
    const keyB = NodeKey.fromSeed(new Uint8Array(32).fill(2))
    const side = (end: typeof a, key: NodeKey.NodeKey, early: boolean) =>
      Effect.gen(function* () {
        const ours = info(key)
        const secret = yield* SecretConnection.handshake(end.stream, key, "peer", nodeCryptoAead, Number.POSITIVE_INFINITY, early ? ours : undefined)
        const theirs = yield* SecretConnection.exchangeNodeInfo(end.stream, secret, ours, "peer")
        return { secret, theirs }
      })
    const [ra, rb] = yield* Effect.all([side(a, keyA, true), side(b, keyB, false)], { concurrency: 2 })
    assert.deepStrictEqual(a.writes, [EPHEMERAL_KEY_MESSAGE_LENGTH, 2 * SEALED_FRAME_SIZE])
    assert.deepStrictEqual(b.writes, [EPHEMERAL_KEY_MESSAGE_LENGTH, SEALED_FRAME_SIZE, SEALED_FRAME_SIZE])
    assert.deepStrictEqual(ra.secret.remotePublicKey, keyB.publicKey)
    assert.deepStrictEqual(rb.secret.remotePublicKey, keyA.publicKey)
    assert.strictEqual(ra.theirs.nodeId, keyB.nodeId)
    assert.strictEqual(rb.theirs.nodeId, keyA.nodeId)
  }))

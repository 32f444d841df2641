/**
 * The `testnet` command's probe reactor: on its own channel (`0x7f`), every node pings each peer
 * once a second and answers pings at once, so the live view can show messages per second and link
 * round-trip times. Messages are `google.protobuf.BytesValue`s carrying 9 bytes: a kind (1 ping,
 * 2 pong) and the pinger's clock in nanoseconds (big-endian u64), echoed back in the pong. Times
 * come from `Clock`, so under `TestClock` the round trips are virtual.
 *
 * @since 0.1.0
 */
import { create } from "@bufbuild/protobuf"
import { BytesValueSchema, type BytesValue } from "@bufbuild/protobuf/wkt"
import { Clock, Effect, Stream, type Scope } from "effect"
import * as ChannelDescriptor from "../domain/ChannelDescriptor.ts"
import * as Envelope from "../domain/Envelope.ts"
import type { Router } from "../services/Router.ts"

/** The probe channel ID: high enough to stay clear of CometBFT's reactors (0x00-0x61). */
export const CHANNEL_ID = 0x7f

/** The probe channel: small messages, a few queued per peer. */
export const descriptor: ChannelDescriptor.ChannelDescriptor<typeof BytesValueSchema> = ChannelDescriptor.make({
  id: CHANNEL_ID,
  name: "probe",
  messageType: BytesValueSchema,
  priority: 1,
  sendQueueCapacity: 16,
  recvMessageCapacity: 64,
  recvBufferCapacity: 1024
})

/** How often each node pings each peer, in ms. */
export const PING_INTERVAL = 1_000

const PING = 1
const PONG = 2

/** A probe message. */
export interface Probe {
  readonly kind: "ping" | "pong"
  /** The pinger's clock when it sent the ping, in nanoseconds. */
  readonly sentAt: bigint
}

/** The wire form of a probe message. */
export const encode = (probe: Probe): BytesValue => {
  const value = new Uint8Array(9)
  value[0] = probe.kind === "ping" ? PING : PONG
  new DataView(value.buffer).setBigUint64(1, probe.sentAt)
  return create(BytesValueSchema, { value })
}

/** Reads a probe message; anything else gives `undefined`. */
export const decode = (message: BytesValue): Probe | undefined => {
  const v = message.value
  if (v.length !== 9 || (v[0] !== PING && v[0] !== PONG)) return undefined
  return { kind: v[0] === PING ? "ping" : "pong", sentAt: new DataView(v.buffer, v.byteOffset, v.byteLength).getBigUint64(1) }
}

/** What a node's probe counted since the last {@link Handle.take}. */
export interface Counts {
  /** Probe messages received (pings and pongs). */
  readonly received: number
  /** Probe messages sent (pings and pongs). */
  readonly sent: number
  /** Round-trip times of the pongs received, in ms. */
  readonly rtts: ReadonlyArray<number>
}

/** A running probe. */
export interface Handle {
  /** The counts since the previous call, resetting them. */
  readonly take: Effect.Effect<Counts>
}

/** Why the probe channel could not be opened (the router's `openChannel` errors). */
export type OpenError = Effect.Error<ReturnType<Router["Service"]["openChannel"]>>

/**
 * Opens the probe channel on `router` and runs the reactor in the caller's scope: a fiber answering
 * pings and timing pongs, and one pinging every connected peer that serves the channel every
 * {@link PING_INTERVAL}. Fails if the channel is already open.
 */
export const run = Effect.fn("Probe.run")(function* (router: Router["Service"]): Effect.fn.Return<Handle, OpenError, Scope.Scope> {
  const channel = yield* router.openChannel(descriptor)
  let received = 0
  let sent = 0
  let rtts: Array<number> = []

  const answer = Stream.runForEach(channel.messages, (envelope) =>
    Effect.gen(function* () {
      const probe = decode(envelope.message)
      if (probe === undefined) return
      received++
      if (probe.kind === "ping") {
        sent++
        yield* channel.send(Envelope.to(envelope.from, encode({ kind: "pong", sentAt: probe.sentAt })))
      } else {
        const now = yield* Clock.currentTimeNanos
        rtts.push(Number(now - probe.sentAt) / 1e6)
      }
    }))

  const ping = Effect.gen(function* () {
    while (true) {
      const peers = (yield* router.peers).filter((p) => p.channels.has(CHANNEL_ID))
      const sentAt = yield* Clock.currentTimeNanos
      for (const peer of peers) {
        sent++
        yield* channel.send(Envelope.to(peer.nodeId, encode({ kind: "ping", sentAt })))
      }
      yield* Effect.sleep(PING_INTERVAL)
    }
  })

  yield* Effect.forkScoped(answer)
  yield* Effect.forkScoped(ping)

  return {
    take: Effect.sync(() => {
      const counts: Counts = { received, sent, rtts }
      received = 0
      sent = 0
      rtts = []
      return counts
    })
  }
})

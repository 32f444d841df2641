/**
 * End to end, without I/O: ChannelScheduler.fill -> SecretWriter -> random TCP chunking ->
 * SecretReader -> PacketReader -> Reassembler gives back every message, per channel, in order.
 */
import { assert, describe, it } from "@effect/vitest"
import { randomBytes } from "node:crypto"
import * as fc from "fast-check"
import { ChannelScheduler } from "../../src/wire/ChannelScheduler.ts"
import { FrameOpener, FrameSealer } from "../../src/wire/FrameCipher.ts"
import { encodePingInto, encodePongInto, type Packet } from "../../src/wire/PacketCodec.ts"
import { PacketReader } from "../../src/wire/PacketReader.ts"
import { Reassembler } from "../../src/wire/Reassembler.ts"
import { SecretReader, SecretWriter } from "../../src/wire/SecretStream.ts"
import { toHex } from "../fixtures.ts"

const CHANNELS = [
  { id: 0x00, priority: 1, sendQueueCapacity: 10, recvMessageCapacity: 64000 },
  { id: 0x20, priority: 6, sendQueueCapacity: 100, recvMessageCapacity: 1048576 },
  { id: 0x30, priority: 5, sendQueueCapacity: 1, recvMessageCapacity: 1048576 },
  { id: 0x40, priority: 5, sendQueueCapacity: 1000, recvMessageCapacity: 1048576 }
] as const

const arbMessage = fc.oneof(
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 40 }) },
  { weight: 3, arbitrary: fc.uint8Array({ minLength: 1000, maxLength: 1100 }) },
  { weight: 1, arbitrary: fc.uint8Array({ minLength: 2000, maxLength: 9000 }) }
)

describe("pure MConnection + SecretConnection pipeline", () => {
  it("delivers every message on every channel, in order, through random batching and TCP chunking", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom(...CHANNELS.map((c) => c.id)), arbMessage), { maxLength: 60 }),
        fc.array(fc.integer({ min: 1, max: 20 }), { minLength: 1, maxLength: 10 }),
        fc.array(fc.integer({ min: 1, max: 5000 }), { minLength: 1, maxLength: 10 }),
        fc.boolean(),
        (messages, batchSizes, chunkSizes, pings) => {
          const key = randomBytes(32)
          const scheduler = new ChannelScheduler(CHANNELS)
          const writer = new SecretWriter(new FrameSealer(key))
          const secretReader = new SecretReader(new FrameOpener(key))
          const packetReader = new PacketReader()
          const reassembler = new Reassembler(CHANNELS)

          // Sender: keep the queues topped up in order, fill batches, seal each batch once.
          const backlog = new Map<number, Array<Uint8Array>>(CHANNELS.map((c) => [c.id, []]))
          for (const [ch, m] of messages) backlog.get(ch)!.push(m)
          const wire: Array<Uint8Array> = []
          const batch = new Uint8Array(64 * 1024)
          let round = 0
          let pingsSent = 0
          for (;;) {
            for (const [ch, list] of backlog) while (list.length > 0 && scheduler.tryEnqueue(ch, list[0]!)) list.shift()
            let end = 0
            if (pings && round % 3 === 0) {
              end = encodePingInto(batch, end)
              end = encodePongInto(batch, end)
              pingsSent++
            }
            end = scheduler.fill(batch, end, batch.length - end, batchSizes[round % batchSizes.length]!)
            if (end > 0) wire.push(writer.sealRange(batch, 0, end))
            round++
            if (!scheduler.hasPending && [...backlog.values()].every((l) => l.length === 0)) break
          }

          // Receiver: random TCP chunks.
          const stream = Buffer.concat(wire)
          const received = new Map<number, Array<string>>(CHANNELS.map((c) => [c.id, []]))
          let pingsReceived = 0
          let pongsReceived = 0
          const onPacket = (p: Packet): void => {
            if (p._tag === "Ping") pingsReceived++
            else if (p._tag === "Pong") pongsReceived++
            else {
              const message = reassembler.onMsg(p.channelId, p.eof, p.data)
              if (message !== undefined) received.get(p.channelId)!.push(toHex(message))
            }
          }
          for (let pos = 0, i = 0; pos < stream.length; i++) {
            const size = chunkSizes[i % chunkSizes.length]!
            for (const plaintext of secretReader.push(stream.subarray(pos, pos + size))) {
              for (const p of packetReader.push(plaintext)) onPacket(p)
            }
            pos += size
          }

          assert.strictEqual(secretReader.bufferedBytes, 0)
          assert.isTrue(packetReader.atBoundary)
          assert.strictEqual(pingsReceived, pingsSent)
          assert.strictEqual(pongsReceived, pingsSent)
          for (const c of CHANNELS) {
            assert.deepStrictEqual(received.get(c.id), messages.filter(([ch]) => ch === c.id).map(([, m]) => toHex(m)), `channel ${c.id}`)
            assert.strictEqual(reassembler.bufferedBytes(c.id), 0)
          }
        }
      ),
      { numRuns: 60 }
    )
  })
})

/**
 * A channel: an ID (0-255 on the wire), a priority for the send scheduler, queue and size limits, and
 * the protobuf message type carried on it (docs/ARCHITECTURE.md#channels-and-envelopes, docs/PROTOCOL.md#channel-descriptors).
 *
 * @since 0.1.0
 */
import type { DescMessage, MessageShape } from "@bufbuild/protobuf"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"

/** Channel IDs are bytes on the MConnection wire. */
export type ChannelId = number

/** Describes a channel typed by the protobuf message `Desc`. */
export interface ChannelDescriptor<Desc extends DescMessage = DescMessage> {
  readonly id: ChannelId
  /** Human-readable name for logs and metrics. */
  readonly name: string
  /** Generated message descriptor of what the channel carries. */
  readonly messageType: Desc
  /** Scheduling weight, > 0: higher sends more. */
  readonly priority: number
  /** Messages queued per peer before senders wait. Default 1. */
  readonly sendQueueCapacity: number
  /** Largest message accepted from a peer, in bytes. Default 22020096 (21 MiB). */
  readonly recvMessageCapacity: number
  /** Inbound messages buffered for the reactor. Default 4096. */
  readonly recvBufferCapacity: number
}

/** The message type a descriptor carries. */
export type MessageOf<D> = D extends ChannelDescriptor<infer Desc> ? MessageShape<Desc> : never

/** Defaults applied by {@link make} (MConnection's). */
export const defaults = {
  priority: 1,
  sendQueueCapacity: 1,
  recvMessageCapacity: 22020096,
  recvBufferCapacity: 4096
} as const

/** A descriptor that breaks a rule. */
export class InvalidChannelDescriptor extends Schema.TaggedError<InvalidChannelDescriptor>()("InvalidChannelDescriptor", {
  channelId: Schema.Number,
  message: Schema.String
}) {}

/** Fills in defaults. Use {@link validate} (the router does) to check the numbers. */
export const make = <Desc extends DescMessage>(fields: {
  readonly id: ChannelId
  readonly messageType: Desc
  readonly name?: string
  readonly priority?: number
  readonly sendQueueCapacity?: number
  readonly recvMessageCapacity?: number
  readonly recvBufferCapacity?: number
}): ChannelDescriptor<Desc> => ({
  id: fields.id,
  name: fields.name ?? `channel-0x${fields.id.toString(16).padStart(2, "0")}`,
  messageType: fields.messageType,
  priority: fields.priority ?? defaults.priority,
  sendQueueCapacity: fields.sendQueueCapacity ?? defaults.sendQueueCapacity,
  recvMessageCapacity: fields.recvMessageCapacity ?? defaults.recvMessageCapacity,
  recvBufferCapacity: fields.recvBufferCapacity ?? defaults.recvBufferCapacity
})

const positiveInt = (n: number) => Number.isSafeInteger(n) && n > 0

/** Checks the ID is a byte and every number is a positive integer (a priority of 0 is fatal in MConnection). */
export const validate = <D extends ChannelDescriptor>(d: D): Result.Result<D, InvalidChannelDescriptor> => {
  const bad = (message: string) => Result.fail(new InvalidChannelDescriptor({ channelId: d.id, message: `channel ${d.id} (${d.name}): ${message}` }))
  if (!Number.isInteger(d.id) || d.id < 0 || d.id > 255) return bad("id must be an integer from 0 to 255")
  if (!positiveInt(d.priority)) return bad(`priority must be a positive integer, got ${d.priority}`)
  if (!positiveInt(d.sendQueueCapacity)) return bad(`sendQueueCapacity must be a positive integer, got ${d.sendQueueCapacity}`)
  if (!positiveInt(d.recvMessageCapacity)) return bad(`recvMessageCapacity must be a positive integer, got ${d.recvMessageCapacity}`)
  if (!positiveInt(d.recvBufferCapacity)) return bad(`recvBufferCapacity must be a positive integer, got ${d.recvBufferCapacity}`)
  return Result.succeed(d)
}

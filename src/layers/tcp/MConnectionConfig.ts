/**
 * The MConnection's settings, with CometBFT's defaults and their bounds, as one schema (the
 * `domain/Options.ts` style): rates and sizes as integers, periods as milliseconds or text.
 *
 * @since 0.1.0
 */
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as Opt from "../../domain/Options.ts"

/** CometBFT's defaults. */
export const defaults = {
  maxPacketMsgPayloadSize: 1024,
  sendRate: 5_120_000,
  recvRate: 5_120_000,
  pingInterval: 60_000,
  pongTimeout: 45_000,
  receiveBuffer: 16,
  sendTimeout: 10_000
} as const

const positive = (field: string) => (n: number) => n > 0 || `${field} must be positive`

/** A PacketMsg payload size in bytes (`max_packet_msg_payload_size`). */
export const PayloadSize = Opt.Between(1, 1 << 20)

/** A rate in bytes per second (`send_rate`, `recv_rate`). */
export const Rate = Opt.Between(1, Number.MAX_SAFE_INTEGER)

/** MConnection settings (CometBFT names in parentheses); every field optional, defaults above. */
export const ConfigInput = Schema.Struct({
  /** Largest PacketMsg payload (`max_packet_msg_payload_size`). Default 1024. */
  maxPacketMsgPayloadSize: Opt.withDefault(PayloadSize, defaults.maxPacketMsgPayloadSize),
  /** Bytes per second sent at most (`send_rate`). Default 5120000. */
  sendRate: Opt.withDefault(Rate, defaults.sendRate),
  /** Bytes per second received at most (`recv_rate`). Default 5120000. */
  recvRate: Opt.withDefault(Rate, defaults.recvRate),
  /** Ping period. Default 60 s. */
  pingInterval: Opt.withDefault(Opt.Millis, defaults.pingInterval),
  /** Silence after which the connection is closed ("pong timeout"). Default 45 s; must be below `pingInterval`. */
  pongTimeout: Opt.withDefault(Opt.Millis, defaults.pongTimeout),
  /** Complete messages buffered for `receive` before reading from the socket pauses. Default 16. */
  receiveBuffer: Opt.withDefault(Opt.Between(1, 1_000_000), defaults.receiveBuffer),
  /** How long `send` waits for room in a full channel queue before the connection is closed. Default 10 s. */
  sendTimeout: Opt.withDefault(Opt.Millis, defaults.sendTimeout)
}).check(
  Opt.rule("pingInterval", (c) => positive("pingInterval")(c.pingInterval)),
  Opt.rule("pongTimeout", (c) => c.pongTimeout > 0 && c.pongTimeout < c.pingInterval || `pongTimeout (${c.pongTimeout} ms) must be above 0 and below pingInterval (${c.pingInterval} ms)`),
  Opt.rule("sendTimeout", (c) => positive("sendTimeout")(c.sendTimeout))
)

/** Settings as callers write them. */
export type ConfigInput = typeof ConfigInput.Encoded

/** Settings, validated, periods in milliseconds. */
export type Config = typeof ConfigInput.Type

/** Decodes settings; the problem names the setting. */
export const decodeConfig = (input: unknown): Result.Result<Config, Opt.Problem> => Opt.decode(ConfigInput, input)

/** The first setting of a decoded-shaped record that is out of range, as a message naming it, or `undefined`. */
export const validateConfig = (c: ConfigInput): string | undefined => {
  const decoded = decodeConfig(c)
  return Result.isFailure(decoded) ? `${decoded.failure.option}: ${decoded.failure.message}` : undefined
}

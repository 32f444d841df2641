/**
 * The MConnection's settings, with CometBFT's defaults and their bounds.
 *
 * @since 0.1.0
 */

/** MConnection settings (CometBFT names in parentheses). */
export interface Config {
  /** Largest PacketMsg payload (`max_packet_msg_payload_size`). Default 1024. */
  readonly maxPacketMsgPayloadSize: number
  /** Bytes per second sent at most (`send_rate`). Default 5120000. */
  readonly sendRate: number
  /** Bytes per second received at most (`recv_rate`). Default 5120000. */
  readonly recvRate: number
  /** Ping period. Default 60 s. */
  readonly pingInterval: number
  /** Silence after which the connection is closed ("pong timeout"). Default 45 s; must be below `pingInterval`. */
  readonly pongTimeout: number
  /** Complete messages buffered for `receive` before reading from the socket pauses. Default 16. */
  readonly receiveBuffer: number
  /** How long `send` waits for room in a full channel queue before the connection is closed. Default 10 s. */
  readonly sendTimeout: number
}

/** CometBFT's defaults. */
export const defaults: Config = {
  maxPacketMsgPayloadSize: 1024,
  sendRate: 5_120_000,
  recvRate: 5_120_000,
  pingInterval: 60_000,
  pongTimeout: 45_000,
  receiveBuffer: 16,
  sendTimeout: 10_000
}

/** The first setting that is out of range, as a message naming it, or `undefined`. */
export const validateConfig = (c: Config): string | undefined => {
  const positive = ["maxPacketMsgPayloadSize", "sendRate", "recvRate", "pingInterval", "pongTimeout", "receiveBuffer", "sendTimeout"] as const
  for (const k of positive) if (!(Number.isFinite(c[k]) && c[k] > 0)) return `${k} must be a positive number, got ${c[k]}`
  if (!Number.isInteger(c.maxPacketMsgPayloadSize) || !Number.isInteger(c.receiveBuffer)) return "maxPacketMsgPayloadSize and receiveBuffer must be integers"
  if (c.pongTimeout >= c.pingInterval) return `pongTimeout (${c.pongTimeout} ms) must be below pingInterval (${c.pingInterval} ms)`
  return undefined
}


/**
 * A connection's synchronous side, for transports that can take or hand out a message without
 * waiting (the memory transport registers one for each end it makes). The router uses it in two
 * places: a reactor's `send` writes a message straight to the connection when nothing is queued for
 * the peer (one queue hop and one wake-up of the send loop fewer), and the route's loops, once
 * woken, drain their queue and the connection with plain calls instead of an effect per message.
 * Whatever cannot go at once (a full connection, nothing received yet) takes the effectful
 * `send`/`receive`, so order, backpressure and every count stay the loops'.
 *
 * It lives beside the Connection rather than in it so that the transport contract stays as small as
 * `services/Transport.ts` promises; a transport without one is routed as before.
 *
 * @since 0.1.0
 */
import type { Connection, Received } from "../../services/Transport.ts"

/** The synchronous side of one end of a connection. */
export interface FastPath {
  /**
   * Sends at once if the connection can take the message without waiting, exactly as `send` would;
   * `false` (nothing sent) if `send` would wait, or fail because the connection is closed.
   */
  readonly sendUnsafe: (channelId: number, data: Uint8Array) => boolean
  /** The next message if one has arrived, exactly as `receive` would hand it out; `undefined` if `receive` would wait or fail. */
  readonly receiveUnsafe: () => Received | undefined
}

const paths = new WeakMap<Connection, FastPath>()

/** Gives `conn` a fast path; a transport calls it for each end it makes. */
export const register = (conn: Connection, path: FastPath): void => {
  paths.set(conn, path)
}

/** The fast path of `conn`, if its transport gave it one. */
export const of = (conn: Connection): FastPath | undefined => paths.get(conn)

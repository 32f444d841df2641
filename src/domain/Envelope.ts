/**
 * A message travelling between a reactor and peers (docs/ARCHITECTURE.md#channels-and-envelopes): outbound envelopes name a peer
 * (`to`) or are broadcast; inbound ones carry the sender (`from`).
 *
 * @since 0.1.0
 */
import type { NodeId } from "./NodeId.ts"

/** An inbound message, as a reactor receives it. */
export interface Inbound<M> {
  readonly from: NodeId
  readonly channelId: number
  readonly message: M
}

/** An outbound message: to one peer, or to every connected peer that has the channel. */
export type Outbound<M> =
  | { readonly to: NodeId; readonly broadcast?: false; readonly message: M }
  | { readonly broadcast: true; readonly to?: undefined; readonly message: M }

/** Unicast envelope. */
export const to = <M>(peer: NodeId, message: M): Outbound<M> => ({ to: peer, message })

/** Broadcast envelope. */
export const broadcast = <M>(message: M): Outbound<M> => ({ broadcast: true, message })

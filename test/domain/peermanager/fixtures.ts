/**
 * The PeerManager's pure core as plain functions: node IDs and addresses of the original's test scenarios
 * (§8 notation), states built from options the way the shell builds them, and a few drivers that
 * chain transitions and fail loudly when a step does not go the way a test assumes.
 */
import { assert } from "@effect/vitest"
import { Result } from "effect"
import * as NodeAddress from "../../../src/domain/NodeAddress.ts"
import * as NodeId from "../../../src/domain/NodeId.ts"
import * as Connections from "../../../src/domain/peermanager/Connections.ts"
import * as Dialing from "../../../src/domain/peermanager/Dialing.ts"
import * as Peers from "../../../src/domain/peermanager/Peers.ts"
import type { Policy } from "../../../src/domain/peermanager/Policy.ts"
import * as State from "../../../src/domain/peermanager/State.ts"
import { decodeOptions, zero, type OptionsInput } from "../../../src/services/PeerManager.ts"

/** A node ID made of 40 copies of one hex character. */
export const nodeId = (c: string): NodeId.NodeId => NodeId.unsafeDecode(c.repeat(40))

/** A node ID from a number (`0…01`, `0…02`, …), for tests that need many peers. */
export const numberedId = (n: number): NodeId.NodeId => NodeId.unsafeDecode(n.toString(16).padStart(40, "0"))

export const self = nodeId("0")
export const a = nodeId("a")
export const b = nodeId("b")
export const c = nodeId("c")
export const d = nodeId("d")
export const e = nodeId("e")

/** `memory:<id>`, the original's default address of a peer. */
export const mem = (id: string): NodeAddress.NodeAddress => NodeAddress.unsafeParse(`memory:${id}`)

/** `tcp://<id>@host:port`. */
export const tcp = (id: string, host = "localhost", port = 26656): NodeAddress.NodeAddress =>
  NodeAddress.unsafeParse(`tcp://${id}@${host}:${port}`)

/** The policy the shell decides by for the original's "PM{…}": zero options plus `options`. */
export const policy = (options: OptionsInput = {}): Policy => Result.getOrThrow(decodeOptions({ ...zero, ...options }))

/** An empty state for `self` under `policy(options)`. */
export const stateWith = (options: OptionsInput = {}, selfId: NodeId.NodeId = self): State.State => State.empty(selfId, policy(options))

/** The state after adding each address at `now` (each must be valid; whether it was kept is not checked). */
export const withAddresses = (state: State.State, addresses: ReadonlyArray<NodeAddress.NodeAddress>, now = 0): State.State =>
  addresses.reduce((s, address) => Result.getOrThrow(Peers.add(s, address, now)).state, state)

/** `tryDialNext` at `now`, which must dispense exactly `expected`; the state after. */
export const dispense = (state: State.State, expected: NodeAddress.NodeAddress, now = 0): State.State => {
  const out = Dialing.tryDialNext(state, now)
  assert.strictEqual(out.value && NodeAddress.format(out.value), NodeAddress.format(expected), "tryDialNext dispensed another address")
  return out.state
}

/** `dialed`, which must admit the connection; the state after. */
export const admitDialed = (state: State.State, address: NodeAddress.NodeAddress, now = 0, ip?: string): State.State => {
  const out = Dialing.dialed(state, address, now, ip)
  assert.isUndefined(out.value, `dialed ${NodeAddress.format(address)} was rejected: ${out.value?.reason}`)
  return out.state
}

/** `accepted`, which must admit the connection; the state after. */
export const admitAccepted = (state: State.State, id: NodeId.NodeId, now = 0, ip?: string): State.State => {
  const out = Connections.accepted(state, id, now, ip)
  assert.isUndefined(out.value, `accepted ${id} was rejected: ${out.value?.reason}`)
  return out.state
}

/** Adds `memory:<id>`, dispenses it and admits the dial: an outbound connection made the usual way. */
export const connectOut = (state: State.State, id: NodeId.NodeId, now = 0): State.State =>
  admitDialed(dispense(withAddresses(state, [mem(id)], now), mem(id), now), mem(id), now)

/** Calls `tryDialNext` until it dispenses nothing; the first letters of the peers dialed, in order. */
export const dialAll = (state: State.State, now = 0): { readonly state: State.State; readonly dialed: Array<string> } => {
  const dialed: Array<string> = []
  for (let out = Dialing.tryDialNext(state, now); out.value !== undefined; out = Dialing.tryDialNext(state, now)) {
    dialed.push(out.value.nodeId.slice(0, 1))
    state = out.state
  }
  return { state, dialed }
}

/** `accepted` for each peer in turn; the rejection reasons (`ok` when admitted). */
export const acceptAll = (state: State.State, ids: ReadonlyArray<NodeId.NodeId>, now = 0): { readonly state: State.State; readonly reasons: Array<string> } => {
  const reasons: Array<string> = []
  for (const id of ids) {
    const out = Connections.accepted(state, id, now)
    reasons.push(out.value?.reason ?? "ok")
    state = out.state
  }
  return { state, reasons }
}

/** The first letters of a set's or map's node IDs, sorted: `"ab"`. */
export const letters = (ids: Iterable<NodeId.NodeId>): string => [...ids].map((id) => id.slice(0, 1)).sort().join("")

/** The address as text, or `undefined`. */
export const show = (address: NodeAddress.NodeAddress | undefined): string | undefined => address && NodeAddress.format(address)

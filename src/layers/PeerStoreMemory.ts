/**
 * An in-memory peer store for tests and ephemeral nodes. It keeps each peer as encoded protobuf
 * bytes, just as the SQLite store keeps its rows. A record therefore goes through
 * `PeerRecord.encode`/`decode` between `put` and `load`. Tests that pass on this store exercise
 * the same round trip as production, so a field that is not stored shows up missing here as well.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Ban from "../domain/Ban.ts"
import type * as NodeId from "../domain/NodeId.ts"
import * as PeerRecord from "../domain/PeerRecord.ts"
import { PeerStore, PeerStoreError } from "../services/PeerStore.ts"
import { decodeBans, decodeRows, type Service } from "./PeerStoreRows.ts"

export { corruptRows, decodeBans, decodeRows, type Row, type Service } from "./PeerStoreRows.ts"


/** Whether `encode` can write the record: what it turns into protobuf integers is whole and finite. */
const encodable = (peer: PeerRecord.PeerRecord): boolean => {
  const time = (t: number | undefined) => t === undefined || Number.isFinite(t)
  return Number.isSafeInteger(peer.mutableScore) && time(peer.lastConnected) &&
    peer.addresses.every((a) => Number.isInteger(a.dialFailures) && a.dialFailures >= 0 && a.dialFailures <= 0xffffffff && time(a.lastDialSuccess) && time(a.lastDialFailure))
}

/**
 * A peer store backed by `rows`, a map from node ID to encoded record (default: a new empty map).
 * Pass the same map to two calls to "reopen" a store, for example to check what survives a
 * restart. Tests may also write bytes into the map directly to simulate damaged rows. `put` fails
 * with `PeerStoreError` (path `"memory"`) only for a record that cannot be encoded.
 *
 * Without `rows`, nobody else sees the map, so a record is encoded when the store is loaded
 * rather than at every `put`: the PeerManager writes on most transitions, and a simulation of many
 * nodes would spend more on encoding rows than on anything they decide. What `load` returns has
 * been through `encode` and `decode` all the same, and a record `encode` would refuse still fails
 * its `put`.
 */
export const makeMemory = (rows?: Map<string, Uint8Array>, banRows?: Map<string, Uint8Array>): Effect.Effect<Service> =>
  Effect.sync(() => {
    // Created per call, not as a default parameter value, so every build of `layerMemory` starts empty.
    const store = rows ?? new Map<string, Uint8Array>()
    /** Records put but not encoded yet (only when the store owns its rows). */
    const unencoded = new Map<string, PeerRecord.PeerRecord>()
    const lazy = rows === undefined
    const bans = banRows ?? new Map<string, Uint8Array>()
    const encodeInto = (peer: PeerRecord.PeerRecord) =>
      Effect.try({
        try: () => void store.set(peer.id, PeerRecord.encode(peer)),
        // Only a record that breaks its own type (say, a fractional score) fails to encode.
        catch: (e) => new PeerStoreError({ path: "memory", operation: "put", message: `cannot encode peer ${peer.id}: ${e instanceof Error ? e.message : String(e)}` })
      })
    return PeerStore.of({
      load: Effect.suspend(() => {
        for (const [id, peer] of unencoded) store.set(id, PeerRecord.encode(peer))
        unencoded.clear()
        return decodeRows("memory", Array.from(store, ([id, info]) => ({ id, info })))
      }).pipe(Effect.withSpan("PeerStore.load")),
      // The writes carry no span of their own: the PeerManager writes through them on most
      // transitions, and in a simulation of many nodes a span per row costs more than the row.
      put: (peer: PeerRecord.PeerRecord) => {
        if (!lazy || !encodable(peer)) return encodeInto(peer)
        return Effect.sync(() => {
          store.delete(peer.id)
          unencoded.set(peer.id, peer)
        })
      },
      remove: (id: NodeId.NodeId) =>
        Effect.sync(() => {
          store.delete(id)
          unencoded.delete(id)
        }),
      loadBans: Effect.suspend(() => decodeBans("memory", Array.from(bans, ([subject, info]) => ({ subject, info })))),
      putBan: (ban: Ban.Ban) => Effect.sync(() => void bans.set(Ban.key(ban.subject), Ban.encode(ban))),
      removeBan: (key: string) => Effect.sync(() => void bans.delete(key))
    })
  })

/** A fresh, empty in-memory peer store. Its contents are lost when the layer is released. */
export const layerMemory: Layer.Layer<PeerStore> = Layer.effect(PeerStore, makeMemory())

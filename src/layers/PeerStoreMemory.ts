/**
 * An in-memory peer store for tests and ephemeral nodes. It keeps each peer as encoded protobuf
 * bytes, just as the SQLite store keeps its rows. A record therefore goes through
 * `PeerRecord.encode`/`decode` on every `put`/`load`. Tests that pass on this store exercise the
 * same round trip as production, so a field that is not stored shows up missing here as well.
 *
 * @since 0.1.0
 */
import { Effect, Layer } from "effect"
import * as Ban from "../domain/Ban.ts"
import type * as NodeId from "../domain/NodeId.ts"
import * as PeerRecord from "../domain/PeerRecord.ts"
import { PeerStore, PeerStoreError } from "../services/PeerStore.ts"
import { decodeBans, decodeRows, type Service } from "./PeerStoreRows.ts"

export { corruptRows, decodeBans, decodeRows, type Row, type Service } from "./PeerStoreRows.ts"


/**
 * A peer store backed by `rows`, a map from node ID to encoded record (default: a new empty map).
 * Pass the same map to two calls to "reopen" a store, for example to check what survives a
 * restart. Tests may also write bytes into the map directly to simulate damaged rows. `put` fails
 * with `PeerStoreError` (path `"memory"`) only for a record that cannot be encoded.
 */
export const makeMemory = (rows?: Map<string, Uint8Array>, banRows?: Map<string, Uint8Array>): Effect.Effect<Service> =>
  Effect.sync(() => {
    // Created per call, not as a default parameter value, so every build of `layerMemory` starts empty.
    const store = rows ?? new Map<string, Uint8Array>()
    const bans = banRows ?? new Map<string, Uint8Array>()
    return PeerStore.of({
      load: Effect.suspend(() => decodeRows("memory", Array.from(store, ([id, info]) => ({ id, info })))).pipe(
        Effect.withSpan("PeerStore.load")
      ),
      // The writes carry no span of their own: the PeerManager writes through them on most
      // transitions, and in a simulation of many nodes a span per row costs more than the row.
      put: (peer: PeerRecord.PeerRecord) =>
        Effect.try({
          try: () => void store.set(peer.id, PeerRecord.encode(peer)),
          // Only a record that breaks its own type (say, a fractional score) fails to encode.
          catch: (e) => new PeerStoreError({ path: "memory", operation: "put", message: `cannot encode peer ${peer.id}: ${e instanceof Error ? e.message : String(e)}` })
        }),
      remove: (id: NodeId.NodeId) => Effect.sync(() => void store.delete(id)),
      loadBans: Effect.suspend(() => decodeBans("memory", Array.from(bans, ([subject, info]) => ({ subject, info })))),
      putBan: (ban: Ban.Ban) => Effect.sync(() => void bans.set(Ban.key(ban.subject), Ban.encode(ban))),
      removeBan: (key: string) => Effect.sync(() => void bans.delete(key))
    })
  })

/** A fresh, empty in-memory peer store. Its contents are lost when the layer is released. */
export const layerMemory: Layer.Layer<PeerStore> = Layer.effect(PeerStore, makeMemory())

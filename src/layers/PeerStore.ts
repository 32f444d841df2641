/**
 * The `PeerStore` namespace: the service, and its two layers, SQLite on disk (`layerSqlite`, the
 * production store, in `PeerStoreSqlite.ts`) and in memory (`layerMemory`, in `PeerStoreMemory.ts`).
 *
 * @since 0.1.0
 */
export * from "../services/PeerStore.ts"
export { layerSqlite, type SqliteOptions } from "./PeerStoreSqlite.ts"
export { layerMemory, makeMemory } from "./PeerStoreMemory.ts"

/** `PeerStore`: the service, and its SQLite and in-memory layers. */
export * from "../services/PeerStore.ts"
export { layerSqlite, type SqliteOptions } from "../layers/PeerStoreSqlite.ts"
export { layerMemory, makeMemory } from "../layers/PeerStoreMemory.ts"

/**
 * Reading and writing CometBFT's `node_key.json` on disk. The format itself is `NodeKey`'s.
 *
 * @since 0.1.0
 */
import { mkdir, readFile, rename, writeFile } from "node:fs/promises"
import { dirname } from "node:path"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Predicate from "effect/Predicate"
import * as NodeKey from "../domain/NodeKey.ts"
import { NodeIdentity, NodeKeyFileError } from "../services/NodeIdentity.ts"

export { NodeKeyFileError } from "../services/NodeIdentity.ts"

const isMissing = (e: unknown) => Predicate.hasProperty(e, "code") && e.code === "ENOENT"

/** Reads and parses a key file; a malformed file fails with `InvalidNodeKey` naming it. */
export const read = (path: string): Effect.Effect<NodeKey.NodeKey, NodeKeyFileError | NodeKey.InvalidNodeKey> =>
  Effect.tryPromise({
    try: () => readFile(path, "utf8"),
    catch: (e) => new NodeKeyFileError({ path, message: `cannot read ${path}: ${(e as Error).message}` })
  }).pipe(Effect.flatMap((text) => Effect.fromResult(NodeKey.fromJson(text, path))))

/** Writes a key file (mode 0600) atomically: a crash leaves the old file or the new one, never half. */
export const write = (path: string, key: NodeKey.NodeKey): Effect.Effect<void, NodeKeyFileError> =>
  Effect.tryPromise({
    try: async () => {
      await mkdir(dirname(path), { recursive: true })
      const tmp = `${path}.tmp-${process.pid}`
      await writeFile(tmp, NodeKey.toJson(key), { mode: 0o600 })
      await rename(tmp, path)
    },
    catch: (e) => new NodeKeyFileError({ path, message: `cannot write ${path}: ${(e as Error).message}` })
  })

/** Reads the key file, or generates a key and writes it when the file does not exist. */
export const loadOrGenerate = (path: string): Effect.Effect<NodeKey.NodeKey, NodeKeyFileError | NodeKey.InvalidNodeKey> =>
  Effect.tryPromise({ try: () => readFile(path, "utf8"), catch: (e) => e }).pipe(
    Effect.matchEffect({
      onSuccess: (text) => Effect.fromResult(NodeKey.fromJson(text, path)),
      onFailure: (e) =>
        isMissing(e)
          ? NodeKey.generate().pipe(Effect.tap((key) => write(path, key)))
          : Effect.fail(new NodeKeyFileError({ path, message: `cannot read ${path}: ${(e as Error).message}` }))
    })
  )

/** The node's identity from a CometBFT `node_key.json`, generated and written when the file does not exist. */
export const layer = (path: string): Layer.Layer<NodeIdentity, NodeKeyFileError | NodeKey.InvalidNodeKey> =>
  Layer.effect(NodeIdentity, Effect.map(loadOrGenerate(path), (key) => ({ key })))

import { assert, describe, it } from "@effect/vitest"
import { mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import * as NodeKeyFile from "../../src/layers/NodeKeyFile.ts"

describe("NodeKeyFile", () => {
  it.live("loadOrGenerate writes a key once and reads the same key back", () =>
    Effect.gen(function* () {
      const path = join(mkdtempSync(join(tmpdir(), "p2p-key-")), "config", "node_key.json")
      const a = yield* NodeKeyFile.loadOrGenerate(path)
      const b = yield* NodeKeyFile.loadOrGenerate(path)
      assert.strictEqual(a.nodeId, b.nodeId)
      assert.strictEqual(statSync(path).mode & 0o777, 0o600)
      assert.match(readFileSync(path, "utf8"), /tendermint\/PrivKeyEd25519/)
    }))

  it.live("a malformed key file fails with InvalidNodeKey naming the file, and is left untouched", () =>
    Effect.gen(function* () {
      const path = join(mkdtempSync(join(tmpdir(), "p2p-key-")), "node_key.json")
      writeFileSync(path, "not json")
      const err = yield* Effect.flip(NodeKeyFile.loadOrGenerate(path))
      assert.strictEqual(err._tag, "InvalidNodeKey")
      assert.include(err.message, path)
      assert.strictEqual(readFileSync(path, "utf8"), "not json")
    }))

  it.live("reading a missing file fails with NodeKeyFileError", () =>
    Effect.gen(function* () {
      const err = yield* Effect.flip(NodeKeyFile.read("/nonexistent/dir/node_key.json"))
      assert.strictEqual(err._tag, "NodeKeyFileError")
    }))
})

/**
 * The node's home directory, CometBFT's layout: `config/config.toml`, `config/node_key.json`,
 * `data/peerstore.db`. Reading validates everything before anything is written.
 *
 * @since 0.1.0
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { dirname, join } from "node:path"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import * as NodeKey from "../domain/NodeKey.ts"
import * as Config from "./Config.ts"
import { CommandFailure } from "./Failure.ts"

/** Paths inside a home directory. */
export const paths = (home: string) => ({
  config: join(home, "config", "config.toml"),
  nodeKey: join(home, "config", "node_key.json"),
  data: join(home, "data")
})

/** The configuration file's values (none when there is no file), or a ConfigError naming the key. */
export const readConfigFile = (home: string): Effect.Effect<Config.FileConfig, Config.ConfigError> =>
  Effect.suspend(() => {
    const file = paths(home).config
    if (!existsSync(file)) return Effect.succeed({ values: {}, ignored: [] })
    let text: string
    try {
      text = readFileSync(file, "utf8")
    } catch (e) {
      return Effect.fail(new Config.ConfigError({ key: file, message: `${file}: cannot read: ${(e as Error).message}` }))
    }
    return Effect.fromResult(Config.fromToml(file, text))
  })

/**
 * The node key in the home directory, if the file exists. A file that cannot be read (a directory,
 * no permission) or is malformed is a ConfigError naming it; it is never replaced.
 */
export const readNodeKey = (home: string): Effect.Effect<NodeKey.NodeKey | undefined, Config.ConfigError> =>
  Effect.suspend(() => {
    const file = paths(home).nodeKey
    if (!existsSync(file)) return Effect.succeed(undefined)
    let text: string
    try {
      text = readFileSync(file, "utf8")
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code
      const why = code === "EISDIR" ? "it is a directory, not a file" : code === "EACCES" || code === "EPERM" ? "permission denied (the node's user must be able to read it)" : (e as Error).message
      return Effect.fail(new Config.ConfigError({ key: file, message: `${file}: cannot read the node key: ${why}; fix the file, or move it away to have a new key generated (a new node ID)` }))
    }
    const key = NodeKey.fromJson(text, file)
    return Result.isFailure(key)
      ? Effect.fail(new Config.ConfigError({ key: file, message: key.failure.message }))
      : Effect.succeed(key.success)
  })

/**
 * Writes `config.toml` and `node_key.json` where absent (CometBFT's `init`); returns what it wrote.
 * Existing files are never touched. A home that cannot be written is a runtime failure (exit 1).
 */
export const init = Effect.fn("Home.init")(function* (home: string, config: Config.NodeConfig): Effect.fn.Return<ReadonlyArray<string>, Config.ConfigError | CommandFailure> {
  const p = paths(home)
  const written: Array<string> = []
  const existingKey = yield* readNodeKey(home)
  yield* Effect.try({
    try: () => {
      mkdirSync(join(home, "config"), { recursive: true })
      mkdirSync(p.data, { recursive: true })
      if (!existsSync(p.config)) {
        writeFileSync(p.config, Config.toToml(config))
        written.push(p.config)
      }
    },
    catch: (e) => new CommandFailure({ exitCode: 1, message: `cannot write the home directory ${home}: ${(e as Error).message}; check that it is writable by this user, or choose another with --home` })
  })
  if (existingKey === undefined) {
    const key = yield* NodeKey.generate()
    yield* Effect.try({
      try: () => writeFileSync(p.nodeKey, NodeKey.toJson(key), { mode: 0o600 }),
      catch: (e) => new CommandFailure({ exitCode: 1, message: `cannot write ${p.nodeKey}: ${(e as Error).message}; check that ${dirname(p.nodeKey)} is writable by this user` })
    })
    written.push(p.nodeKey)
  }
  return written
})

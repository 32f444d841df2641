/**
 * A node's Ed25519 identity key, and CometBFT's `node_key.json` format:
 * `{"priv_key":{"type":"tendermint/PrivKeyEd25519","value":"<base64 of seed || public key>"}}`.
 *
 * Pure: reading and writing the file is `NodeKeyFile`'s job.
 *
 * @since 0.1.0
 */
import { createPrivateKey, createPublicKey, randomBytes, sign as edSign, verify as edVerify, type KeyObject } from "node:crypto"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as NodeId from "./NodeId.ts"

/** An Ed25519 key pair with its node ID. */
export interface NodeKey {
  readonly seed: Uint8Array
  readonly publicKey: Uint8Array
  readonly nodeId: NodeId.NodeId
  /** node:crypto private key object, built once. */
  readonly privateKey: KeyObject
}

/** The seed is not 32 bytes, or a key file is malformed. `source` names the file (or "input"). */
export class InvalidNodeKey extends Schema.TaggedError<InvalidNodeKey>()("InvalidNodeKey", {
  source: Schema.String,
  message: Schema.String
}) {}

const PKCS8_ED25519 = Buffer.from("302e020100300506032b657004220420", "hex")
const SPKI_ED25519 = Buffer.from("302a300506032b6570032100", "hex")

/** The amino type name CometBFT writes in `node_key.json`. */
export const KEY_TYPE = "tendermint/PrivKeyEd25519"

/** Builds a key from a 32-byte seed (RFC 8032 private key). Throws on a seed of another length. */
export const fromSeed = (seed: Uint8Array): NodeKey => {
  if (seed.length !== 32) throw new InvalidNodeKey({ source: "input", message: `an Ed25519 seed is 32 bytes, got ${seed.length}` })
  const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, seed]), format: "der", type: "pkcs8" })
  const spki = createPublicKey(privateKey).export({ format: "der", type: "spki" })
  const publicKey = new Uint8Array(spki.subarray(spki.length - 32))
  return { seed: new Uint8Array(seed), publicKey, nodeId: NodeId.fromPublicKey(publicKey), privateKey }
}

/** A fresh random key (node:crypto's CSPRNG). */
export const generate = (): Effect.Effect<NodeKey> => Effect.sync(() => fromSeed(randomBytes(32)))

/** Ed25519 signature (64 bytes) over `message`, no prehash. */
export const sign = (key: NodeKey, message: Uint8Array): Uint8Array => new Uint8Array(edSign(null, message, key.privateKey))

const publicKeyObjects = new Map<string, KeyObject>()

/** A node:crypto public key object for 32 raw bytes (cached: verification is on the handshake path). */
export const publicKeyObject = (publicKey: Uint8Array): KeyObject => {
  const k = Buffer.from(publicKey).toString("hex")
  let o = publicKeyObjects.get(k)
  if (o === undefined) {
    o = createPublicKey({ key: Buffer.concat([SPKI_ED25519, publicKey]), format: "der", type: "spki" })
    if (publicKeyObjects.size > 4096) publicKeyObjects.clear()
    publicKeyObjects.set(k, o)
  }
  return o
}

/** Verifies an Ed25519 signature; false (never a throw) for malformed keys or signatures. */
export const verify = (publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean => {
  if (publicKey.length !== 32 || signature.length !== 64) return false
  try {
    return edVerify(null, message, publicKeyObject(publicKey), signature)
  } catch {
    return false
  }
}

/** `node_key.json` text for a key, as CometBFT writes it. */
export const toJson = (key: NodeKey): string =>
  JSON.stringify({ priv_key: { type: KEY_TYPE, value: Buffer.concat([key.seed, key.publicKey]).toString("base64") } }, null, 2) + "\n"

const fail = (source: string, message: string) => Result.fail(new InvalidNodeKey({ source, message }))

/**
 * Parses `node_key.json` text. `source` (usually the file path) is named in every error, with what is
 * wrong: not JSON, missing `priv_key`, another key type, a value that is not 64 bytes of base64, or a
 * public half that does not match the seed.
 */
export const fromJson = (text: string, source = "node_key.json"): Result.Result<NodeKey, InvalidNodeKey> => {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (e) {
    return fail(source, `${source} is not valid JSON (${(e as Error).message})`)
  }
  if (typeof parsed !== "object" || parsed === null || !("priv_key" in parsed)) return fail(source, `${source} has no "priv_key" object`)
  const pk: unknown = parsed.priv_key
  if (typeof pk !== "object" || pk === null || !("type" in pk) || !("value" in pk)) {
    return fail(source, `${source}: "priv_key" needs "type" and "value"`)
  }
  if (pk.type !== KEY_TYPE) return fail(source, `${source}: key type ${JSON.stringify(pk.type)} is not supported, expected "${KEY_TYPE}"`)
  if (typeof pk.value !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(pk.value)) {
    return fail(source, `${source}: "priv_key.value" must be base64`)
  }
  const raw = Buffer.from(pk.value, "base64")
  if (raw.length !== 64) return fail(source, `${source}: "priv_key.value" must hold 64 bytes (seed and public key), got ${raw.length}`)
  const key = fromSeed(raw.subarray(0, 32))
  if (!Buffer.from(key.publicKey).equals(raw.subarray(32))) {
    return fail(source, `${source}: the public key does not match the private key`)
  }
  return Result.succeed(key)
}

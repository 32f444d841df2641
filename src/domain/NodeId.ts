/**
 * Node identities: 40 lowercase hex characters, the hex of the first 20 bytes of SHA-256 over a
 * node's 32-byte Ed25519 public key (docs/ARCHITECTURE.md#values, docs/PROTOCOL.md#authsigmessage).
 *
 * @since 0.1.0
 */
import { createHash } from "node:crypto"
import * as Brand from "effect/Brand"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as SchemaGetter from "effect/SchemaGetter"

/** A validated node ID. Plain strings compare and hash by value, so it works as a map key. */
export type NodeId = string & Brand.Brand<"NodeId">

/** Why a string is not a node ID, in the original's order of checks. */
export type InvalidNodeIdReason = "empty" | "length" | "characters"

/** A string that is not a valid node ID. `message` says what is wrong. */
export class InvalidNodeId extends Schema.TaggedError<InvalidNodeId>()("InvalidNodeId", {
  input: Schema.String,
  reason: Schema.Literals(["empty", "length", "characters"]),
  message: Schema.String
}) {}

/** A node ID is always this many characters long. */
export const LENGTH = 40

const hex40 = /^[0-9a-f]{40}$/

const invalid = (input: string, reason: InvalidNodeIdReason, message: string) =>
  Result.fail(new InvalidNodeId({ input, reason, message }))

/**
 * Checks `s` is a node ID exactly as written: uppercase is rejected, nothing is normalised.
 * Errors, checked in order: "empty node ID", "invalid node ID length N, expected 40",
 * "node ID can only contain lowercased hex digits".
 */
export const validate = (s: string): Result.Result<NodeId, InvalidNodeId> => {
  if (s.length === 0) return invalid(s, "empty", "empty node ID")
  if (s.length !== LENGTH) return invalid(s, "length", `invalid node ID length ${s.length}, expected ${LENGTH}`)
  if (!hex40.test(s)) return invalid(s, "characters", "node ID can only contain lowercased hex digits")
  return Result.succeed(s as NodeId)
}

/** Lowercases `s`, then validates it (the original's `NewNodeID`): uppercase input is accepted. */
export const decodeResult = (s: string): Result.Result<NodeId, InvalidNodeId> => validate(s.toLowerCase())

/** Effect form of {@link decodeResult}: `yield* NodeId.decode(s)`. */
export const decode = (s: string): Effect.Effect<NodeId, InvalidNodeId> => Effect.fromResult(decodeResult(s))

/** Like {@link decode} but throws: for constants in code and tests, never for input. */
export const unsafeDecode = (s: string): NodeId => Result.getOrThrow(decodeResult(s))

/** Type guard for already-normalised IDs. */
export const is = (u: unknown): u is NodeId => typeof u === "string" && hex40.test(u)

/** The node ID of an Ed25519 public key (32 raw bytes). */
export const fromPublicKey = (publicKey: Uint8Array): NodeId =>
  createHash("sha256").update(publicKey).digest().subarray(0, 20).toString("hex") as NodeId

/** Raw bytes of a hex string of either case and any even length (the original's `Bytes()`). */
export const toBytes = (s: string): Result.Result<Uint8Array, InvalidNodeId> =>
  s.length % 2 === 0 && /^[0-9a-fA-F]*$/.test(s)
    ? Result.succeed(new Uint8Array(Buffer.from(s, "hex")))
    : invalid(s, "characters", `node ID "${s}" is not valid hex`)

/** Schema of a node ID as written: exactly 40 lowercase hex characters (options and stored data). */
export const NodeIdExact: Schema.Codec<NodeId, string> = Schema.String.pipe(
  Schema.check(Schema.makeFilter((s: string) => hex40.test(s) || `${JSON.stringify(s)} is not a node ID (40 lowercase hex characters)`)),
  Schema.brand("NodeId")
)

/** Schema of a node ID string: decoding lowercases and validates, so config and JSON get the same rules. */
export const NodeIdSchema: Schema.Codec<NodeId, string> = Schema.String.pipe(
  Schema.decodeTo(NodeIdExact, { decode: SchemaGetter.transform((s: string) => s.toLowerCase()), encode: SchemaGetter.passthrough() })
)

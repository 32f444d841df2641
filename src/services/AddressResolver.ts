/**
 * Turns node addresses into endpoints to dial (docs/ARCHITECTURE.md#node-addresses-and-endpoints `Resolve`): the service, its errors and
 * the shape of a hostname lookup. The layers (`layers/AddressResolver.ts`) share one set of rules
 * and differ only in how a hostname is looked up: `layerDns` asks the operating system,
 * `layerStatic` reads a fixed table (for tests).
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Schema from "effect/Schema"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Endpoint from "../domain/Endpoint.ts"
import type * as NodeAddress from "../domain/NodeAddress.ts"

/** Why an address did not resolve. */
export type ResolveErrorReason = "no_protocol" | "no_node_id" | "not_found" | "timeout" | "lookup"

/** An address that cannot be resolved. `address` is its rendering; `message` says what went wrong. */
export class ResolveError extends Schema.TaggedError<ResolveError>()("ResolveError", {
  address: Schema.String,
  reason: Schema.Literals(["no_protocol", "no_node_id", "not_found", "timeout", "lookup"]),
  message: Schema.String
}) {}

/** Resolves node addresses to endpoints. */
export class AddressResolver extends Context.Service<AddressResolver, {
  /**
   * One endpoint per IP of the address's hostname (an IP literal is its own only IP); for an
   * address without a hostname, the single endpoint `{protocol, path: nodeId}`. The node ID is not
   * validated. Fails with {@link ResolveError}.
   */
  resolve(address: NodeAddress.NodeAddress): Effect.Effect<ReadonlyArray<Endpoint.Endpoint>, ResolveError>
}>()("effect-p2p/AddressResolver") {}

/** Why a hostname lookup failed; the layers turn it into a {@link ResolveError}. */
export interface LookupFailure {
  readonly reason: "not_found" | "timeout" | "lookup"
  readonly message: string
}

/** Looks a hostname (never an IP literal) up to IP address text, in any of the forms `Ip.parse` reads. */
export type Lookup = (hostname: string) => Effect.Effect<ReadonlyArray<string>, LookupFailure>

/** Options of `layerDns`. */
export interface DnsOptions {
  /** How long one lookup may take before failing with reason "timeout". Default 5 seconds. */
  readonly timeout?: Duration.Input
}

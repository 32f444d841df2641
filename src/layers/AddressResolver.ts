/**
 * The AddressResolver layers: one set of resolution rules ({@link resolveWith}) over a hostname
 * lookup, from the operating system ({@link layerDns}) or a fixed table ({@link layerStatic}). This
 * module is the `AddressResolver` namespace: it re-exports the service.
 *
 * @since 0.1.0
 */
import { lookup as dnsLookup } from "node:dns/promises"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Predicate from "effect/Predicate"
import * as Result from "effect/Result"
import * as Endpoint from "../domain/Endpoint.ts"
import * as Ip from "../domain/Ip.ts"
import * as NodeAddress from "../domain/NodeAddress.ts"
import { AddressResolver, ResolveError, type DnsOptions, type Lookup, type LookupFailure, type ResolveErrorReason } from "../services/AddressResolver.ts"

export * from "../services/AddressResolver.ts"

/**
 * The resolution rules of docs/ARCHITECTURE.md#node-addresses-and-endpoints over a hostname lookup, shared by every layer:
 * - no protocol fails "address has no protocol";
 * - no hostname: no node ID fails "local address has no node ID", otherwise exactly one endpoint
 *   `{protocol, path: nodeId}` (the address's own path is ignored);
 * - otherwise one endpoint `{protocol, ip, port, path}` per distinct IP, IP literals without a
 *   lookup. IPs are stored in canonical text. Lookup failures, and lookups that find no IP, fail.
 */
export const resolveWith = (lookup: Lookup) =>
  Effect.fn("AddressResolver.resolve")(function*(address: NodeAddress.NodeAddress) {
    const fail = (reason: ResolveErrorReason, message: string) =>
      Effect.fail(new ResolveError({ address: NodeAddress.format(address), reason, message }))
    if (address.protocol === "") return yield* fail("no_protocol", "address has no protocol")
    if (address.hostname === "") {
      if (address.nodeId === "") return yield* fail("no_node_id", "local address has no node ID")
      return [Endpoint.make({ protocol: address.protocol, path: address.nodeId })]
    }
    const literal = Ip.canonical(address.hostname)
    const found = literal._tag === "Some"
      ? [literal.value]
      : yield* lookup(address.hostname).pipe(
        Effect.catch((failure) => fail(failure.reason, `cannot resolve ${JSON.stringify(address.hostname)}: ${failure.message}`))
      )
    const ips: Array<string> = []
    for (const text of found) {
      const ip = Ip.canonical(text)
      if (ip._tag === "Some" && !ips.includes(ip.value)) ips.push(ip.value)
    }
    if (ips.length === 0) {
      return yield* fail("not_found", `cannot resolve ${JSON.stringify(address.hostname)}: no IP addresses found`)
    }
    return ips.map((ip) => Endpoint.make({ protocol: address.protocol, ip, port: address.port, path: address.path }))
  })

/** Bounds every call of `lookup` by `timeout`, failing with reason "timeout" (uses `Clock`, so tests can use `TestClock`). */
export const withTimeout = (lookup: Lookup, timeout: Duration.Input): Lookup => {
  const message = `lookup timed out after ${Duration.format(Duration.fromInputUnsafe(timeout))}`
  return (hostname) =>
    lookup(hostname).pipe(
      Effect.timeoutOrElse({ duration: timeout, orElse: () => Effect.fail<LookupFailure>({ reason: "timeout", message }) })
    )
}

/** Looks hostnames up with the operating system's resolver (`dns.lookup`, A and AAAA records), bounded by `options.timeout`. */
export const dnsLookupWith = (options: DnsOptions = {}): Lookup =>
  withTimeout(
    (hostname) =>
      Effect.tryPromise({
        try: () => dnsLookup(hostname, { all: true, family: 0 }),
        catch: (cause): LookupFailure => {
          const code = Predicate.hasProperty(cause, "code") ? String(cause.code) : ""
          const message = cause instanceof Error ? cause.message : String(cause)
          return { reason: code === "ENOTFOUND" || code === "ENODATA" ? "not_found" : "lookup", message }
        }
      }).pipe(Effect.map((entries) => entries.map((entry) => entry.address))),
    options.timeout ?? Duration.seconds(5)
  )

/**
 * Resolves hostnames through the operating system (`localhost` gives 127.0.0.1 and ::1), each
 * lookup bounded by `options.timeout` (default 5 seconds).
 */
export const layerDns = (options: DnsOptions = {}): Layer.Layer<AddressResolver> =>
  Layer.succeed(AddressResolver, AddressResolver.of({ resolve: resolveWith(dnsLookupWith(options)) }))

/**
 * Resolves hostnames from a fixed table, hostname to IP texts; names are compared case-insensitively
 * and unknown names fail with reason "not_found". IP literals still resolve to themselves. For tests.
 *
 * @example
 * ```ts
 * AddressResolver.layerStatic({ localhost: ["127.0.0.1", "::1"] })
 * ```
 */
export const layerStatic = (table: Readonly<Record<string, ReadonlyArray<string>>>): Layer.Layer<AddressResolver> => {
  const entries = new Map(Object.entries(table).map(([name, ips]) => [name.toLowerCase(), ips] as const))
  const lookup: Lookup = (hostname) => {
    const ips = entries.get(hostname.toLowerCase())
    return Effect.fromResult(
      ips === undefined ? Result.fail<LookupFailure>({ reason: "not_found", message: "not in the static table" }) : Result.succeed(ips)
    )
  }
  return Layer.succeed(AddressResolver, AddressResolver.of({ resolve: resolveWith(lookup) }))
}

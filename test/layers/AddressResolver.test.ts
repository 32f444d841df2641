import { assert, describe, it, layer } from "@effect/vitest"
import { Effect, Equal, Fiber, Option } from "effect"
import { TestClock } from "effect/testing"
import * as Endpoint from "../../src/domain/Endpoint.ts"
import * as Ip from "../../src/domain/Ip.ts"
import * as NodeAddress from "../../src/domain/NodeAddress.ts"
import * as AddressResolver from "../../src/layers/AddressResolver.ts"

const id = "00112233445566778899aabbccddeeff00112233"
const address = NodeAddress.make

const resolve = (a: NodeAddress.NodeAddress) => AddressResolver.AddressResolver.use((r) => r.resolve(a))

const contains = (endpoints: ReadonlyArray<Endpoint.Endpoint>, expected: Endpoint.Endpoint) =>
  assert.isTrue(endpoints.some((e) => Equal.equals(e, expected)), `${endpoints.map(String).join(", ")} lacks ${String(expected)}`)

const exactly = (endpoints: ReadonlyArray<Endpoint.Endpoint>, expected: ReadonlyArray<Endpoint.Endpoint>) => {
  assert.strictEqual(endpoints.length, expected.length, endpoints.map(String).join(", "))
  expected.forEach((e, i) => assert.isTrue(Equal.equals(endpoints[i], e), `${String(endpoints[i])} !== ${String(e)}`))
}

layer(AddressResolver.layerStatic({ localhost: ["127.0.0.1", "::1"], "dup.example": ["10.0.0.1", "::ffff:10.0.0.1", "not-an-ip"] }))(
  "AddressResolver (static table)",
  (it) => {
    it.effect("an IPv4 literal resolves to itself with port and path", () =>
      Effect.gen(function*() {
        const endpoints = yield* resolve(address({ protocol: "tcp", hostname: "127.0.0.1", port: 80, path: "/path" }))
        contains(endpoints, Endpoint.make({ protocol: "tcp", ip: "127.0.0.1", port: 80, path: "/path" }))
      }))

    it.effect("a name resolves to one endpoint per IP: localhost gives 127.0.0.1 and ::1", () =>
      Effect.gen(function*() {
        const endpoints = yield* resolve(address({ protocol: "tcp", hostname: "localhost", port: 80, path: "/path" }))
        contains(endpoints, Endpoint.make({ protocol: "tcp", ip: "127.0.0.1", port: 80, path: "/path" }))
        contains(endpoints, Endpoint.make({ protocol: "tcp", ip: "::1", port: 80, path: "/path" }))
      }))

    it.effect("IPv6 and public IPv4 literals resolve to themselves", () =>
      Effect.gen(function*() {
        exactly(yield* resolve(address({ protocol: "tcp", hostname: "::1" })), [Endpoint.make({ protocol: "tcp", ip: "::1" })])
        exactly(yield* resolve(address({ protocol: "tcp", hostname: "8.8.8.8" })), [Endpoint.make({ protocol: "tcp", ip: "8.8.8.8" })])
      }))

    it.effect("a long-form IPv6 literal resolves to its 16-byte address in canonical text", () =>
      Effect.gen(function*() {
        const [endpoint] = yield* resolve(address({ protocol: "tcp", hostname: "2001:0db8::ff00:0042:8329" }))
        assert.strictEqual(endpoint?.ip, "2001:db8::ff00:42:8329")
        assert.strictEqual(Option.getOrThrow(Ip.parse(endpoint?.ip ?? "")).length, 16)
      }))

    it.effect("looked-up IPs are canonicalised and de-duplicated, and non-IPs are skipped", () =>
      Effect.gen(function*() {
        exactly(yield* resolve(address({ protocol: "tcp", hostname: "dup.example", port: 1 })), [Endpoint.make({ protocol: "tcp", ip: "10.0.0.1", port: 1 })])
      }))

    it.effect("an address without hostname resolves to exactly {protocol, path: nodeId}, ignoring its path", () =>
      Effect.gen(function*() {
        const expected = [Endpoint.make({ protocol: "memory", path: id })]
        exactly(yield* resolve(address({ protocol: "memory", nodeId: id })), expected)
        exactly(yield* resolve(address({ protocol: "memory", nodeId: id, path: id })), expected)
        exactly(yield* resolve(address({ protocol: "memory", nodeId: id, path: "/other" })), expected)
      }))

    it.effect("does not validate the node ID", () =>
      Effect.gen(function*() {
        exactly(yield* resolve(address({ protocol: "memory", nodeId: "foo" })), [Endpoint.make({ protocol: "memory", path: "foo" })])
      }))

    it.effect("fails with ResolveError for no protocol, no node ID, host:port, emoji and unknown names", () =>
      Effect.gen(function*() {
        const cases: ReadonlyArray<readonly [NodeAddress.NodeAddress, AddressResolver.ResolveErrorReason]> = [
          [address({}), "no_protocol"],
          [address({ hostname: "127.0.0.1" }), "no_protocol"],
          [address({ protocol: "tcp", hostname: "127.0.0.1:80" }), "not_found"],
          [address({ protocol: "memory" }), "no_node_id"],
          [address({ protocol: "memory", path: id }), "no_node_id"],
          [address({ protocol: "tcp", hostname: "💥" }), "not_found"],
          [address({ protocol: "tcp", hostname: "unknown.example" }), "not_found"]
        ]
        for (const [input, reason] of cases) {
          const err = yield* Effect.flip(resolve(input))
          assert.strictEqual(err._tag, "ResolveError")
          assert.strictEqual(err.reason, reason, String(input))
          assert.strictEqual(err.address, NodeAddress.format(input))
        }
      }))

    it.effect("says what is wrong in the message", () =>
      Effect.gen(function*() {
        assert.strictEqual((yield* Effect.flip(resolve(address({})))).message, "address has no protocol")
        assert.strictEqual((yield* Effect.flip(resolve(address({ protocol: "memory" })))).message, "local address has no node ID")
        assert.include((yield* Effect.flip(resolve(address({ protocol: "tcp", hostname: "nope.example" })))).message, `cannot resolve "nope.example"`)
      }))
  }
)

describe("AddressResolver.layerDns", () => {
  const dns = AddressResolver.layerDns({ timeout: "3 seconds" })

  it.live("resolves localhost through the operating system", () =>
    Effect.gen(function*() {
      const endpoints = yield* resolve(address({ protocol: "tcp", nodeId: id, hostname: "localhost", port: 26656 }))
      contains(endpoints, Endpoint.make({ protocol: "tcp", ip: "127.0.0.1", port: 26656 }))
    }).pipe(Effect.provide(dns)))

  it.live("resolves an IP literal to itself without a lookup", () =>
    Effect.gen(function*() {
      exactly(yield* resolve(address({ protocol: "tcp", hostname: "::ffff:10.1.2.3", port: 1 })), [Endpoint.make({ protocol: "tcp", ip: "10.1.2.3", port: 1 })])
    }).pipe(Effect.provide(dns)))

  it.live("fails with ResolveError for a .invalid name within the timeout", () =>
    Effect.gen(function*() {
      const started = Date.now()
      const err = yield* Effect.flip(resolve(address({ protocol: "tcp", hostname: "no-such-host.invalid", port: 1 })))
      assert.strictEqual(err._tag, "ResolveError")
      assert.include(["not_found", "timeout", "lookup"], err.reason)
      assert.isBelow(Date.now() - started, 4_000)
    }).pipe(Effect.provide(dns)))
})

describe("AddressResolver.withTimeout", () => {
  it.effect("fails a lookup that does not answer in time with reason timeout", () =>
    Effect.gen(function*() {
      const resolveSlow = AddressResolver.resolveWith(AddressResolver.withTimeout(() => Effect.never, "5 seconds"))
      const fiber = yield* Effect.forkChild(Effect.flip(resolveSlow(address({ protocol: "tcp", hostname: "slow.example" }))))
      yield* TestClock.adjust("5 seconds")
      const err = yield* Fiber.join(fiber)
      assert.strictEqual(err.reason, "timeout")
      assert.include(err.message, "timed out")
    }))
})

import { assert, describe, it } from "@effect/vitest"
import { Equal, Option, Result } from "effect"
import * as Endpoint from "../../src/domain/Endpoint.ts"
import * as Ip from "../../src/domain/Ip.ts"
import * as NodeAddress from "../../src/domain/NodeAddress.ts"

const id = "00112233445566778899aabbccddeeff00112233"
const make = Endpoint.make

const assertAddress = (actual: NodeAddress.NodeAddress, expected: NodeAddress.NodeAddress) =>
  assert.isTrue(Equal.equals(actual, expected), `${String(actual)} !== ${String(expected)}`)

describe("Endpoint.toNodeAddress", () => {
  it("keeps protocol, IP, port and path and adds the node ID", () => {
    const expected = NodeAddress.make({ protocol: "tcp", nodeId: id, hostname: "1.2.3.4", port: 8080, path: "path" })
    assertAddress(Endpoint.toNodeAddress(make({ protocol: "tcp", ip: "1.2.3.4", port: 8080, path: "path" }), id), expected)
  })

  it("renders an IPv4-in-IPv6 address as dotted IPv4", () => {
    const expected = NodeAddress.make({ protocol: "tcp", nodeId: id, hostname: "1.2.3.4", port: 8080, path: "path" })
    assertAddress(Endpoint.toNodeAddress(make({ protocol: "tcp", ip: "::ffff:1.2.3.4", port: 8080, path: "path" }), id), expected)
  })

  it("uses the canonical IPv6 text as hostname", () => {
    assert.strictEqual(Endpoint.toNodeAddress(make({ protocol: "tcp", ip: "b10c::1" }), id).hostname, "b10c::1")
    assert.strictEqual(Endpoint.toNodeAddress(make({ protocol: "tcp", ip: "B10C:0:0::0001" }), id).hostname, "b10c::1")
  })

  it("keeps the path of a non-networked endpoint", () => {
    assertAddress(Endpoint.toNodeAddress(make({ protocol: "memory", path: "foo" }), id), NodeAddress.make({ protocol: "memory", nodeId: id, path: "foo" }))
  })

  it("drops the port when there is no IP", () => {
    assertAddress(Endpoint.toNodeAddress(make({ port: 8080 }), id), NodeAddress.make({ nodeId: id }))
  })
})

describe("Endpoint.format", () => {
  it("matches every rendering of the original", () => {
    const cases: ReadonlyArray<readonly [Endpoint.Endpoint, string]> = [
      [make({ protocol: "memory", path: id }), `memory:${id}`],
      [make({ protocol: "file", path: "foo" }), "file:///foo"],
      [make({ protocol: "file", path: "👋" }), "file:///%F0%9F%91%8B"],
      [make({ protocol: "tcp", ip: "1.2.3.4" }), "tcp://1.2.3.4"],
      [make({ protocol: "tcp", ip: "1.2.3.4", port: 8080, path: "/path" }), "tcp://1.2.3.4:8080/path"],
      [make({ protocol: "tcp", ip: "b10c::1" }), "tcp://[b10c::1]"], // the original drops the brackets; we keep them (it reads back)
      [make({ protocol: "tcp", ip: "b10c::1", port: 8080 }), "tcp://[b10c::1]:8080"],
      [make({}), ""],
      [make({ protocol: "tcp" }), "tcp:"],
      [make({ ip: "1.2.3.4" }), "1.2.3.4"],
      [make({ port: 8080 }), ""],
      [make({ path: "foo" }), "/foo"]
    ]
    for (const [endpoint, expected] of cases) assert.strictEqual(Endpoint.format(endpoint), expected)
  })
})

describe("Endpoint.validate", () => {
  const reason = (e: Endpoint.Endpoint) => {
    const r = Endpoint.validate(e)
    return Result.isFailure(r) ? r.failure.reason : "ok"
  }

  it("accepts networked endpoints with IPv4, IPv4-in-IPv6 or IPv6, with port and path, and memory with a path", () => {
    assert.strictEqual(reason(make({ protocol: "tcp", ip: "1.2.3.4" })), "ok")
    assert.strictEqual(reason(make({ protocol: "tcp", ip: "::ffff:1.2.3.4" })), "ok")
    assert.strictEqual(reason(make({ protocol: "tcp", ip: "b10c::1" })), "ok")
    assert.strictEqual(reason(make({ protocol: "tcp", ip: "1.2.3.4", port: 8080 })), "ok")
    assert.strictEqual(reason(make({ protocol: "tcp", ip: "1.2.3.4", port: 8080, path: "path" })), "ok")
    assert.strictEqual(reason(make({ protocol: "memory", path: "foo" })), "ok")
  })

  it("rejects a missing protocol, a bad IP, a bare protocol and a port without IP", () => {
    assert.strictEqual(reason(make({})), "no_protocol")
    assert.strictEqual(reason(make({ ip: "1.2.3.4" })), "no_protocol")
    assert.strictEqual(reason(make({ protocol: "tcp" })), "no_path_or_ip")
    assert.strictEqual(reason(make({ protocol: "tcp", ip: Ip.format(new Uint8Array([1, 2, 3])) })), "invalid_ip")
    assert.strictEqual(reason(make({ protocol: "tcp", port: 8080, path: "path" })), "port_without_ip")
  })

  it("says what is wrong in the message", () => {
    const message = (e: Endpoint.Endpoint) => {
      const r = Endpoint.validate(e)
      return Result.isFailure(r) ? r.failure.message : "ok"
    }
    assert.strictEqual(message(make({})), "endpoint has no protocol")
    assert.strictEqual(message(make({ protocol: "tcp", ip: "1.2.3" })), `invalid IP address "1.2.3"`)
    assert.strictEqual(message(make({ protocol: "tcp", port: 8080, path: "p" })), "endpoint has port 8080 but no IP")
    assert.strictEqual(message(make({ protocol: "tcp" })), "endpoint has neither path nor IP")
  })
})

describe("Ip", () => {
  const canonical = (s: string) => Option.getOrElse(Ip.canonical(s), () => "invalid")

  it("formats like Go's net.IP.String(): dotted IPv4-mapped, RFC 5952 compression", () => {
    assert.strictEqual(canonical("::ffff:1.2.3.4"), "1.2.3.4")
    assert.strictEqual(canonical("2001:0DB8::FF00:0042:8329"), "2001:db8::ff00:42:8329")
    assert.strictEqual(canonical("1:0:0:1:0:0:0:1"), "1:0:0:1::1")
    assert.strictEqual(canonical("1:0:1:0:0:1:0:0"), "1:0:1::1:0:0")
    assert.strictEqual(canonical("1:0:2:3:4:5:6:7"), "1:0:2:3:4:5:6:7")
    assert.strictEqual(canonical("::"), "::")
    assert.strictEqual(Ip.format(new Uint8Array([1, 2, 3])), "?010203")
  })

  it("parses IPv4 to 4 bytes and IPv6 to 16, rejecting zones, brackets and leading zeros", () => {
    assert.strictEqual(Option.getOrThrow(Ip.parse("1.2.3.4")).length, 4)
    assert.strictEqual(Option.getOrThrow(Ip.parse("::1")).length, 16)
    for (const bad of ["", "1.2.3", "01.2.3.4", "256.0.0.0", "1::2::3", "fe80::1%eth0", "[::1]", "1:2:3:4:5:6:7:8:9", "12345::", "host"]) {
      assert.isFalse(Ip.isValid(bad), bad)
    }
  })

  it("classifies unspecified, broadcast, multicast and loopback addresses", () => {
    const ip = (s: string) => Option.getOrThrow(Ip.parse(s))
    assert.isTrue(Ip.isUnspecified(ip("0.0.0.0")) && Ip.isUnspecified(ip("::")))
    assert.isFalse(Ip.isUnspecified(ip("::1")))
    assert.isTrue(Ip.isBroadcast(ip("255.255.255.255")))
    assert.isFalse(Ip.isBroadcast(ip("255.255.255.254")))
    assert.isTrue(Ip.isMulticast(ip("224.0.0.1")) && Ip.isMulticast(ip("ff02::1")))
    assert.isFalse(Ip.isMulticast(ip("192.168.0.1")))
    assert.isTrue(Ip.isLoopback(ip("127.0.0.1")) && Ip.isLoopback(ip("::1")))
  })
})

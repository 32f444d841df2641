import { assert, describe, it } from "@effect/vitest"
import { Effect, Equal, HashMap, Option, Result } from "effect"
import * as fc from "fast-check"
import * as Ip from "../../src/domain/Ip.ts"
import * as NodeAddress from "../../src/domain/NodeAddress.ts"

const id = "00112233445566778899aabbccddeeff00112233"
const ID = id.toUpperCase()
const make = NodeAddress.make

const parsed = (s: string): NodeAddress.NodeAddress => Result.getOrThrow(NodeAddress.parseResult(s))
const failure = (s: string): NodeAddress.InvalidNodeAddress => {
  const r = NodeAddress.parseResult(s)
  if (Result.isSuccess(r)) assert.fail(`expected ${JSON.stringify(s)} to be rejected, got ${NodeAddress.format(r.success)}`)
  return r.failure
}
const assertAddress = (actual: NodeAddress.NodeAddress, expected: NodeAddress.NodeAddress) =>
  assert.isTrue(Equal.equals(actual, expected), `${String(actual)} !== ${String(expected)}`)

describe("NodeAddress.parse", () => {
  it("reads a networked URL with a query into the path", () => {
    assertAddress(
      parsed(`mconn://${id}@127.0.0.1:26657/some/path?foo=bar`),
      make({ protocol: "mconn", nodeId: id, hostname: "127.0.0.1", port: 26657, path: "/some/path?foo=bar" })
    )
  })

  it("lowercases scheme, node ID and hostname, and decodes the path but keeps its case", () => {
    assertAddress(
      parsed(`TCP://${ID}@hostname.DOMAIN:8080/Path/%f0%9f%91%8B#Anchor`),
      make({ protocol: "tcp", nodeId: id, hostname: "hostname.domain", port: 8080, path: "/Path/👋#Anchor" })
    )
  })

  it("defaults scheme-less addresses to mconn", () => {
    assertAddress(parsed(`${id}@127.0.0.1`), make({ protocol: "mconn", nodeId: id, hostname: "127.0.0.1" }))
    assertAddress(parsed(`${id}@hostname.domain:80`), make({ protocol: "mconn", nodeId: id, hostname: "hostname.domain", port: 80 }))
    assertAddress(parsed(`${id}@0.0.0.0:0`), make({ protocol: "mconn", nodeId: id, hostname: "0.0.0.0", port: 0 }))
    assertAddress(parsed(`${id}@%F0%9F%91%8B:80/path`), make({ protocol: "mconn", nodeId: id, hostname: "👋", port: 80, path: "/path" }))
  })

  it("strips the brackets of IPv6 hosts", () => {
    assertAddress(parsed(`${id}@[1::]`), make({ protocol: "mconn", nodeId: id, hostname: "1::" }))
    assertAddress(
      parsed(`mconn://${id}@[fd80:b10c::2]:26657`),
      make({ protocol: "mconn", nodeId: id, hostname: "fd80:b10c::2", port: 26657 })
    )
  })

  it("reads the opaque form memory:<id> as an address without hostname", () => {
    assertAddress(parsed(`memory:${id}`), make({ protocol: "memory", nodeId: id }))
  })

  it("does not lowercase the node ID of the opaque form, so an uppercase one is rejected", () => {
    assert.strictEqual(failure(`memory:${ID}`).reason, "invalid_node_id")
  })

  it("treats host:port without scheme as a scheme-less address", () => {
    assertAddress(parsed(`${id}@example.com:26656/x`), make({ protocol: "mconn", nodeId: id, hostname: "example.com", port: 26656, path: "/x" }))
    assert.strictEqual(failure("127.0.0.1:26656").reason, "no_node_id")
  })

  it("keeps the raw query and adds a leading slash to a relative path", () => {
    assert.strictEqual(parsed(`mconn://${id}@host?a=%41`).path, "?a=%41")
    assert.strictEqual(parsed(`mconn://${id}@host#frag%41`).path, "#fragA")
    assert.strictEqual(parsed(`mconn://${id}@host:80/p%3Fq`).path, "/p?q")
  })

  it("rejects every malformed or invalid address of the original's tests", () => {
    const cases: ReadonlyArray<readonly [string, NodeAddress.InvalidNodeAddressReason]> = [
      ["", "no_node_id"],
      ["127.0.0.1", "no_node_id"],
      ["hostname", "no_node_id"],
      ["scheme:", "no_node_id"],
      ["memory:foo", "invalid_node_id"],
      [`${id}@%F%F0`, "malformed"],
      [`//${id}@127.0.0.1`, "no_node_id"],
      [`://${id}@127.0.0.1`, "malformed"],
      ["mconn://foo@127.0.0.1", "invalid_node_id"],
      [`mconn://${id}@127.0.0.1:65536`, "invalid_port"],
      [`mconn://${id}@:80`, "port_without_hostname"]
    ]
    for (const [input, reason] of cases) {
      const err = failure(input)
      assert.strictEqual(err._tag, "InvalidNodeAddress")
      assert.strictEqual(err.input, input)
      assert.strictEqual(err.reason, reason, input)
    }
  })

  it("says what is wrong in the message", () => {
    assert.strictEqual(
      failure(`mconn://${id}@127.0.0.1:65536`).message,
      `invalid node address "mconn://${id}@127.0.0.1:65536": invalid port "65536"`
    )
    assert.strictEqual(failure("memory:foo").message, `invalid node address "memory:foo": invalid peer ID: invalid node ID length 3, expected 40`)
    assert.strictEqual(failure(`://${id}@127.0.0.1`).message, `invalid node address "://${id}@127.0.0.1": missing protocol scheme`)
    assert.strictEqual(failure(`${id}@%F%F0`).message, `invalid node address "${id}@%F%F0": invalid URL escape "%F%"`)
  })

  it("follows Go's net/url host rules: only non-ASCII may be escaped, some ASCII is forbidden", () => {
    assert.strictEqual(failure(`mconn://${id}@%41bc`).message, `invalid node address "mconn://${id}@%41bc": invalid URL escape "%41"`)
    assert.include(failure(`mconn://${id}@a b`).message, `invalid character " " in host name`)
    assert.include(failure(`mconn://${id}@[::1`).message, "missing ']' in host")
    assert.include(failure(`mconn://${id}@[::1]x`).message, `invalid port "x" after host`)
    assert.include(failure(`mconn://${id}@host:8x`).message, `invalid port ":8x" after host`)
    assert.include(failure(`mconn://${id}"@host`).message, "invalid userinfo")
    assert.include(failure(`mconn://${id}@host\n`).message, "invalid control character")
    assert.strictEqual(parsed(`mconn://${id}@host%25x:1`).hostname, "host%x")
  })

  it("takes the last @ of the authority and the username before a colon", () => {
    assertAddress(parsed(`mconn://${id}:secret@host:1`), make({ protocol: "mconn", nodeId: id, hostname: "host", port: 1 }))
    assert.strictEqual(failure(`mconn://a@${id}@host`).reason, "invalid_node_id")
  })

  it.effect("parse fails in the error channel with InvalidNodeAddress", () =>
    Effect.gen(function*() {
      const address = yield* NodeAddress.parse(`memory:${id}`)
      assert.strictEqual(address.protocol, "memory")
      const err = yield* Effect.flip(NodeAddress.parse("nope"))
      assert.strictEqual(err._tag, "InvalidNodeAddress")
      assert.strictEqual(err.reason, "no_node_id")
    }))
})

describe("NodeAddress.format", () => {
  it("matches every rendering of the original", () => {
    const cases: ReadonlyArray<readonly [NodeAddress.NodeAddress, string]> = [
      [make({ protocol: "tcp", nodeId: id, hostname: "host", port: 80, path: "/path/sub?foo=bar&x=y#anchor" }), `tcp://${id}@host:80/path/sub%3Ffoo=bar&x=y%23anchor`],
      [make({ nodeId: id, hostname: "host", port: 80, path: "foo/bar" }), `${id}@host:80/foo/bar`],
      [make({ protocol: "memory", nodeId: id }), `memory:${id}`],
      [make({ protocol: "memory", nodeId: id, path: id }), `memory:${id}`],
      [make({ protocol: "memory", nodeId: id, path: "path" }), `memory://${id}@/path`],
      [make({ protocol: "memory", nodeId: id, port: 80 }), `memory:${id}`],
      [make({ nodeId: id }), `${id}@`],
      [make({ nodeId: id, port: 80 }), `${id}@`],
      [make({ hostname: "host" }), "host"],
      [make({ port: 80 }), ""],
      [make({ path: "path" }), "/path"],
      [make({ protocol: "tcp" }), "tcp:"],
      [make({ protocol: "💬", nodeId: "👨", hostname: "💻", port: 80, path: "🛣" }), "💬://%F0%9F%91%A8@%F0%9F%92%BB:80/%F0%9F%9B%A3"]
    ]
    for (const [address, expected] of cases) assert.strictEqual(NodeAddress.format(address), expected)
  })

  it("brackets IPv6 hosts with or without a port (Go drops them without one, and the last group reads back as a port)", () => {
    assert.strictEqual(NodeAddress.format(make({ protocol: "tcp", nodeId: id, hostname: "b10c::1", port: 80 })), `tcp://${id}@[b10c::1]:80`)
    assert.strictEqual(NodeAddress.format(make({ protocol: "tcp", nodeId: id, hostname: "b10c::1" })), `tcp://${id}@[b10c::1]`)
  })

  it("reads back every address it parsed: bare queries and fragments, portless IPv6 (found by the fuzzer)", () => {
    for (const s of [`mconn://${id}@[2001:db8::1]:`, `mconn://${id}@host?a=%41&b`, `mconn://${id}@host#frag%41%23x`, `mconn://${id}@host?q#f%25`, `${id}@127.#x:1`, `${id}@?x:1`]) {
      const a = parsed(s)
      assertAddress(parsed(NodeAddress.format(a)), a)
    }
    assert.strictEqual(failure(`mconn://${id}@host#a\u0015b`).reason, "malformed")
  })

  it("escapes userinfo and host characters the way Go does", () => {
    assert.strictEqual(NodeAddress.format(make({ protocol: "tcp", nodeId: "a:b@c!", hostname: "h!st" })), "tcp://a%3Ab%40c%21@h!st")
    assert.strictEqual(NodeAddress.format(make({ protocol: "tcp", hostname: "h", path: "/a b%!" })), "tcp://h/a%20b%25%21")
  })
})

describe("NodeAddress.validate", () => {
  const reason = (a: NodeAddress.NodeAddress) => {
    const r = NodeAddress.validate(a)
    return Result.isFailure(r) ? r.failure.reason : "ok"
  }

  it("accepts networked, hostless and pathful addresses", () => {
    assert.strictEqual(reason(make({ protocol: "mconn", nodeId: id, hostname: "host", port: 80, path: "/path" })), "ok")
    assert.strictEqual(reason(make({ protocol: "mconn", nodeId: id, hostname: "host" })), "ok")
    assert.strictEqual(reason(make({ protocol: "mconn", nodeId: id, path: "path" })), "ok")
    assert.strictEqual(reason(make({ protocol: "mconn", nodeId: id, hostname: "👋", path: "👋" })), "ok")
    assert.strictEqual(reason(make({ protocol: "mconn", nodeId: id })), "ok")
  })

  it("rejects a missing protocol, a bad node ID and a port without hostname, with the original's messages", () => {
    const message = (a: NodeAddress.NodeAddress) => {
      const r = NodeAddress.validate(a)
      return Result.isFailure(r) ? r.failure.message : "ok"
    }
    assert.strictEqual(message(make({})), "no protocol")
    assert.strictEqual(message(make({ nodeId: "foo", hostname: "host" })), "no protocol")
    assert.strictEqual(message(make({ protocol: "mconn", hostname: "host" })), "no peer ID")
    assert.strictEqual(message(make({ protocol: "mconn", nodeId: "foo", hostname: "host" })), "invalid peer ID: invalid node ID length 3, expected 40")
    assert.strictEqual(message(make({ protocol: "mconn", nodeId: id, port: 80, path: "path" })), "cannot specify port without hostname")
    assert.strictEqual(reason(make({ protocol: "mconn", nodeId: id, port: 80, path: "path" })), "port_without_hostname")
  })
})

describe("NodeAddress as a value", () => {
  it("compares and hashes by value, so it works as a HashMap key", () => {
    const map = HashMap.make([make({ protocol: "memory", nodeId: id }), 1])
    assert.deepStrictEqual(HashMap.get(map, parsed(`memory:${id}`)), Option.some(1))
    assert.isFalse(Equal.equals(make({ path: "foo" }), make({ path: "/foo" })))
  })

  it("rejects a port outside 0..65535 on construction", () => {
    assert.throws(() => make({ port: 65536 }))
  })
})

describe("NodeAddress properties", () => {
  const nodeId = fc.stringMatching(/^[0-9a-f]{40}$/)
  const protocol = fc.stringMatching(/^[a-z][a-z0-9+.-]{0,8}$/)
  const hostname = fc.oneof(
    fc.stringMatching(/^[a-z0-9.-]{1,30}$/),
    fc.ipV4(),
    fc.ipV6().map((s) => Option.getOrElse(Ip.canonical(s), () => "::1"))
  )
  const safe = fc.constantFrom(..."abcXYZ019-._~!$&'()*+,;=:@/%?# é👋".split(/(?:)/u))
  const path = fc.oneof(fc.constant(""), fc.array(safe, { maxLength: 20 }).map((cs) => "/" + cs.join("")))
  const networked = fc.record({ nodeId, protocol, hostname, port: fc.integer({ min: 1, max: 65535 }), path })

  it("format then parse gives back an equal valid networked address", () => {
    fc.assert(fc.property(networked, (fields) => {
      const address = make(fields)
      const back = NodeAddress.parseResult(NodeAddress.format(address))
      return Result.isSuccess(back) && Equal.equals(back.success, address)
    }), { numRuns: 500 })
  })

  it("parse never throws on arbitrary strings", () => {
    const urlish = fc.array(fc.constantFrom(..."aF0:/@[]%?#.-_ 👋\n".split(/(?:)/u)), { maxLength: 30 }).map((cs) => cs.join(""))
    fc.assert(fc.property(fc.oneof(fc.string({ unit: "binary" }), urlish, urlish.map((s) => `mconn://${id}@${s}`)), (s) =>
      Result.isResult(NodeAddress.parseResult(s))
    ), { numRuns: 1000 })
  })

  it("format never throws on arbitrary fields", () => {
    const text = fc.string({ unit: "binary", maxLength: 10 })
    fc.assert(fc.property(fc.record({ nodeId: text, protocol: text, hostname: text, port: fc.integer({ min: 0, max: 65535 }), path: text }), (fields) =>
      typeof NodeAddress.format(make(fields)) === "string"
    ))
  })
})

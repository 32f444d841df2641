/**
 * Node addresses: a node ID plus where to reach it, written as a URL (docs/ARCHITECTURE.md#node-addresses-and-endpoints), e.g.
 * `mconn://<id>@host:26656`, `<id>@host:26656` (scheme-less, defaults to `mconn`) or `memory:<id>`.
 *
 * Parsing and rendering follow Go's `net/url` exactly so addresses written for the original parse
 * and print the same here.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as NodeId from "./NodeId.ts"

/** The protocol given to addresses written without a scheme. */
export const DEFAULT_PROTOCOL = "mconn"

/** The in-process transport's protocol: `memory:<id>` addresses, which have no host or port. */
export const MEMORY_PROTOCOL = "memory"

/** A TCP/UDP port: an integer in 0..65535, where 0 means "no port". */
export const Port = Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 65535 }))

/**
 * A node address. Fields are plain strings so an address can hold unvalidated values (to render
 * or report them); {@link validate} and {@link parse} check them. Instances compare and hash by
 * value, so they work as `HashMap`/`HashSet` keys. The constructor throws on a port outside
 * 0..65535.
 */
export class NodeAddress extends Schema.Class<NodeAddress>("effect-p2p/NodeAddress")({
  /** The peer's node ID (40 lowercase hex characters when valid), or `""`. */
  nodeId: Schema.String,
  /** Transport protocol, e.g. `"mconn"`, `"tcp"`, `"memory"`; `""` when absent. */
  protocol: Schema.String,
  /** DNS name or IP literal (without brackets), lowercased by {@link parse}; `""` when absent. */
  hostname: Schema.String,
  /** Port, 0 when absent. */
  port: Port,
  /** Decoded path plus `?query` and `#fragment` if the URL had them; `""` when absent. */
  path: Schema.String
}) {}

/** Why a node address is rejected. */
export type InvalidNodeAddressReason =
  | "malformed"
  | "invalid_port"
  | "no_protocol"
  | "no_node_id"
  | "invalid_node_id"
  | "port_without_hostname"

/** A string or value that is not a valid node address. `message` says what is wrong. */
export class InvalidNodeAddress extends Schema.TaggedError<InvalidNodeAddress>()("InvalidNodeAddress", {
  input: Schema.String,
  reason: Schema.Literals(["malformed", "invalid_port", "no_protocol", "no_node_id", "invalid_node_id", "port_without_hostname"]),
  message: Schema.String
}) {}

/** Builds an address; omitted fields default to `""` and port 0. Nothing is validated but the port range. */
export const make = (fields: {
  readonly nodeId?: string
  readonly protocol?: string
  readonly hostname?: string
  readonly port?: number
  readonly path?: string
}): NodeAddress => new NodeAddress({ nodeId: "", protocol: "", hostname: "", port: 0, path: "", ...fields })

// Go's %q, close enough for messages.
const quote = (s: string): string => JSON.stringify(s)

/**
 * Checks an address, in the original's order: "no protocol", "no peer ID", "invalid peer ID: …",
 * "cannot specify port without hostname". The hostname is not required (`memory:<id>` has none).
 */
export const validate = (a: NodeAddress): Result.Result<NodeAddress, InvalidNodeAddress> => {
  const fail = (reason: InvalidNodeAddressReason, message: string) =>
    Result.fail(new InvalidNodeAddress({ input: format(a), reason, message }))
  if (a.protocol === "") return fail("no_protocol", "no protocol")
  if (a.nodeId === "") return fail("no_node_id", "no peer ID")
  const id = NodeId.validate(a.nodeId)
  if (Result.isFailure(id)) return fail("invalid_node_id", `invalid peer ID: ${id.failure.message}`)
  if (a.port > 0 && a.hostname === "") return fail("port_without_hostname", "cannot specify port without hostname")
  return Result.succeed(a)
}

// ---------------------------------------------------------------------------------------------
// A port of the parts of Go's net/url that ParseNodeAddress and URL.String() use. Go works on
// UTF-8 bytes; so do the escaping routines here. Decoded bytes that are not UTF-8 become U+FFFD.

type Mode = "path" | "userPassword" | "host" | "zone" | "fragment"

const utf8 = new TextEncoder()
const text = new TextDecoder("utf-8", { ignoreBOM: true })

const isAlnum = (c: number) => (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39)
const unhex = (c: number | undefined): number => {
  if (c === undefined) return -1
  if (c >= 0x30 && c <= 0x39) return c - 0x30
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10
  return -1
}

// Go's shouldEscape: which bytes must be percent-encoded in each part of a URL.
const shouldEscape = (c: number, mode: Mode): boolean => {
  if (isAlnum(c)) return false
  const ch = String.fromCharCode(c)
  if ((mode === "host" || mode === "zone") && "!$&'()*+,;=:[]<>\"".includes(ch)) return false
  if ("-_.~".includes(ch)) return false
  if ("$&+,/:;=?@".includes(ch)) {
    if (mode === "path") return ch === "?"
    if (mode === "userPassword") return "@/?:".includes(ch)
    if (mode === "fragment") return false
  }
  if (mode === "fragment" && "!()*".includes(ch)) return false
  return true
}

/** Go's `url.escape` (uppercase hex). */
const escape = (s: string, mode: Mode): string => {
  let out = ""
  for (const c of utf8.encode(s)) {
    out += shouldEscape(c, mode) ? "%" + c.toString(16).toUpperCase().padStart(2, "0") : String.fromCharCode(c)
  }
  return out
}

/** Go's `url.unescape`: bad escapes fail; a host may only escape non-ASCII bytes (and `%25`). */
const unescape = (s: string, mode: Mode): Result.Result<string, string> => {
  const b = utf8.encode(s)
  const out: Array<number> = []
  for (let i = 0; i < b.length; ) {
    const c = b[i] ?? 0
    if (c === 0x25) {
      const hi = unhex(b[i + 1])
      const lo = unhex(b[i + 2])
      const seq = text.decode(b.subarray(i, i + 3))
      if (hi < 0 || lo < 0) return Result.fail(`invalid URL escape ${quote(seq)}`)
      const v = (hi << 4) | lo
      if (mode === "host" && hi < 8 && seq !== "%25") return Result.fail(`invalid URL escape ${quote(seq)}`)
      if (mode === "zone" && seq !== "%25" && v !== 0x20 && shouldEscape(v, "host")) {
        return Result.fail(`invalid URL escape ${quote(seq)}`)
      }
      out.push(v)
      i += 3
    } else {
      if ((mode === "host" || mode === "zone") && c < 0x80 && shouldEscape(c, mode)) {
        return Result.fail(`invalid character ${quote(String.fromCharCode(c))} in host name`)
      }
      out.push(c)
      i++
    }
  }
  return Result.succeed(text.decode(new Uint8Array(out)))
}

/** The fields of Go's `url.URL` this module reads. `user` is the username, undefined without `@`. */
interface Url {
  readonly scheme: string
  readonly opaque: string
  readonly user: string | undefined
  readonly host: string
  readonly path: string
  readonly rawQuery: string
  readonly fragment: string
}

const getScheme = (raw: string): Result.Result<readonly [scheme: string, rest: string], string> => {
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i)
    if ((c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a)) continue
    if ((c >= 0x30 && c <= 0x39) || c === 0x2b || c === 0x2d || c === 0x2e) {
      if (i === 0) return Result.succeed(["", raw])
      continue
    }
    if (c === 0x3a) {
      if (i === 0) return Result.fail("missing protocol scheme")
      return Result.succeed([raw.slice(0, i), raw.slice(i + 1)])
    }
    return Result.succeed(["", raw])
  }
  return Result.succeed(["", raw])
}

const validOptionalPort = (port: string): boolean => port === "" || /^:[0-9]*$/.test(port)

const validUserinfo = (s: string): boolean => /^[A-Za-z0-9\-._:~!$&'()*+,;=%@]*$/.test(s)

const parseHost = (host: string): Result.Result<string, string> => {
  if (host.startsWith("[")) {
    const close = host.lastIndexOf("]")
    if (close < 0) return Result.fail("missing ']' in host")
    const colonPort = host.slice(close + 1)
    if (!validOptionalPort(colonPort)) return Result.fail(`invalid port ${quote(colonPort)} after host`)
    // RFC 6874: "%25" starts an IPv6 zone, which may escape more than the host may.
    const zone = host.slice(0, close).indexOf("%25")
    if (zone >= 0) {
      const parts = [unescape(host.slice(0, zone), "host"), unescape(host.slice(zone, close), "zone"), unescape(host.slice(close), "host")]
      let out = ""
      for (const part of parts) {
        if (Result.isFailure(part)) return part
        out += part.success
      }
      return Result.succeed(out)
    }
  } else {
    const colon = host.lastIndexOf(":")
    if (colon >= 0 && !validOptionalPort(host.slice(colon))) {
      return Result.fail(`invalid port ${quote(host.slice(colon))} after host`)
    }
  }
  return unescape(host, "host")
}

const parseAuthority = (authority: string): Result.Result<readonly [user: string | undefined, host: string], string> => {
  const at = authority.lastIndexOf("@")
  const host = parseHost(authority.slice(at + 1))
  if (Result.isFailure(host)) return Result.fail(host.failure)
  if (at < 0) return Result.succeed([undefined, host.success])
  const userinfo = authority.slice(0, at)
  if (!validUserinfo(userinfo)) return Result.fail("net/url: invalid userinfo")
  const colon = userinfo.indexOf(":")
  const username = unescape(colon < 0 ? userinfo : userinfo.slice(0, colon), "userPassword")
  if (Result.isFailure(username)) return Result.fail(username.failure)
  if (colon >= 0) {
    const password = unescape(userinfo.slice(colon + 1), "userPassword")
    if (Result.isFailure(password)) return Result.fail(password.failure)
  }
  return Result.succeed([username.success, host.success])
}

/** Go's `url.Parse` (not via a request), reduced to the fields in {@link Url}. */
const parseUrl = (raw: string): Result.Result<Url, string> => {
  const hash = raw.indexOf("#")
  const beforeHash = hash < 0 ? raw : raw.slice(0, hash)
  // Go checks the whole URL, fragment included.
  if (/[\x00-\x1f\x7f]/.test(raw)) return Result.fail("net/url: invalid control character in URL")
  const url = parseWithoutFragment(beforeHash)
  if (hash < 0 || Result.isFailure(url)) return url
  const fragment = unescape(raw.slice(hash + 1), "fragment")
  if (Result.isFailure(fragment)) return Result.fail(fragment.failure)
  return Result.succeed({ ...url.success, fragment: fragment.success })
}

const parseWithoutFragment = (raw: string): Result.Result<Url, string> => {
  const empty: Url = { scheme: "", opaque: "", user: undefined, host: "", path: "", rawQuery: "", fragment: "" }
  if (/[\x00-\x1f\x7f]/.test(raw)) return Result.fail("net/url: invalid control character in URL")
  if (raw === "*") return Result.succeed({ ...empty, path: "*" })
  const split = getScheme(raw)
  if (Result.isFailure(split)) return Result.fail(split.failure)
  const scheme = split.success[0].toLowerCase()
  let rest = split.success[1]
  let rawQuery = ""
  const question = rest.indexOf("?")
  if (question >= 0) {
    // A lone trailing "?" is Go's ForceQuery: an empty query, so it is simply dropped here.
    rawQuery = rest.slice(question + 1)
    rest = rest.slice(0, question)
  }
  if (!rest.startsWith("/")) {
    // Rootless paths after a scheme are opaque (RFC 3986).
    if (scheme !== "") return Result.succeed({ ...empty, scheme, opaque: rest, rawQuery })
    if ((rest.split("/")[0] ?? "").includes(":")) return Result.fail("first path segment in URL cannot contain colon")
  }
  let user: string | undefined
  let host = ""
  if ((scheme !== "" || !rest.startsWith("///")) && rest.startsWith("//")) {
    let authority = rest.slice(2)
    rest = ""
    const slash = authority.indexOf("/")
    if (slash >= 0) {
      rest = authority.slice(slash)
      authority = authority.slice(0, slash)
    }
    const parsed = parseAuthority(authority)
    if (Result.isFailure(parsed)) return Result.fail(parsed.failure)
    ;[user, host] = parsed.success
  }
  const path = unescape(rest, "path")
  if (Result.isFailure(path)) return Result.fail(path.failure)
  return Result.succeed({ ...empty, scheme, user, host, path: path.success, rawQuery })
}

/** Go's `url.URL.Hostname()` and `Port()`: split a trailing numeric port, then drop brackets. */
const splitHostPort = (hostPort: string): readonly [host: string, port: string] => {
  let host = hostPort
  let port = ""
  const colon = host.lastIndexOf(":")
  if (colon >= 0 && validOptionalPort(host.slice(colon))) {
    port = host.slice(colon + 1)
    host = host.slice(0, colon)
  }
  if (host.startsWith("[") && host.endsWith("]")) host = host.slice(1, -1)
  return [host, port]
}

// "host:port" (with nothing that could be a scheme) was misread as a scheme; re-parse it.
const hostPortPrefix = /^[^/:]+:\d+(\/|$)/

/**
 * Parses a node address (docs/ARCHITECTURE.md#node-addresses-and-endpoints): `scheme://<id>@host[:port][/path][?query][#fragment]`,
 * scheme-less `<id>@host[:port][/path]` (protocol {@link DEFAULT_PROTOCOL}), or opaque
 * `scheme:<id>`. The protocol, node ID and hostname are lowercased (an opaque ID is not); the path
 * is decoded. The result is validated with {@link validate}.
 *
 * Errors ({@link InvalidNodeAddress}, message prefixed `invalid node address "<input>": `):
 * "malformed" for URL syntax, "invalid_port" for a port above 65535, and the reasons of
 * {@link validate}.
 *
 * @example
 * ```ts
 * NodeAddress.parseResult("mconn://<id>@127.0.0.1:26656") // Success({ protocol: "mconn", port: 26656, … })
 * ```
 */
export const parseResult = (s: string): Result.Result<NodeAddress, InvalidNodeAddress> => {
  const fail = (reason: InvalidNodeAddressReason, detail: string) =>
    Result.fail(new InvalidNodeAddress({ input: s, reason, message: `invalid node address ${quote(s)}: ${detail}` }))
  let url = parseUrl(s)
  if ((Result.isFailure(url) || url.success.scheme === "") && (!s.includes("://") || hostPortPrefix.test(s))) {
    url = parseUrl(DEFAULT_PROTOCOL + "://" + s)
  }
  if (Result.isFailure(url)) return fail("malformed", url.failure)
  const u = url.success
  let address: NodeAddress
  if (u.opaque !== "") {
    address = make({ protocol: u.scheme, nodeId: u.opaque })
  } else {
    const [hostname, portText] = splitHostPort(u.host)
    let port = 0
    if (portText !== "") {
      port = Number(portText)
      if (port > 65535) return fail("invalid_port", `invalid port ${quote(portText)}`)
    }
    let path = u.path
    if (u.rawQuery !== "") path += "?" + u.rawQuery
    if (u.fragment !== "") path += "#" + u.fragment
    if (path !== "" && !"/#?".includes(path.charAt(0))) path = "/" + path
    address = make({ protocol: u.scheme, nodeId: (u.user ?? "").toLowerCase(), hostname: hostname.toLowerCase(), port, path })
  }
  const valid = validate(address)
  return Result.isFailure(valid) ? fail(valid.failure.reason, valid.failure.message) : valid
}

/** Effect form of {@link parseResult}: `yield* NodeAddress.parse(s)`. */
export const parse = (s: string): Effect.Effect<NodeAddress, InvalidNodeAddress> => Effect.fromResult(parseResult(s))

/** Like {@link parse} but throws: for constants in code and tests, never for input. */
export const unsafeParse = (s: string): NodeAddress => Result.getOrThrow(parseResult(s))

// Go's net.JoinHostPort: brackets around hosts containing a colon (IPv6).
const joinHostPort = (host: string, port: number): string => (host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`)

const queryAndFragment = (path: string): string => {
  const hash = path.startsWith("#") ? 0 : path.indexOf("#")
  const query = hash < 0 ? path : path.slice(0, hash)
  return query + (hash < 0 ? "" : "#" + escape(path.slice(hash + 1), "fragment"))
}

/**
 * Renders an address as Go's `NodeAddress.String()` does (docs/ARCHITECTURE.md#node-addresses-and-endpoints): a URL with the node ID as
 * userinfo, `protocol:<id>` when there is no hostname and no other path, and no leading `//`. The
 * path is escaped (`?` as `%3F`, `#` as `%23`, non-ASCII as uppercase `%XX`), so rendering then
 * parsing gives the same address for any valid networked address. Two fixes over Go make that hold
 * for every address {@link parseResult} returns too: an IPv6 hostname without a port keeps its
 * brackets, and a path that is only a query or fragment (`host?a=1`) is written back as one.
 *
 * @example
 * ```ts
 * NodeAddress.format(NodeAddress.make({ protocol: "memory", nodeId: id })) // "memory:<id>"
 * ```
 */
export const format = (a: NodeAddress): string => {
  let user: string | undefined = a.nodeId === "" ? undefined : a.nodeId
  let host = ""
  let opaque = ""
  let path: string
  if (a.hostname !== "") {
    // Unlike Go, a hostname with a colon (IPv6) keeps its brackets without a port too, or the
    // last group would read back as the port.
    host = a.port > 0 ? joinHostPort(a.hostname, a.port) : a.hostname.includes(":") ? `[${a.hostname}]` : a.hostname
    path = a.path
  } else if (a.protocol !== "" && (a.path === "" || a.path === a.nodeId)) {
    user = undefined
    opaque = a.nodeId
    path = ""
  } else {
    path = a.path !== "" && !"/?#".includes(a.path.charAt(0)) ? "/" + a.path : a.path
  }
  // Go's url.URL.String() for a URL with no query and no fragment.
  let out = a.protocol === "" ? "" : a.protocol + ":"
  if (opaque !== "") {
    out += opaque
  } else {
    if (a.protocol !== "" || host !== "" || user !== undefined) {
      if (host !== "" || path !== "" || user !== undefined) out += "//"
      if (user !== undefined) out += escape(user, "userPassword") + "@"
      if (host !== "") out += escape(host, "host")
    }
    // A path that {@link parseResult} made from a bare query or fragment is written back as one
    // (the query raw, as it was read; the fragment escaped), so it reads back unchanged.
    const bare = (host !== "" || user !== undefined) && (path.startsWith("?") || path.startsWith("#"))
    const escaped = path === "*" ? "*" : bare ? queryAndFragment(path) : escape(path, "path")
    if (escaped !== "" && !escaped.startsWith("/") && host !== "" && !bare) out += "/"
    if (out === "" && (escaped.split("/")[0] ?? "").includes(":")) out += "./"
    out += escaped
  }
  return out.startsWith("//") ? out.slice(2) : out
}

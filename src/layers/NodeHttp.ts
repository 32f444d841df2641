/**
 * The node's HTTP endpoints, answered the way CometBFT answers them so existing dashboards and
 * scripts work unchanged:
 * - `GET /metrics`: Prometheus text, names prefixed by a namespace (`cometbft_p2p_peers`).
 * - `GET /net_info`, `GET /status`, `GET /health`: CometBFT's JSON-RPC responses
 *   (`{"jsonrpc":"2.0","id":-1,"result":…}`), and the same methods as JSON-RPC `POST /` (single
 *   requests or batches).
 *
 * Two ways to serve them: {@link layer} runs a small `node:http` server of the node's own (what the
 * `effect-p2p` command uses), and {@link routes} adds the same endpoints to an application's
 * Effect `HttpRouter`. Both answer through {@link respond}.
 *
 * The node's own server listens on TCP (`host:port`) or on a unix socket (`unix:///abs/path.sock`,
 * as CometBFT accepts): a socket file left by a killed process is removed first (only a socket
 * nobody answers on), a path that exists and is not a socket, or whose directory does not exist, is
 * refused with an {@link HttpListenError} saying so, and the socket file is removed on close.
 *
 * What a P2P node cannot fill: `status` has no `sync_info` and no `validator_info` (there are no
 * blocks and no validator key), and in `connection_status` the flowrate fields that describe a
 * bounded transfer (`BytesRem`, `TimeRem`, `Progress`) are 0.
 *
 * @since 0.1.0
 */
import * as Fs from "node:fs"
import * as Http from "node:http"
import * as Net from "node:net"
import * as Path from "node:path"
import * as ByteSize from "effect/ByteSize"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as HttpIncomingMessage from "effect/http/HttpIncomingMessage"
import * as HttpRouter from "effect/http/HttpRouter"
import type * as HttpServerRequest from "effect/http/HttpServerRequest"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import * as PrometheusMetrics from "effect/observability/PrometheusMetrics"
import * as Ban from "../domain/Ban.ts"
import * as CometJson from "../domain/CometJson.ts"
import { parseGoDuration } from "../domain/GoDuration.ts"
import * as ListenFailure from "../domain/ListenFailure.ts"
import * as Opt from "../domain/Options.ts"
import { PeerManager } from "../services/PeerManager.ts"
import { Router } from "../services/Router.ts"
import { Transport } from "../services/Transport.ts"

// ---------------------------------------------------------------------------------------------
// Options, errors, service
// ---------------------------------------------------------------------------------------------

/** What to serve. */
export interface Options {
  /** `GET /metrics`. Default true. */
  readonly metrics?: boolean
  /** `GET /net_info`, `/status`, `/health` and JSON-RPC `POST /`. Default true. */
  readonly rpc?: boolean
  /** Prefix of metric names (`cometbft_p2p_peers`). Default `"cometbft"`. */
  readonly namespace?: string
  /** Largest JSON-RPC request body; larger ones get 413 before they are read. Default 65536 bytes. */
  readonly maxBodyBytes?: number
  /**
   * Serve the methods that change the node: `unsafe_ban` and `unsafe_unban` (CometBFT's `unsafe`).
   * Default false; the `effect-p2p` command turns them on for a server bound to a loopback address,
   * or with `rpc.unsafe = true`.
   */
  readonly unsafe?: boolean
}

/** Options of the node's own server ({@link layer}). */
export interface ServerOptions extends Options {
  /**
   * `host:port` to listen on (port 0 picks a free one; an empty host listens on every interface),
   * or `unix:///abs/path.sock` for a unix socket (at most {@link UNIX_PATH_MAX} bytes of path).
   */
  readonly address: string
  /** Connections served at once; more are refused. 0: no limit. Default 64. */
  readonly maxOpenConnections?: number
  /** A request (headers and body) must arrive within this (ms, or text like "10 seconds"), or the connection is closed. Default 10 s. */
  readonly requestTimeout?: Duration.Input
}

/** Defaults of {@link Options} and {@link ServerOptions}. */
export const defaults = {
  metrics: true,
  rpc: true,
  unsafe: false,
  namespace: "cometbft",
  maxBodyBytes: 65_536,
  maxOpenConnections: 64,
  requestTimeout: 10_000
} as const

/** The server could not listen: `in_use`, `permission`, `unavailable` or `io`, as for the TCP transport. */
export class HttpListenError extends Schema.TaggedError<HttpListenError>()("HttpListenError", {
  address: Schema.String,
  reason: Schema.Literals(["in_use", "permission", "unavailable", "io"]),
  message: Schema.String
}) {}

/** A bad option; `option` names it. */
export class InvalidHttpOptions extends Schema.TaggedError<InvalidHttpOptions>()("InvalidHttpOptions", {
  option: Schema.String,
  message: Schema.String
}) {}

/** The running server: where it listens. */
export class NodeHttp extends Context.Service<NodeHttp, {
  /** The host listened on; "" on a unix socket. */
  readonly host: string
  /** The bound port (the chosen one when the address said 0); 0 on a unix socket. */
  readonly port: number
  /** `http://host:port`, or `unix:///abs/path.sock` on a unix socket. */
  readonly url: string
  /** The socket's path when listening on a unix socket (`http.request({ socketPath })`). */
  readonly socketPath?: string
}>()("effect-p2p/NodeHttp") {}

// ---------------------------------------------------------------------------------------------
// Documents
// ---------------------------------------------------------------------------------------------

/** The `net_info` result for the running node. */
export const netInfo: Effect.Effect<CometJson.NetInfoJson, never, Router | Transport> = Effect.gen(function* () {
  const router = yield* Router
  const transport = yield* Transport
  const info = yield* router.nodeInfo
  const endpoints = yield* transport.endpoints
  const routed = yield* router.peers
  const peers: Array<CometJson.PeerJson> = []
  for (const p of routed) {
    const status = yield* router.connectionStatus(p.nodeId)
    peers.push({
      node_info: CometJson.nodeInfo(p.nodeInfo),
      is_outbound: p.direction === "outgoing",
      connection_status: CometJson.connectionStatus(status ?? { duration: 0, send: emptyFlow, receive: emptyFlow, channels: [] }),
      remote_ip: p.remoteEndpoint.ip
    })
  }
  return {
    listening: endpoints.length > 0,
    listeners: endpoints.length > 0 ? [CometJson.listener(info.listenAddr.replace(/^[a-z]+:\/\//, ""))] : [],
    n_peers: String(peers.length),
    peers
  }
})

const emptyFlow = { start: 0, bytes: 0, samples: 0, instRate: 0, curRate: 0, avgRate: 0, peakRate: 0, duration: 0, idle: 0, active: false }

/** The `status` result: the node's `node_info`. */
export const status: Effect.Effect<CometJson.StatusJson, never, Router> = Effect.gen(function* () {
  const info = yield* (yield* Router).nodeInfo
  return { node_info: CometJson.nodeInfo(info) }
})

/** What the methods need: the node's router, transport and peer manager. */
export type Services = Router | Transport | PeerManager

/** A method's parameters: the JSON-RPC `params` object, or the query of a GET. */
type Params = Readonly<Record<string, unknown>>

/** A method refused its parameters (JSON-RPC "Invalid params"). */
interface InvalidParams {
  readonly _tag: "InvalidParams"
  readonly message: string
}

type Method = (params: Params) => Effect.Effect<unknown, InvalidParams, Services>

const invalid = (message: string): Effect.Effect<never, InvalidParams> => Effect.fail({ _tag: "InvalidParams", message })

/** A parameter as text: a string, or a number; URI calls may quote strings as CometBFT's do. */
const textParam = (params: Params, name: string): string | undefined => {
  const v = params[name]
  if (typeof v === "number") return String(v)
  if (typeof v !== "string") return undefined
  return v.length >= 2 && v.startsWith("\"") && v.endsWith("\"") ? v.slice(1, -1) : v
}

/** A ban as the `bans` method lists it. */
export const banJson = (ban: Ban.Ban) => ({
  subject: Ban.formatSubject(ban.subject),
  kind: ban.subject._tag === "Node" ? "node" : "network",
  since: CometJson.time(ban.since),
  until: Number.isFinite(ban.until) ? CometJson.time(ban.until) : null,
  reason: ban.reason
})

/** A ban duration from an operator: a Go duration ("1h30m"), Effect text ("2 hours"), or "forever". */
const banDuration = (text: string | undefined): Duration.Input | undefined | "invalid" => {
  if (text === undefined || text === "") return undefined
  if (/^(forever|infinity)$/i.test(text)) return Number.POSITIVE_INFINITY
  const go = parseGoDuration(text)
  if (go !== undefined) return go
  return Option.isSome(Duration.fromInput(text as Duration.Input)) ? (text as Duration.Input) : "invalid"
}

const bans: Method = Effect.fn("NodeHttp.bans")(function* () {
  const list = yield* (yield* PeerManager).bans
  return { bans: list.map(banJson) }
})

const unsafeBan: Method = Effect.fn("NodeHttp.unsafeBan")(function* (params: Params) {
  const subject = textParam(params, "subject")
  if (subject === undefined) return yield* invalid(`"subject" is required: a node ID, an IP address or a network such as 10.0.0.0/24`)
  const duration = banDuration(textParam(params, "duration"))
  if (duration === "invalid") return yield* invalid(`"duration" must be a duration such as 1h, 30m or "2 hours", or forever`)
  const pm = yield* PeerManager
  const made = yield* pm.ban(subject, { ...(duration === undefined ? {} : { duration }), reason: textParam(params, "reason") ?? "banned by an operator" }).pipe(
    Effect.catch((e) => invalid(e.message))
  )
  return { ban: banJson(made) }
})

const unsafeUnban: Method = Effect.fn("NodeHttp.unsafeUnban")(function* (params: Params) {
  const subject = textParam(params, "subject")
  if (subject === undefined) return yield* invalid(`"subject" is required`)
  const pm = yield* PeerManager
  const lifted = yield* pm.unban(subject).pipe(Effect.catch((e) => invalid(e.message)))
  return { lifted }
})

/** The methods served to anyone, by name (CometBFT's names, plus `bans`). */
const methods: Record<string, Method> = {
  net_info: () => netInfo,
  status: () => status,
  health: () => Effect.succeed({}),
  bans
}

/** The methods that change the node, served only with `unsafe`. */
const unsafeMethods: Record<string, Method> = {
  unsafe_ban: unsafeBan,
  unsafe_unban: unsafeUnban
}

/** Methods served. */
export const METHODS: ReadonlyArray<string> = Object.keys(methods)
/** Methods served with `unsafe`. */
export const UNSAFE_METHODS: ReadonlyArray<string> = Object.keys(unsafeMethods)

const methodOf = (options: Options, name: string): Method | undefined =>
  methods[name] ?? ((options.unsafe ?? defaults.unsafe) ? unsafeMethods[name] : undefined)

// ---------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------

/** A response: status code, content type, body. */
export interface Response {
  readonly status: number
  readonly contentType: string
  readonly body: string
}

const json = (status: number, value: unknown): Response => ({ status, contentType: "application/json", body: JSON.stringify(value, null, 2) + "\n" })
const text = (status: number, body: string): Response => ({ status, contentType: "text/plain; charset=utf-8", body })

/** The most requests answered in one JSON-RPC batch (CometBFT's `max_request_batch_size`). */
export const MAX_BATCH = 10

const call = (options: Options, request: CometJson.RpcRequest): Effect.Effect<unknown, never, Services> =>
  Effect.suspend((): Effect.Effect<unknown, never, Services> => {
    if (request._tag === "Invalid") return Effect.succeed(CometJson.rpcError(request.id, CometJson.RpcErrorCode.invalidRequest, "Invalid Request", request.data))
    const method = methodOf(options, request.method)
    if (method === undefined) {
      const served = [...METHODS, ...((options.unsafe ?? defaults.unsafe) ? UNSAFE_METHODS : [])]
      return Effect.succeed(CometJson.rpcError(request.id, CometJson.RpcErrorCode.methodNotFound, "Method not found", `${JSON.stringify(request.method)}: this node serves ${served.join(", ")}`))
    }
    return method(request.params).pipe(
      Effect.map((result) => CometJson.rpcResult(request.id, result)),
      Effect.catch((e) => Effect.succeed(CometJson.rpcError(request.id, CometJson.RpcErrorCode.invalidParams, "Invalid params", e.message)))
    )
  })

const rpcPost = (options: Options, body: string): Effect.Effect<Response, never, Services> =>
  Effect.suspend(() => {
    let parsed: unknown
    try {
      parsed = JSON.parse(body)
    } catch (e) {
      return Effect.succeed(json(200, CometJson.rpcError(null, CometJson.RpcErrorCode.parseError, "Parse error", (e as Error).message)))
    }
    if (!Array.isArray(parsed)) return Effect.map(call(options, CometJson.parseRequest(parsed)), (r) => json(200, r))
    if (parsed.length === 0 || parsed.length > MAX_BATCH) {
      return Effect.succeed(json(200, CometJson.rpcError(null, CometJson.RpcErrorCode.invalidRequest, "Invalid Request", `a batch holds 1 to ${MAX_BATCH} requests, got ${parsed.length}`)))
    }
    return Effect.map(Effect.forEach(parsed, (r) => call(options, CometJson.parseRequest(r))), (rs) => json(200, rs))
  })

/**
 * Answers one request: `method`, `path` (query ignored) and, for `POST /`, the body. `undefined`
 * body means the body was not read (any method but POST).
 */
export const respond = (
  options: Options,
  request: { readonly method: string; readonly url: string; readonly body?: string }
): Effect.Effect<Response, never, Services> =>
  Effect.suspend(() => {
    const metrics = options.metrics ?? defaults.metrics
    const rpc = options.rpc ?? defaults.rpc
    const url = new URL(request.url, "http://node")
    const path = url.pathname
    const served = [...(metrics ? ["/metrics"] : []), ...(rpc ? [...METHODS, ...((options.unsafe ?? defaults.unsafe) ? UNSAFE_METHODS : [])].map((m) => `/${m}`) : [])]
    if (request.method === "GET" && path === "/metrics" && metrics) {
      return Effect.map(PrometheusMetrics.format({ prefix: options.namespace ?? defaults.namespace }), (body) => ({
        status: 200,
        contentType: "text/plain; version=0.0.4; charset=utf-8",
        body
      }))
    }
    const method = rpc && request.method === "GET" && path !== "/" ? methodOf(options, path.slice(1)) : undefined
    if (method !== undefined) {
      return method(Object.fromEntries(url.searchParams)).pipe(
        Effect.map((result) => json(200, CometJson.rpcResult(-1, result))),
        Effect.catch((e) => Effect.succeed(json(200, CometJson.rpcError(-1, CometJson.RpcErrorCode.invalidParams, "Invalid params", e.message))))
      )
    }
    if (rpc && request.method === "POST" && path === "/") return rpcPost(options, request.body ?? "")
    if (request.method === "GET" && path === "/") return Effect.succeed(text(200, `effect-p2p node. Endpoints: ${served.join(", ")}${rpc ? ", JSON-RPC POST /" : ""}\n`))
    if (request.method !== "GET" && request.method !== "POST") return Effect.succeed(text(405, "method not allowed: use GET (or POST / for JSON-RPC)\n"))
    return Effect.succeed(text(404, `not found: ${path}; this endpoint serves ${served.join(", ") || "nothing"}\n`))
  })

// ---------------------------------------------------------------------------------------------
// Serving
// ---------------------------------------------------------------------------------------------

/** Splits `host:port` (IPv6 in brackets; an empty host means every interface). */
export const splitHostPort = (address: string): { readonly host: string; readonly port: number } | undefined => {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(address)
  if (m === null || Number(m[3]) > 65535) return undefined
  return { host: m[1] ?? m[2] ?? "", port: Number(m[3]) }
}

/** The `unix://` prefix of a unix-socket address. */
export const UNIX_SCHEME = "unix://"

/** The longest unix socket path, in bytes (Linux's `sun_path` holds 108 with the final NUL). */
export const UNIX_PATH_MAX = 107

/** Whether an address names a unix socket (`unix://...`). */
export const isUnixAddress = (address: string): boolean => address.startsWith(UNIX_SCHEME)

/**
 * The path of a `unix:///abs/path.sock` address, or why it is not one: the path must be absolute,
 * printable ASCII, and at most {@link UNIX_PATH_MAX} bytes.
 */
export const parseUnixAddress = (address: string): { readonly path: string } | { readonly problem: string } => {
  const path = address.startsWith(UNIX_SCHEME) ? address.slice(UNIX_SCHEME.length) : ""
  if (!path.startsWith("/")) return { problem: `${JSON.stringify(address)} must name an absolute path, like "unix:///var/run/effect-p2p/rpc.sock"` }
  if (!/^[\x20-\x7e]+$/.test(path)) return { problem: `${JSON.stringify(address)}: the socket path must be printable ASCII` }
  if (path.endsWith("/")) return { problem: `${JSON.stringify(address)} names a directory, not a socket file` }
  if (Buffer.byteLength(path) > UNIX_PATH_MAX) return { problem: `${JSON.stringify(address)}: the socket path is ${Buffer.byteLength(path)} bytes; unix socket paths hold at most ${UNIX_PATH_MAX}` }
  return { path }
}

const unixError = (address: string, reason: HttpListenError["reason"], what: string) => new HttpListenError({ address, reason, message: `cannot listen on ${address}: ${what}` })

/** Whether something accepts connections on the socket at `path` (a live server, not a stale file). */
const answers = (path: string): Effect.Effect<boolean> =>
  Effect.callback<boolean>((resume) => {
    const socket = Net.connect({ path })
    const done = (alive: boolean) => {
      socket.removeAllListeners()
      socket.on("error", () => {})
      socket.destroy()
      resume(Effect.succeed(alive))
    }
    socket.once("connect", () => done(true))
    // ECONNREFUSED: a socket file nobody listens on (its process was killed). Any other error also
    // means nobody answers.
    socket.once("error", () => done(false))
    return Effect.sync(() => socket.destroy())
  })

/**
 * Gets a unix socket path ready to listen on: its directory must exist, and the path must be
 * absent or a socket nobody answers on (left by a killed process), which is removed. A live
 * server on it is `in_use`; a path that is not a socket, or a missing directory, is refused.
 */
export const prepareUnixSocket = (address: string): Effect.Effect<string, HttpListenError | InvalidHttpOptions> =>
  Effect.gen(function* () {
    const parsed = parseUnixAddress(address)
    if ("problem" in parsed) return yield* new InvalidHttpOptions({ option: "address", message: `NodeHttp address ${parsed.problem}` })
    const path = parsed.path
    const directory = Path.dirname(path)
    const stat = (what: string, read: () => Fs.Stats | undefined) =>
      Effect.try({ try: read, catch: (e) => unixError(address, "io", `cannot read ${what}: ${(e as Error).message}`) })
    const dir = yield* stat(directory, () => Fs.statSync(directory, { throwIfNoEntry: false }))
    if (dir === undefined) return yield* unixError(address, "io", `the directory ${directory} does not exist`)
    if (!dir.isDirectory()) return yield* unixError(address, "io", `${directory} is not a directory`)
    const existing = yield* stat(path, () => Fs.lstatSync(path, { throwIfNoEntry: false }))
    if (existing === undefined) return path
    if (!existing.isSocket()) return yield* unixError(address, "io", `${path} exists and is not a socket`)
    if (yield* answers(path)) return yield* new HttpListenError({ address, reason: "in_use", message: `${address} is in use by another process` })
    const removed = yield* Effect.sync((): NodeJS.ErrnoException | undefined => {
      try {
        Fs.unlinkSync(path)
        return undefined
      } catch (e) {
        return (e as NodeJS.ErrnoException).code === "ENOENT" ? undefined : (e as NodeJS.ErrnoException)
      }
    })
    if (removed !== undefined) {
      return yield* unixError(address, removed.code === "EACCES" || removed.code === "EPERM" ? "permission" : "io", `cannot remove the stale socket ${path}: ${removed.message}`)
    }
    return path
  })

const inodeOf = (path: string): number | undefined => {
  try {
    return Fs.lstatSync(path, { throwIfNoEntry: false })?.ino
  } catch {
    return undefined
  }
}

/** A listen failure on a unix socket, in words that fit a path rather than a port. */
const describeUnixFailure = (address: string, e: NodeJS.ErrnoException): HttpListenError => {
  switch (e.code) {
    case "EADDRINUSE":
      return new HttpListenError({ address, reason: "in_use", message: `${address} is in use by another process` })
    case "EACCES":
    case "EPERM":
      return unixError(address, "permission", "permission denied (the directory must be writable)")
    default:
      return unixError(address, "io", e.message)
  }
}

/** Connections served at once (`max_open_connections`); 0 = no limit. */
export const OpenConnections = Opt.Count(1_000_000)

/** The server's limits as a schema (`domain/Options.ts`); defaults from {@link defaults}. */
const Limits = Schema.Struct({
  maxBodyBytes: Opt.withDefault(Opt.Between(1, 1 << 30), defaults.maxBodyBytes),
  maxOpenConnections: Opt.withDefault(OpenConnections, defaults.maxOpenConnections),
  requestTimeout: Opt.withDefault(Opt.Millis, defaults.requestTimeout)
}).check(Opt.rule("requestTimeout", (l) => l.requestTimeout > 0, "must be positive"))

const limitsOf = (options: ServerOptions) =>
  Effect.fromResult(Opt.decode(Limits, {
    ...(options.maxBodyBytes === undefined ? {} : { maxBodyBytes: options.maxBodyBytes }),
    ...(options.maxOpenConnections === undefined ? {} : { maxOpenConnections: options.maxOpenConnections }),
    ...(options.requestTimeout === undefined ? {} : { requestTimeout: options.requestTimeout })
  })).pipe(Effect.mapError((p) => new InvalidHttpOptions({ option: p.option, message: `NodeHttp option ${p.option}: ${p.message}` })))

/**
 * Serves the endpoints on `options.address` until the scope closes: a `node:http` server with
 * bounded connections, request time and body size. Yields where it listens.
 */
export const serve = Effect.fn("NodeHttp.serve")(function* (options: ServerOptions): Effect.fn.Return<NodeHttp["Service"], HttpListenError | InvalidHttpOptions, Services | Scope.Scope> {
  const unix = isUnixAddress(options.address)
  const where = unix ? { host: "", port: 0 } : splitHostPort(options.address)
  if (where === undefined) return yield* new InvalidHttpOptions({ option: "address", message: `NodeHttp address ${JSON.stringify(options.address)} is not "host:port" or "unix:///abs/path"` })
  const limits = yield* limitsOf(options)
  const socketPath = unix ? yield* prepareUnixSocket(options.address) : undefined
  const maxBody = limits.maxBodyBytes
  const maxConnections = limits.maxOpenConnections === 0 ? Number.POSITIVE_INFINITY : limits.maxOpenConnections
  const requestTimeout = limits.requestTimeout
  const context = yield* Effect.context<Services>()
  const run = Effect.runPromiseWith(context)
  const server = Http.createServer({ requestTimeout, headersTimeout: requestTimeout }, (req, res) => {
    const send = (r: Response) => {
      res.writeHead(r.status, { "content-type": r.contentType })
      res.end(r.body)
    }
    const answer = (body?: string) =>
      run(respond(options, { method: req.method ?? "GET", url: req.url ?? "/", ...(body === undefined ? {} : { body }) })).then(send, (e) => send(text(500, `${String(e)}\n`)))
    if (req.method !== "POST") return void answer()
    // The limit is checked against the declared length first, then against what arrives.
    const declared = Number(req.headers["content-length"] ?? 0)
    if (declared > maxBody) {
      res.writeHead(413, { "content-type": "text/plain", connection: "close" })
      return void res.end(`request body over ${maxBody} bytes\n`)
    }
    const chunks: Array<Buffer> = []
    let size = 0
    req.on("data", (chunk: Buffer) => {
      size += chunk.length
      if (size > maxBody) {
        res.writeHead(413, { "content-type": "text/plain", connection: "close" })
        res.end(`request body over ${maxBody} bytes\n`)
        req.destroy()
        return
      }
      chunks.push(chunk)
    })
    req.on("end", () => {
      if (size <= maxBody) void answer(Buffer.concat(chunks).toString("utf8"))
    })
  })
  server.maxConnections = maxConnections
  let created: number | undefined
  const port = yield* Effect.acquireRelease(
    Effect.callback<number, HttpListenError>((resume) => {
      const onError = (e: NodeJS.ErrnoException) =>
        resume(Effect.fail(socketPath !== undefined
          ? describeUnixFailure(options.address, e)
          : new HttpListenError({ address: options.address, ...ListenFailure.describe(`http://${options.address}`, e) })))
      server.once("error", onError)
      const onListening = () => {
        server.off("error", onError)
        if (socketPath !== undefined) created = inodeOf(socketPath)
        const a = server.address()
        resume(Effect.succeed(typeof a === "object" && a !== null ? a.port : where.port))
      }
      if (socketPath !== undefined) server.listen({ path: socketPath }, onListening)
      else server.listen({ host: where.host === "" ? undefined : where.host, port: where.port }, onListening)
    }),
    () =>
      Effect.callback<void>((resume) => {
        // The socket file is ours to remove only while it is still the one we created.
        server.closeAllConnections()
        server.close(() => {
          // Node removes the socket file itself on close; this is for when it did not, and only
          // while the file is still the one we created.
          if (socketPath !== undefined && created !== undefined) {
            try {
              const now = Fs.lstatSync(socketPath, { throwIfNoEntry: false })
              if (now !== undefined && now.isSocket() && now.ino === created) Fs.unlinkSync(socketPath)
            } catch {
              // already gone, or not ours to remove
            }
          }
          resume(Effect.void)
        })
      })
  )
  if (socketPath !== undefined) return { host: "", port: 0, url: options.address, socketPath }
  const host = where.host === "" ? "0.0.0.0" : where.host
  return { host, port, url: `http://${host.includes(":") ? `[${host}]` : host}:${port}` }
})

/**
 * The node's own HTTP server as a layer, over a running node's Router and Transport:
 *
 * ```ts
 * const app = NodeHttp.layer({ address: "127.0.0.1:26660" }).pipe(Layer.provideMerge(Node.layer(config)))
 * ```
 */
export const layer = (options: ServerOptions): Layer.Layer<NodeHttp, HttpListenError | InvalidHttpOptions, Services> =>
  Layer.effect(NodeHttp, serve(options))

/**
 * The same endpoints as routes of an application's Effect `HttpRouter`, for an application that
 * serves HTTP itself:
 *
 * ```ts
 * HttpRouter.serve(Layer.mergeAll(MyApiRoutes, NodeHttp.routes({ namespace: "myapp" })))
 * ```
 */
export const routes = (options: Options = {}): Layer.Layer<never, never, HttpRouter.HttpRouter | Services> =>
  HttpRouter.use((router) =>
    Effect.gen(function* () {
      const context = yield* Effect.context<Services>()
      const maxBody = ByteSize.bytes(options.maxBodyBytes ?? defaults.maxBodyBytes)
      const handler = (request: HttpServerRequest.HttpServerRequest) =>
        Effect.gen(function* () {
          // The router's server reads the body; the limit is the NodeHttp one, as on the node's own server.
          const body = request.method === "POST"
            ? yield* Effect.orElseSucceed(Effect.provideService(request.text, HttpIncomingMessage.MaxBodySize, maxBody), () => "")
            : undefined
          const r = yield* respond(options, { method: request.method, url: request.url, ...(body === undefined ? {} : { body }) })
          return HttpServerResponse.text(r.body, { status: r.status, contentType: r.contentType })
        }).pipe(Effect.provideContext(context))
      const metrics = options.metrics ?? defaults.metrics
      const rpc = options.rpc ?? defaults.rpc
      if (metrics) yield* router.add("GET", "/metrics", handler)
      if (rpc) {
        for (const m of [...METHODS, ...((options.unsafe ?? defaults.unsafe) ? UNSAFE_METHODS : [])]) yield* router.add("GET", `/${m}`, handler)
        yield* router.add("POST", "/", handler)
      }
    })
  )

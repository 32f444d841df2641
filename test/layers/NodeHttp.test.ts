// The node's HTTP endpoints: CometBFT's JSON-RPC shapes, what is served when, limits, and the same
// endpoints mounted on an application's Effect HttpRouter.
import { assert, describe, it } from "@effect/vitest"
import { spawnSync } from "node:child_process"
import { existsSync, lstatSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import * as Http from "node:http"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Context, Effect, Exit, Layer, Scope } from "effect"
import * as HttpRouter from "effect/http/HttpRouter"
import * as HttpServer from "effect/http/HttpServer"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import * as NodeHttp from "../../src/layers/NodeHttp.ts"
import * as TestNetwork from "../../src/testing/TestNetwork.ts"

/** A meshed two-node memory network; node 0's services answer the requests. */
const twoNodes = Effect.map(TestNetwork.make({ nodes: 2 }), (net) => ({ net, context: net.nodes[0]!.context as Context.Context<NodeHttp.Services> }))

const respond = (context: Context.Context<NodeHttp.Services>, options: NodeHttp.Options, method: string, url: string, body?: string) =>
  Effect.provideContext(NodeHttp.respond(options, { method, url, ...(body === undefined ? {} : { body }) }), context)

describe("NodeHttp.respond", () => {
  it.effect("GET /net_info answers CometBFT's net_info: JSON-RPC envelope with id -1, one entry per peer", () =>
    Effect.gen(function* () {
      const { net, context } = yield* twoNodes
      const r = yield* respond(context, {}, "GET", "/net_info?x=1")
      assert.strictEqual(r.status, 200)
      const doc = JSON.parse(r.body)
      assert.strictEqual(doc.jsonrpc, "2.0")
      assert.strictEqual(doc.id, -1)
      assert.strictEqual(doc.result.n_peers, "1")
      assert.strictEqual(doc.result.peers[0].node_info.id, net.nodes[1]!.nodeId)
      assert.strictEqual(doc.result.peers[0].node_info.protocol_version.block, "11")
      assert.isBoolean(doc.result.peers[0].is_outbound)
      assert.deepStrictEqual(Object.keys(doc.result.peers[0].connection_status), ["Duration", "SendMonitor", "RecvMonitor", "Channels"])
    }).pipe(Effect.scoped))

  it.effect("JSON-RPC POST: single requests, batches, and each error with CometBFT's codes", () =>
    Effect.gen(function* () {
      const { net, context } = yield* twoNodes
      const post = (body: string) => Effect.map(respond(context, {}, "POST", "/", body), (r) => JSON.parse(r.body))
      const status = yield* post(JSON.stringify({ jsonrpc: "2.0", id: "a", method: "status", params: {} }))
      assert.deepStrictEqual([status.id, status.result.node_info.id], ["a", net.nodes[0]!.nodeId])
      assert.deepStrictEqual(yield* post(JSON.stringify({ jsonrpc: "2.0", id: 1, method: "health" })), { jsonrpc: "2.0", id: 1, result: {} })
      const batch = yield* post(JSON.stringify([{ jsonrpc: "2.0", id: 1, method: "health" }, { jsonrpc: "2.0", id: 2, method: "dial_peers" }, { id: 3, method: "health" }]))
      assert.deepStrictEqual(batch.map((r: { id: unknown; error?: { code: number } }) => [r.id, r.error?.code]), [[1, undefined], [2, -32601], [3, -32600]])
      assert.strictEqual((yield* post("{not json")).error.code, -32700)
      assert.strictEqual((yield* post("[]")).error.code, -32600)
      assert.strictEqual((yield* post(JSON.stringify(Array.from({ length: NodeHttp.MAX_BATCH + 1 }, (_, i) => ({ jsonrpc: "2.0", id: i, method: "health" }))))).error.code, -32600)
    }).pipe(Effect.scoped))

  it.effect("serves only what it is asked to: metrics-only and RPC-only endpoints, 404 and 405 otherwise", () =>
    Effect.gen(function* () {
      const { context } = yield* twoNodes
      const metricsOnly = { metrics: true, rpc: false }
      assert.strictEqual((yield* respond(context, metricsOnly, "GET", "/metrics")).status, 200)
      assert.strictEqual((yield* respond(context, metricsOnly, "GET", "/net_info")).status, 404)
      assert.strictEqual((yield* respond(context, metricsOnly, "POST", "/", "{}")).status, 404)
      const rpcOnly = { metrics: false, rpc: true }
      assert.strictEqual((yield* respond(context, rpcOnly, "GET", "/metrics")).status, 404)
      assert.strictEqual((yield* respond(context, rpcOnly, "GET", "/status")).status, 200)
      assert.strictEqual((yield* respond(context, rpcOnly, "DELETE", "/status")).status, 405)
      assert.include((yield* respond(context, rpcOnly, "GET", "/nowhere")).body, "/net_info, /status, /health")
    }).pipe(Effect.scoped))

  it.effect("/metrics uses the namespace as the prefix of CometBFT's metric names", () =>
    Effect.gen(function* () {
      const { context } = yield* twoNodes
      const r = yield* respond(context, { namespace: "tendermint" }, "GET", "/metrics")
      assert.match(r.body, /^tendermint_p2p_peers 1$/m)
      assert.strictEqual(r.contentType, "text/plain; version=0.0.4; charset=utf-8")
    }).pipe(Effect.scoped))
})

describe("NodeHttp bans", () => {
  it.effect("unsafe_ban and unsafe_unban are served only with unsafe; bans lists what is in force", () =>
    Effect.gen(function* () {
      const { context } = yield* twoNodes
      const get = (options: NodeHttp.Options, url: string) => Effect.map(respond(context, options, "GET", url), (r) => ({ status: r.status, doc: r.status === 200 ? JSON.parse(r.body) : r.body }))
      assert.strictEqual((yield* get({}, "/unsafe_ban?subject=10.0.0.0/24")).status, 404)
      const rpc = yield* Effect.map(respond(context, {}, "POST", "/", JSON.stringify({ jsonrpc: "2.0", id: 1, method: "unsafe_ban", params: { subject: "10.0.0.1" } })), (r) => JSON.parse(r.body))
      assert.strictEqual(rpc.error.code, -32601)
      const unsafe = { unsafe: true }
      const made = yield* get(unsafe, `/unsafe_ban?subject="10.0.0.0/24"&duration=1h&reason=abuse`)
      assert.deepStrictEqual([made.doc.result.ban.subject, made.doc.result.ban.kind, made.doc.result.ban.reason], ["10.0.0.0/24", "network", "abuse"])
      const forever = yield* Effect.map(respond(context, unsafe, "POST", "/", JSON.stringify({ jsonrpc: "2.0", id: 2, method: "unsafe_ban", params: { subject: "10.9.9.9", duration: "forever" } })), (r) => JSON.parse(r.body))
      assert.strictEqual(forever.result.ban.until, null)
      const listed = yield* get({}, "/bans")
      assert.deepStrictEqual(listed.doc.result.bans.map((b: { subject: string }) => b.subject), ["10.9.9.9/32", "10.0.0.0/24"])
      assert.deepStrictEqual((yield* get(unsafe, "/unsafe_unban?subject=10.0.0.0/24")).doc.result, { lifted: true })
      assert.deepStrictEqual((yield* get(unsafe, "/unsafe_unban?subject=10.0.0.0/24")).doc.result, { lifted: false })
      for (const bad of ["/unsafe_ban", "/unsafe_ban?subject=nope", "/unsafe_ban?subject=10.0.0.1&duration=soon"]) {
        assert.strictEqual((yield* get(unsafe, bad)).doc.error.code, -32602, bad)
      }
    }).pipe(Effect.scoped))
})

describe("NodeHttp.layer (the node's own server)", () => {
  it.live("listens on a free port, answers, and refuses a body over the limit with 413 before reading it", () =>
    Effect.gen(function* () {
      const { context } = yield* twoNodes
      const server = yield* NodeHttp.serve({ address: "127.0.0.1:0", maxBodyBytes: 100 }).pipe(Effect.provideContext(context))
      assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/)
      const ok = yield* Effect.promise(() => fetch(`${server.url}/health`).then((r) => r.json()))
      assert.deepStrictEqual(ok, { jsonrpc: "2.0", id: -1, result: {} })
      const big = yield* Effect.promise(() => fetch(server.url, { method: "POST", body: "x".repeat(1000) }).then((r) => r.status))
      assert.strictEqual(big, 413)
    }).pipe(Effect.scoped))

  it.effect("a bad address or limit is a typed error naming the option", () =>
    Effect.gen(function* () {
      const { context } = yield* twoNodes
      const bad = (options: NodeHttp.ServerOptions) => Effect.flip(NodeHttp.serve(options).pipe(Effect.provideContext(context)))
      const address = yield* bad({ address: "nowhere" })
      assert.deepStrictEqual([address._tag, (address as NodeHttp.InvalidHttpOptions).option], ["InvalidHttpOptions", "address"])
      const limit = yield* bad({ address: "127.0.0.1:0", maxBodyBytes: -1 })
      assert.strictEqual((limit as NodeHttp.InvalidHttpOptions).option, "maxBodyBytes")
    }).pipe(Effect.scoped))

  it.live("an address in use fails with HttpListenError saying so", () =>
    Effect.gen(function* () {
      const { context } = yield* twoNodes
      const first = yield* NodeHttp.serve({ address: "127.0.0.1:0" }).pipe(Effect.provideContext(context))
      const e = yield* Effect.flip(NodeHttp.serve({ address: `127.0.0.1:${first.port}` }).pipe(Effect.provideContext(context)))
      assert.strictEqual(e._tag, "HttpListenError")
      assert.include(e.message, "is in use by another process")
    }).pipe(Effect.scoped))
})

/** A temporary directory, removed with the scope. */
const temporaryDir = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "nodehttp-unix-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

/** A GET through a unix socket. */
const getUnix = (socketPath: string, path: string) =>
  Effect.callback<{ status: number; text: string }, Error>((resume) => {
    const req = Http.request({ socketPath, path, method: "GET" }, (res) => {
      let text = ""
      res.setEncoding("utf8")
      res.on("data", (chunk: string) => (text += chunk))
      res.on("end", () => resume(Effect.succeed({ status: res.statusCode ?? 0, text })))
    })
    req.on("error", (e) => resume(Effect.fail(e)))
    req.end()
  })

describe("NodeHttp on a unix socket", () => {
  it.live("serves the same endpoints on unix:///path, and removes the socket file on close", () =>
    Effect.gen(function* () {
      const { net, context } = yield* twoNodes
      const dir = yield* temporaryDir
      const path = join(dir, "rpc.sock")
      const scope = yield* Scope.make()
      const server = yield* NodeHttp.serve({ address: `unix://${path}` }).pipe(Effect.provideContext(context), Scope.provide(scope))
      assert.deepStrictEqual([server.url, server.socketPath, server.port], [`unix://${path}`, path, 0])
      assert.isTrue(lstatSync(path).isSocket())
      const info = yield* getUnix(path, "/net_info")
      assert.strictEqual(info.status, 200)
      assert.strictEqual(JSON.parse(info.text).result.peers[0].node_info.id, net.nodes[1]!.nodeId)
      assert.match((yield* getUnix(path, "/metrics")).text, /^cometbft_p2p_peers 1$/m)
      yield* Scope.close(scope, Exit.void)
      assert.isFalse(existsSync(path))
    }).pipe(Effect.scoped))

  it.live("a socket file left by a killed process is replaced; a live one is in use", () =>
    Effect.gen(function* () {
      const { context } = yield* twoNodes
      const dir = yield* temporaryDir
      const path = join(dir, "rpc.sock")
      // A socket file nobody listens on, as a SIGKILLed node leaves behind.
      const killed = spawnSync(process.execPath, ["-e", `require("node:net").createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, "SIGKILL"))`])
      assert.strictEqual(killed.signal, "SIGKILL")
      assert.isTrue(lstatSync(path).isSocket())
      const server = yield* NodeHttp.serve({ address: `unix://${path}` }).pipe(Effect.provideContext(context))
      assert.strictEqual((yield* getUnix(server.socketPath!, "/health")).status, 200)
      const busy = yield* Effect.flip(NodeHttp.serve({ address: `unix://${path}` }).pipe(Effect.provideContext(context)))
      assert.deepStrictEqual([busy._tag, (busy as NodeHttp.HttpListenError).reason, busy.message], ["HttpListenError", "in_use", `unix://${path} is in use by another process`])
      assert.strictEqual((yield* getUnix(path, "/health")).status, 200) // still the first server's
    }).pipe(Effect.scoped))

  it.live("refuses a path that is not a socket, a missing directory, and a relative or too-long path, each in one line", () =>
    Effect.gen(function* () {
      const { context } = yield* twoNodes
      const dir = yield* temporaryDir
      const serve = (address: string) => Effect.flip(NodeHttp.serve({ address }).pipe(Effect.provideContext(context)))
      const file = join(dir, "notes.txt")
      writeFileSync(file, "keep me")
      const notSocket = yield* serve(`unix://${file}`)
      assert.strictEqual(notSocket.message, `cannot listen on unix://${file}: ${file} exists and is not a socket`)
      assert.isTrue(existsSync(file))
      const noDir = yield* serve(`unix://${dir}/missing/rpc.sock`)
      assert.strictEqual(noDir.message, `cannot listen on unix://${dir}/missing/rpc.sock: the directory ${dir}/missing does not exist`)
      const relative = yield* serve("unix://rpc.sock")
      assert.deepStrictEqual([relative._tag, (relative as NodeHttp.InvalidHttpOptions).option], ["InvalidHttpOptions", "address"])
      assert.match((yield* serve(`unix:///${"x".repeat(120)}.sock`)).message, /unix socket paths hold at most 107/)
    }).pipe(Effect.scoped))
})

describe("NodeHttp.routes (an application's own HttpRouter)", () => {
  it.live("mounts /metrics, /net_info, /status, /health and JSON-RPC next to the application's routes", () =>
    Effect.gen(function* () {
      const { context } = yield* twoNodes
      const app = Layer.mergeAll(NodeHttp.routes({ namespace: "app" }), HttpRouter.add("GET", "/hello", Effect.succeed(HttpServerResponse.text("hi"))))
        .pipe(Layer.provide(Layer.succeedContext(context)))
      const { handler, dispose } = HttpRouter.toWebHandler(app.pipe(Layer.provide(HttpServer.layerServices)), { disableLogger: true })
      yield* Effect.addFinalizer(() => Effect.promise(() => dispose()))
      const call = (path: string, init?: RequestInit) => Effect.promise(() => handler(new Request(`http://node${path}`, init)).then(async (r) => ({ status: r.status, text: await r.text() })))
      assert.strictEqual((yield* call("/hello")).text, "hi")
      assert.match((yield* call("/metrics")).text, /^app_p2p_peers 1$/m)
      assert.strictEqual(JSON.parse((yield* call("/net_info")).text).result.n_peers, "1")
      const rpc = yield* call("/", { method: "POST", body: JSON.stringify({ jsonrpc: "2.0", id: 5, method: "health" }) })
      assert.deepStrictEqual(JSON.parse(rpc.text), { jsonrpc: "2.0", id: 5, result: {} })
    }).pipe(Effect.scoped))
})

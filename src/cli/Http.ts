/**
 * The node's HTTP endpoint: `GET /metrics` (Prometheus text, names prefixed by the configured
 * namespace, e.g. `cometbft_p2p_peers`) and `GET /net_info` (JSON shaped like CometBFT's
 * `net_info`). A plain `node:http` server owned by the layer's scope.
 *
 * @since 0.1.0
 */
import * as Http from "node:http"
import { Context, Effect, Layer, Schema } from "effect"
import * as PrometheusMetrics from "effect/observability/PrometheusMetrics"
import * as Endpoint from "../domain/Endpoint.ts"
import { Router } from "../services/Router.ts"
import { Transport } from "../services/Transport.ts"

/** The HTTP endpoint could not listen. */
export class HttpListenError extends Schema.TaggedError<HttpListenError>()("HttpListenError", {
  address: Schema.String,
  message: Schema.String
}) {}

/** The `/net_info` document. */
export interface NetInfo {
  readonly node_id: string
  readonly listening: boolean
  readonly listeners: ReadonlyArray<string>
  readonly n_peers: string
  readonly peers: ReadonlyArray<{
    readonly node_id: string
    readonly moniker: string
    readonly network: string
    readonly remote_addr: string
    readonly is_outbound: boolean
    readonly channels: string
  }>
}

/** Builds the `/net_info` document from the router and transport. */
export const netInfo = Effect.gen(function* () {
  const router = yield* Router
  const transport = yield* Transport
  const info = yield* router.nodeInfo
  const endpoints = yield* transport.endpoints
  const peers = yield* router.peers
  return {
    node_id: info.nodeId,
    listening: endpoints.length > 0,
    listeners: endpoints.map(Endpoint.format),
    n_peers: String(peers.length),
    peers: peers.map((p) => ({
      node_id: p.nodeId,
      moniker: p.nodeInfo.moniker,
      network: p.nodeInfo.network,
      remote_addr: Endpoint.format(p.remoteEndpoint),
      is_outbound: p.direction === "outgoing",
      channels: Buffer.from(p.nodeInfo.channels).toString("hex")
    }))
  } satisfies NetInfo
})

/** Splits `host:port` (IPv6 in brackets). */
export const splitHostPort = (address: string): { readonly host: string; readonly port: number } => {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(address)
  return { host: m?.[1] ?? m?.[2] ?? "127.0.0.1", port: Number(m?.[3] ?? 0) }
}

/** Serves `/metrics` and `/net_info` on `address` until the scope closes; yields the bound port. */
export const serve = (address: string, namespace: string) =>
  Effect.gen(function* () {
    const context = yield* Effect.context<Router | Transport>()
    const { host, port } = splitHostPort(address)
    const server = Http.createServer((req, res) => {
      const respond = (status: number, type: string, body: string) => {
        res.writeHead(status, { "content-type": type })
        res.end(body)
      }
      if (req.method !== "GET") return respond(405, "text/plain", "method not allowed\n")
      const path = (req.url ?? "/").split("?")[0]
      if (path === "/metrics") {
        return respond(200, "text/plain; version=0.0.4", PrometheusMetrics.formatUnsafe(context as Context.Context<never>, { prefix: namespace }))
      }
      if (path === "/net_info") {
        Effect.runPromise(Effect.provide(netInfo, context)).then(
          (doc) => respond(200, "application/json", JSON.stringify(doc, null, 2) + "\n"),
          (e) => respond(500, "text/plain", `${String(e)}\n`)
        )
        return
      }
      respond(404, "text/plain", "not found: try /metrics or /net_info\n")
    })
    const bound = yield* Effect.acquireRelease(
      Effect.callback<number, HttpListenError>((resume) => {
        server.once("error", (e) => resume(Effect.fail(new HttpListenError({ address, message: `cannot serve HTTP on ${address}: ${e.message}` }))))
        server.listen({ host, port }, () => {
          const a = server.address()
          resume(Effect.succeed(typeof a === "object" && a !== null ? a.port : port))
        })
      }),
      () => Effect.callback<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
    )
    return bound
  })

/** The HTTP endpoint as a layer over a running node. */
export const layer = (address: string, namespace: string): Layer.Layer<never, HttpListenError, Router | Transport> =>
  Layer.effectDiscard(Effect.flatMap(serve(address, namespace), (port) => Effect.logInfo(`serving /metrics and /net_info on http://${splitHostPort(address).host}:${port}`)))

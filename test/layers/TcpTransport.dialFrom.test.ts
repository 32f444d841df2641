/**
 * `dialFrom`: outgoing connections bound to a local address, so the listener sees them come from
 * it (the e2e runner's loopback proxy tells links apart this way). Real sockets on loopback.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Result, Scope } from "effect"
import * as Net from "node:net"
import * as Config from "../../src/cli/Config.ts"
import * as Start from "../../src/cli/Start.ts"
import * as Endpoint from "../../src/domain/Endpoint.ts"
import * as NodeIdentity from "../../src/layers/NodeIdentity.ts"
import * as TcpTransport from "../../src/layers/TcpTransport.ts"
import { key } from "../../src/testing/TransportSuite.ts"
import { within } from "../../src/testing/Within.ts"

const transport = (options: TcpTransport.Options) => TcpTransport.make(options).pipe(Effect.provide(NodeIdentity.layer(key(1))))

/** A plain server on 127.0.0.1 that records the remote address of its first connection. */
const server = Effect.acquireRelease(
  Effect.callback<{ readonly port: number; readonly server: Net.Server; readonly remote: Promise<string> }>((resume) => {
    let seen: (ip: string) => void = () => {}
    const remote = new Promise<string>((r) => (seen = r))
    const s = Net.createServer((socket) => {
      seen(socket.remoteAddress ?? "")
      socket.destroy()
    })
    s.listen(0, "127.0.0.1", () => resume(Effect.succeed({ port: (s.address() as Net.AddressInfo).port, server: s, remote })))
  }),
  ({ server }) => Effect.sync(() => server.close())
)

const linux = process.platform === "linux"

describe("TcpTransport dialFrom", () => {
  it.live.skipIf(!linux)("binds the dial to the given local address (127.0.1.7 on Linux's 127/8)", () =>
    Effect.scoped(Effect.gen(function* () {
      const srv = yield* server
      const t = yield* transport({ dialFrom: "127.0.1.7" })
      const scope = yield* Scope.make()
      yield* Effect.exit(Scope.provide(t.dial(Endpoint.make({ protocol: "mconn", ip: "127.0.0.1", port: srv.port })), scope))
      const remote = yield* within(5_000, "the server to see the dial", Effect.promise(() => srv.remote))
      assert.strictEqual(remote, "127.0.1.7")
      yield* Scope.close(scope, Exit.void)
    })))

  it.live("an address that is not an IP is an invalid option naming dialFrom", () =>
    Effect.scoped(Effect.gen(function* () {
      const error = yield* Effect.flip(transport({ dialFrom: "localhost" }))
      assert.strictEqual(error._tag, "TransportListenError")
      assert.strictEqual(error.reason, "invalid_options")
      assert.match(error.message, /dialFrom/)
      assert.match(error.message, /not an IP address/)
    })))

  it.live("an address not on this machine fails the dial with a DialError naming it", () =>
    Effect.scoped(Effect.gen(function* () {
      const srv = yield* server
      // TEST-NET-1: never an address of this machine.
      const t = yield* transport({ dialFrom: "192.0.2.1" })
      const error = yield* Effect.flip(within(5_000, "dial", Effect.scoped(t.dial(Endpoint.make({ protocol: "mconn", ip: "127.0.0.1", port: srv.port })))))
      if (error._tag !== "DialError") return assert.fail(`expected a DialError, got ${error._tag}`)
      assert.strictEqual(error.reason, "io")
      assert.match(error.message, /192\.0\.2\.1/)
    })))

  it("config.toml's p2p.dial_from reaches the node's transport; a bad one names the key; init leaves it out", () => {
    const config = (toml: string) => Config.resolve(Result.getOrThrow(Config.fromToml("config.toml", toml)).values)
    assert.strictEqual(Start.toNodeConfig("/home", config(`[p2p]\ndial_from = "127.0.1.10"`)).dialFrom, "127.0.1.10")
    assert.isUndefined(Start.toNodeConfig("/home", config("")).dialFrom)
    const bad = Config.fromToml("config.toml", `[p2p]\ndial_from = "my-host"`)
    assert.match(Result.isFailure(bad) ? bad.failure.message : "", /^p2p\.dial_from: must be an IP address/)
    assert.notMatch(Config.toToml(Config.resolve()), /dial_from/)
    assert.match(Config.toToml(config(`[p2p]\ndial_from = "127.0.1.10"`)), /dial_from = "127\.0\.1\.10"/)
  })
})

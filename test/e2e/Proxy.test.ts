/**
 * The loopback link proxy with real sockets under it: node "a" is 127.0.1.201, node "b"
 * 127.0.1.202 (Linux routes all of 127/8 to lo), b's proxy forwards to a local server. Every wait is
 * bounded (a few hundred ms to a few seconds).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Net from "node:net"
import * as Proxy from "../../src/e2e/Proxy.ts"

const A = "127.0.1.201"
const B = "127.0.1.202"
const linux = process.platform === "linux"

interface Upstream {
  readonly port: number
  readonly sockets: Array<Net.Socket>
  readonly remotes: Array<string>
  readonly close: () => void
}

/** A server on 127.0.0.1: echoes (default), or says `greeting` and keeps what it reads, or never reads. */
const upstream = (mode: "echo" | "record" | "stuck" = "echo"): Promise<Upstream> =>
  new Promise((resolve) => {
    const sockets: Array<Net.Socket> = []
    const remotes: Array<string> = []
    const server = Net.createServer((s) => {
      sockets.push(s)
      remotes.push(Proxy.plainIp(s.remoteAddress))
      s.on("error", () => {})
      if (mode === "echo") s.on("data", (d) => s.write(d))
      if (mode === "record") s.write("hello")
      if (mode === "stuck") s.pause()
    })
    server.listen(0, "127.0.0.1", () =>
      resolve({
        port: (server.address() as Net.AddressInfo).port,
        sockets,
        remotes,
        close: () => {
          for (const s of sockets) s.destroy()
          server.close()
        }
      }))
  })

const start = (up: Upstream, options: Partial<Proxy.Options> = {}) =>
  Proxy.start({
    targets: [{ name: "b", listen: { host: B, port: 0 }, upstream: { host: "127.0.0.1", port: up.port } }],
    sourceOf: (ip) => (ip === A ? "a" : ip === B ? "b" : undefined),
    ...options
  })

/** A connection from a's address to the proxy, with everything it receives collected. */
const connect = (port: number): Promise<{ socket: Net.Socket; received: () => Buffer; closed: () => boolean }> =>
  new Promise((resolve, reject) => {
    const chunks: Array<Buffer> = []
    let closed = false
    const socket = Net.connect({ host: B, port, localAddress: A }, () => resolve({ socket, received: () => Buffer.concat(chunks), closed: () => closed }))
    socket.on("data", (d) => chunks.push(d))
    socket.on("error", reject)
    socket.on("close", () => (closed = true))
  })

/** Whether a connection from a is refused: reset during the connect, or closed at once after it. */
const refused = (port: number): Promise<boolean> =>
  connect(port).then(
    async (c) => (await until(1_000, c.closed)) !== undefined,
    (e: NodeJS.ErrnoException) => e.code === "ECONNRESET"
  )

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Waits until `cond` holds, at most `ms`; returns the time it took, or undefined when it never did. */
const until = async (ms: number, cond: () => boolean): Promise<number | undefined> => {
  const t0 = Date.now()
  while (!cond()) {
    if (Date.now() - t0 > ms) return undefined
    await sleep(5)
  }
  return Date.now() - t0
}

/** Runs a test with an upstream and a proxy, closing both whatever happens. */
const withProxy = (mode: "echo" | "record" | "stuck", options: Partial<Proxy.Options>, body: (p: Proxy.Proxy, up: Upstream) => Promise<void>) =>
  Effect.promise(async () => {
    const up = await upstream(mode)
    const p = await start(up, options)
    try {
      await body(p, up)
    } finally {
      await p.close()
      up.close()
    }
  })

describe.skipIf(!linux)("loopback link proxy", () => {
  it.live("forwards both ways, and the destination sees the source node's address", () =>
    withProxy("echo", {}, async (p, up) => {
      const c = await connect(p.ports[0]!)
      c.socket.write("ping")
      assert.isDefined(await until(2_000, () => c.received().toString() === "ping"))
      assert.deepStrictEqual(up.remotes, [A])
      assert.strictEqual(p.stats().open, 1)
      c.socket.destroy()
    }))

  it.live("a partition stalls an open connection both ways and refuses new ones; heal delivers what was held", () =>
    withProxy("echo", {}, async (p) => {
      const c = await connect(p.ports[0]!)
      c.socket.write("1")
      assert.isDefined(await until(2_000, () => c.received().length === 1))
      p.apply(1, [{ kind: "cut", pairs: [["a", "b"], ["b", "a"]] }])
      c.socket.write("2")
      await sleep(300)
      assert.strictEqual(c.received().toString(), "1", "nothing crosses the partition")
      // A new connection across the pair is reset at once.
      assert.isTrue(await refused(p.ports[0]!), "a new connection is refused")
      assert.isAtLeast(p.stats().refused, 1)
      p.heal(1)
      assert.isDefined(await until(1_000, () => c.received().toString() === "12"), "held data goes through after the heal")
      const after = await connect(p.ports[0]!)
      after.socket.write("3")
      assert.isDefined(await until(2_000, () => after.received().toString() === "3"))
      c.socket.destroy()
      after.socket.destroy()
    }))

  it.live("a one-way cut stalls from → to only, and holds a new connection away from the node until it heals", () =>
    withProxy("record", {}, async (p, up) => {
      const c = await connect(p.ports[0]!)
      assert.isDefined(await until(2_000, () => c.received().toString() === "hello"))
      p.apply(1, [{ kind: "cut", pairs: [["a", "b"]] }])
      c.socket.write("up")
      up.sockets[0]!.write(" again")
      assert.isDefined(await until(1_000, () => c.received().toString() === "hello again"), "b → a still flows")
      const got: Array<string> = []
      up.sockets[0]!.on("data", (d) => got.push(String(d)))
      const held = await connect(p.ports[0]!)
      held.socket.write("early")
      await sleep(300)
      assert.deepStrictEqual(got, [], "a → b is stalled")
      assert.strictEqual(up.sockets.length, 1, "the new connection does not reach the node during the cut")
      p.heal(1)
      assert.isDefined(await until(1_000, () => got.join("") === "up"))
      assert.isDefined(await until(2_000, () => up.sockets.length === 2), "the held connection goes through after the heal")
      const second: Array<string> = []
      up.sockets[1]!.on("data", (d) => second.push(String(d)))
      assert.isDefined(await until(1_000, () => second.join("") === "early"), "with what was sent while it was held")
      c.socket.destroy()
      held.socket.destroy()
    }))

  it.live("latency holds each chunk from a node delay + U(0, jitter), order kept", () =>
    withProxy("echo", {}, async (p) => {
      const c = await connect(p.ports[0]!)
      p.apply(1, [{ kind: "latency", nodes: ["a"], delay: 150, jitter: 50 }])
      const t0 = Date.now()
      const sent = Array.from({ length: 20 }, (_, i) => String.fromCharCode(65 + i)).join("")
      for (const ch of sent) {
        c.socket.write(ch)
        await sleep(2)
      }
      const took = await until(3_000, () => c.received().length === sent.length)
      assert.isDefined(took)
      assert.isAtLeast(Date.now() - t0, 150)
      assert.strictEqual(c.received().toString(), sent, "in order")
      // The echo back (b → a) is not delayed: b is not in the rule.
      p.heal(1)
      const t1 = Date.now()
      c.socket.write("!")
      await until(1_000, () => c.received().length === sent.length + 1)
      assert.isBelow(Date.now() - t1, 100)
      c.socket.destroy()
    }))

  it.live("bandwidth: a token bucket (rate, 32 KiB burst) paces what a node sends", () =>
    withProxy("echo", {}, async (p) => {
      const c = await connect(p.ports[0]!)
      p.apply(1, [{ kind: "bandwidth", nodes: ["a"], bytesPerSecond: 200_000 }])
      const size = 32 * 1024 + 100_000
      const t0 = Date.now()
      c.socket.write(Buffer.alloc(size, 7))
      const took = await until(5_000, () => c.received().length === size)
      assert.isDefined(took)
      // (size - burst) / rate = 0.5 s
      assert.isAtLeast(took!, 450)
      assert.isBelow(took!, 2_000)
      assert.isAtLeast(Date.now() - t0, 450)
      c.socket.destroy()
    }))

  it.live("loss is modeled as stalls: a lost chunk holds the stream; a lost SYN holds a new connection", () =>
    withProxy("echo", { lossStall: 120, synStall: 300 }, async (p) => {
      const c = await connect(p.ports[0]!)
      p.apply(1, [{ kind: "loss", nodes: ["a"], percent: 100 }])
      const t0 = Date.now()
      c.socket.write("x")
      await until(3_000, () => c.received().length === 1)
      assert.isAtLeast(Date.now() - t0, 120)
      const t1 = Date.now()
      const late = await connect(p.ports[0]!)
      late.socket.write("y")
      await until(3_000, () => late.received().length === 1)
      assert.isAtLeast(Date.now() - t1, 300)
      p.heal(1)
      c.socket.destroy()
      late.socket.destroy()
    }))

  it.live("caps: a destination that does not read makes the proxy pause the sender, holding at most maxBuffered (+ one read) per pipe; extra connections are reset", () =>
    withProxy("stuck", { maxBuffered: 64 * 1024, maxConnections: 2 }, async (p) => {
      const c = await connect(p.ports[0]!)
      // More than the kernel's socket buffers on both hops can take.
      c.socket.write(Buffer.alloc(48 * 1024 * 1024, 1))
      await until(3_000, () => p.stats().pausedReads > 0)
      await sleep(200)
      const s = p.stats()
      assert.isAtLeast(s.pausedReads, 1)
      assert.isAtMost(s.maxPipeHeld, 64 * 1024 + 64 * 1024)
      assert.isAbove(c.socket.writableLength, 0, "the sender is held back by TCP")
      await connect(p.ports[0]!)
      assert.isTrue(await refused(p.ports[0]!), "a third connection is reset")
      c.socket.destroy()
    }))

  it.live("a node that is down: the connection is reset (its peer's dial fails) and counted as refused", () =>
    withProxy("echo", {}, async (p, up) => {
      up.close()
      await sleep(50)
      assert.isTrue(await refused(p.ports[0]!))
      assert.isDefined(await until(1_000, () => p.stats().open === 0))
      assert.strictEqual(p.stats().refused, 1)
    }))

  it.live("a connection held by a one-way cut is reset after pendingTimeout, without ever reaching the node", () =>
    withProxy("echo", { pendingTimeout: 200 }, async (p, up) => {
      p.apply(1, [{ kind: "cut", pairs: [["b", "a"]] }])
      const c = await connect(p.ports[0]!)
      c.socket.write("x")
      assert.isDefined(await until(1_500, c.closed))
      assert.strictEqual(up.sockets.length, 0)
      assert.strictEqual(p.stats().open, 0)
    }))

  it.live("close destroys every connection, stops listening and leaves nothing open", () =>
    Effect.promise(async () => {
      const up = await upstream("echo")
      const p = await start(up, {})
      try {
        const c = await connect(p.ports[0]!)
        p.apply(1, [{ kind: "latency", nodes: "all", delay: 10_000, jitter: 0 }])
        c.socket.write("held for 10 s")
        await p.close()
        assert.isDefined(await until(1_000, c.closed))
        assert.strictEqual(p.stats().open, 0)
        assert.strictEqual(p.stats().buffered, 0)
        const error = await connect(p.ports[0]!).then(() => undefined, (e: NodeJS.ErrnoException) => e.code)
        assert.strictEqual(error, "ECONNREFUSED")
      } finally {
        up.close()
      }
    }))

  it.live("a connection from an address of no node is forwarded with no link fault", () =>
    withProxy("echo", {}, async (p, up) => {
      p.apply(1, [{ kind: "cut", pairs: [["a", "b"], ["b", "a"]] }])
      const c = await new Promise<Net.Socket>((resolve) => {
        const s = Net.connect({ host: B, port: p.ports[0]! }, () => resolve(s))
      })
      const got: Array<Buffer> = []
      c.on("data", (d) => got.push(d))
      c.write("z")
      assert.isDefined(await until(2_000, () => Buffer.concat(got).toString() === "z"))
      assert.strictEqual(p.stats().unknownSource, 1)
      assert.notInclude(up.remotes, A)
      c.destroy()
    }))
})

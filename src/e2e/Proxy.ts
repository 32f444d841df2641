/**
 * The loopback fallback's userspace link proxy: where the runner cannot create network namespaces,
 * every TCP connection to a node goes through this proxy, run in the runner's process (node:net),
 * and the network faults are applied to it per directed link (source node → destination node).
 *
 * How a link is known: each node listens on its own loopback address (127.0.1.(10+I)) and advertises
 * a proxy port on it; its dials are bound to that address (`p2p.dial_from`), so the proxy reads the
 * source node from the accepted socket's remote address and the destination from the port it was
 * accepted on. The proxy's own connection to the destination is bound to the source's address too,
 * so the node sees its peer's address as it would on a network.
 *
 * Per connection, two pipes (one per direction) each hold a queue of chunks stamped with a release
 * time; a pipe's loop (`pump`) writes the chunks due, in order, when its link is not cut and its
 * token buckets allow. Faults, as {@link Rule}s:
 * - `cut` (partition, one_way, isolate): a cut direction stops forwarding (existing connections
 *   stall, as behind a firewall that drops); a new connection across a pair cut both ways is reset
 *   at once (refused), one across a one-way cut is held without reaching the destination (its
 *   handshake stalls, as a SYN or SYN-ACK that never arrives) and goes through if the cut heals
 *   while it is held. Connecting to the node only once the link is open matters: the node counts an
 *   inbound handshake that fails against the source's address (a ban after several);
 * - `latency`: each chunk from a node in the rule is held delay + U(0, jitter), order kept;
 * - `bandwidth`: a token bucket per node in the rule (rate, 32 KiB burst, as tc tbf) shared by all
 *   its outgoing connections; chunks wait in the queue;
 * - `loss`: a userspace TCP proxy sees a byte stream and cannot drop packets, so loss is modeled as
 *   what TCP makes of it: each chunk to or from a node in the rule is, with the rule's probability,
 *   held for a retransmission timeout (200 ms, doubling while consecutive chunks are "lost", at
 *   most 3.2 s), holding everything behind it; a new connection is, with that probability, held
 *   1 s before it reaches the node (a lost SYN).
 * Heal removes the rule and wakes every pipe.
 *
 * Bounds: a pipe holds at most `maxBuffered` bytes (its queue and its writer's buffer); past it the
 * reading socket is paused (TCP backpressure to the sender) until half of it has drained. At most
 * `maxConnections` connections at once (more are reset), a held connection at most `pendingTimeout`.
 * `close` destroys every socket, stops every listener and timer.
 */
import * as Net from "node:net"
import * as TokenBucket from "../domain/TokenBucket.ts"

/** What a fault does to the links. Node names as in the manifest; `"all"`: every node. */
export type Rule =
  | { readonly kind: "cut"; readonly pairs: ReadonlyArray<readonly [from: string, to: string]> }
  | { readonly kind: "latency"; readonly nodes: ReadonlyArray<string> | "all"; readonly delay: number; readonly jitter: number }
  | { readonly kind: "loss"; readonly nodes: ReadonlyArray<string> | "all"; readonly percent: number }
  | { readonly kind: "bandwidth"; readonly nodes: ReadonlyArray<string> | "all"; readonly bytesPerSecond: number }

/** A listener of the proxy: connections accepted on `listen` go to node `name` at `upstream`. */
export interface Target {
  readonly name: string
  readonly listen: { readonly host: string; readonly port: number }
  readonly upstream: { readonly host: string; readonly port: number }
}

export interface Options {
  readonly targets: ReadonlyArray<Target>
  /** The node a source address belongs to; undefined: unknown (forwarded, no link fault applies). */
  readonly sourceOf: (ip: string) => string | undefined
  /** Bytes a pipe holds before its reader is paused. Default 256 KiB. */
  readonly maxBuffered?: number
  /** Connections at once; more are reset. Default 512. */
  readonly maxConnections?: number
  /** Bucket size of bandwidth limits, bytes. Default 32 KiB (the tc tbf burst of namespace mode). */
  readonly burst?: number
  /** First hold of a "lost" chunk, ms. Default 200 (Linux's minimum retransmission timeout). */
  readonly lossStall?: number
  /** Hold of a new connection whose "SYN" was lost, ms. Default 1000. */
  readonly synStall?: number
  /** How long a connection may be held before it reaches the node, ms. Default 30 s. */
  readonly pendingTimeout?: number
  /** Randomness (jitter, loss): default Math.random. */
  readonly random?: () => number
}

export interface Stats {
  /** Connections open now (held or forwarding). */
  readonly open: number
  readonly accepted: number
  /** Reset at accept: pair cut both ways, too many connections, or the destination refused. */
  readonly refused: number
  /** Accepted from an address of no node. */
  readonly unknownSource: number
  /** Bytes queued in all pipes now. */
  readonly buffered: number
  /** Most bytes one pipe held at once (queue and writer buffer). */
  readonly maxPipeHeld: number
  /** Times a reader was paused because its pipe was full. */
  readonly pausedReads: number
}

export interface Proxy {
  /** The ports listened on, in the order of `targets` (a target's port 0 is the one picked). */
  readonly ports: ReadonlyArray<number>
  /** Puts a fault's rules in force under `id`. */
  readonly apply: (id: number, rules: ReadonlyArray<Rule>) => void
  /** Removes the rules of `id` and wakes every pipe. */
  readonly heal: (id: number) => void
  readonly healAll: () => void
  readonly stats: () => Stats
  /** Destroys every connection and stops listening; resolves once the listeners are closed. */
  readonly close: () => Promise<void>
  /** The same, synchronously (process exit). */
  readonly closeNow: () => void
}

const MAX_LOSS_STALL = 3_200

/** The address without an IPv4-mapped prefix (`::ffff:127.0.1.10` → `127.0.1.10`). */
export const plainIp = (ip: string | undefined): string => (ip ?? "").replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/, "")

/** A link's state: the rules in force folded for one direction. */
interface Policy {
  readonly cut: boolean
  readonly delay: number
  readonly jitter: number
  /** Probability 0..1 that a chunk (or a new connection) is "lost". */
  readonly loss: number
  readonly buckets: ReadonlyArray<TokenBucket.TokenBucket>
}

const OPEN: Policy = { cut: false, delay: 0, jitter: 0, loss: 0, buckets: [] }

const hits = (nodes: ReadonlyArray<string> | "all", name: string | undefined) => name !== undefined && (nodes === "all" || nodes.includes(name))

type Item = { data: Buffer; readonly at: number } | { readonly end: "end" | "reset"; readonly at: number }

interface Pipe {
  /** Takes a chunk read from the source socket. */
  readonly push: (data: Buffer) => void
  /** The source socket ended (or was reset): delivered after the queued data. */
  readonly finish: (how: "end" | "reset") => void
  readonly pump: () => void
  /** Drops the queue and stops (the destination is gone). */
  readonly stop: () => void
  readonly held: () => number
  readonly isDead: () => boolean
  /** The destination socket is connected: start writing. */
  readonly ready: () => void
}

/** Starts listening on every target; rejects when a listener cannot be opened. */
export const start = async (options: Options): Promise<Proxy> => {
  const maxBuffered = options.maxBuffered ?? 256 * 1024
  const maxConnections = options.maxConnections ?? 512
  const burst = options.burst ?? 32 * 1024
  const lossStall = options.lossStall ?? 200
  const synStall = options.synStall ?? 1_000
  const pendingTimeout = options.pendingTimeout ?? 30_000
  const random = options.random ?? Math.random

  const rules = new Map<number, { readonly rules: ReadonlyArray<Rule>; readonly buckets: Map<string, TokenBucket.TokenBucket> }>()
  let cache = new Map<string | undefined, Map<string | undefined, Policy>>()
  const counters = { accepted: 0, refused: 0, unknownSource: 0, maxPipeHeld: 0, pausedReads: 0 }
  const pipes = new Set<Pipe>()
  const conns = new Set<{ readonly wake: () => void; readonly destroy: () => void }>()
  let closed = false

  const policy = (from: string | undefined, to: string | undefined): Policy => {
    let row = cache.get(from)
    if (row === undefined) cache.set(from, (row = new Map()))
    const known = row.get(to)
    if (known !== undefined) return known
    let p: { cut: boolean; delay: number; jitter: number; keep: number; buckets: Array<TokenBucket.TokenBucket> } = { cut: false, delay: 0, jitter: 0, keep: 1, buckets: [] }
    for (const entry of rules.values()) {
      for (const r of entry.rules) {
        if (r.kind === "cut") p.cut ||= r.pairs.some(([a, b]) => a === from && b === to)
        else if (r.kind === "latency" && hits(r.nodes, from)) p = { ...p, delay: p.delay + r.delay, jitter: p.jitter + r.jitter }
        else if (r.kind === "loss" && (hits(r.nodes, from) || (r.nodes !== "all" && hits(r.nodes, to)))) p.keep *= 1 - r.percent / 100
        else if (r.kind === "bandwidth" && hits(r.nodes, from)) {
          let b = entry.buckets.get(from!)
          if (b === undefined) entry.buckets.set(from!, (b = TokenBucket.make(r.bytesPerSecond, burst)))
          p.buckets.push(b)
        }
      }
    }
    const out: Policy = p.cut || p.delay > 0 || p.jitter > 0 || p.keep < 1 || p.buckets.length > 0 ? { cut: p.cut, delay: p.delay, jitter: p.jitter, loss: 1 - p.keep, buckets: p.buckets } : OPEN
    row.set(to, out)
    return out
  }

  const wakeAll = () => {
    cache = new Map()
    for (const c of [...conns]) c.wake()
  }

  /** One direction of a connection: `reader` → `writer`, link `from` → `to`. */
  const makePipe = (from: string | undefined, to: string | undefined, reader: () => Net.Socket | undefined, writer: () => Net.Socket | undefined, onEnd: (how: "end" | "reset") => void): Pipe => {
    const queue: Array<Item> = []
    let bytes = 0
    let lastAt = 0
    let lossRun = 0
    let timer: NodeJS.Timeout | undefined
    let draining = false
    let dead = false
    let isReady = false
    let paused = false
    const held = () => bytes + (writer()?.writableLength ?? 0)
    const stamp = (lossy: boolean) => {
      const p = policy(from, to)
      const now = Date.now()
      let at = now + p.delay + (p.jitter > 0 ? random() * p.jitter : 0)
      if (lossy && p.loss > 0 && random() < p.loss) {
        at += Math.min(lossStall * 2 ** lossRun, MAX_LOSS_STALL)
        lossRun++
      } else lossRun = 0
      lastAt = Math.max(at, lastAt)
      return lastAt
    }
    const backpressure = () => {
      const h = held()
      if (h > counters.maxPipeHeld) counters.maxPipeHeld = h
      if (!paused && h >= maxBuffered) {
        paused = true
        counters.pausedReads++
        reader()?.pause()
      } else if (paused && h < maxBuffered / 2) {
        paused = false
        const r = reader()
        if (r !== undefined && !r.destroyed) r.resume()
      }
    }
    const clear = () => {
      if (timer !== undefined) clearTimeout(timer)
      timer = undefined
    }
    const later = (ms: number) => {
      timer = setTimeout(() => {
        timer = undefined
        pump()
      }, Math.max(1, ms))
    }
    const stop = () => {
      dead = true
      clear()
      queue.length = 0
      bytes = 0
      pipes.delete(pipe)
    }
    const pump = (): void => {
      if (dead || draining || !isReady) return
      clear()
      const w = writer()
      if (w === undefined || w.destroyed) return stop()
      const p = policy(from, to)
      while (queue.length > 0 && !p.cut) {
        const item = queue[0]!
        const now = Date.now()
        if (item.at > now) return later(item.at - now)
        if (!("data" in item)) {
          queue.shift()
          stop()
          return onEnd(item.end)
        }
        if (p.buckets.length > 0) {
          if (item.data.length > burst) {
            queue.splice(1, 0, { data: item.data.subarray(burst), at: item.at })
            item.data = item.data.subarray(0, burst)
          }
          const n = item.data.length
          const wait = Math.max(...p.buckets.map((b) => b.delay(n, now)))
          if (wait > 0) return later(wait)
          for (const b of p.buckets) b.take(n, now)
        }
        queue.shift()
        bytes -= item.data.length
        if (!w.write(item.data)) {
          draining = true
          w.once("drain", () => {
            draining = false
            backpressure()
            pump()
          })
          break
        }
      }
      backpressure()
    }
    const pipe: Pipe = {
      push: (data) => {
        if (dead) return
        queue.push({ data, at: stamp(true) })
        bytes += data.length
        backpressure()
        pump()
      },
      finish: (how) => {
        if (dead) return
        queue.push({ end: how, at: stamp(false) })
        pump()
      },
      pump,
      stop,
      held,
      isDead: () => dead,
      ready: () => {
        isReady = true
        pump()
      }
    }
    pipes.add(pipe)
    return pipe
  }

  const accept = (target: Target) => (client: Net.Socket) => {
    if (closed) return void client.destroy()
    counters.accepted++
    client.on("error", () => {})
    if (conns.size >= maxConnections) {
      counters.refused++
      return void client.resetAndDestroy()
    }
    const srcIp = plainIp(client.remoteAddress)
    const from = options.sourceOf(srcIp)
    const to = target.name
    if (from === undefined) counters.unknownSource++
    if (policy(from, to).cut && policy(to, from).cut) {
      counters.refused++
      return void client.resetAndDestroy()
    }
    client.setNoDelay(true)
    let upstream: Net.Socket | undefined
    let pendingTimer: NodeJS.Timeout | undefined
    let holdUntil = 0
    let done = false
    const fwd = makePipe(from, to, () => client, () => upstream, (how) => {
      if (how === "reset") upstream?.resetAndDestroy()
      else upstream?.end()
      settle()
    })
    const back = makePipe(to, from, () => upstream, () => client, (how) => {
      if (how === "reset") client.resetAndDestroy()
      else client.end()
      settle()
    })
    const destroy = () => {
      if (done) return
      done = true
      if (pendingTimer !== undefined) clearTimeout(pendingTimer)
      fwd.stop()
      back.stop()
      client.destroy()
      upstream?.destroy()
      conns.delete(conn)
    }
    // Once both directions are over, the sockets close on their own; a stalled one is destroyed.
    const settle = () => {
      if (!fwd.isDead() || !back.isDead()) return
      const t = setTimeout(destroy, 2_000)
      t.unref()
    }
    const connectUpstream = () => {
      if (done || upstream !== undefined) return
      if (pendingTimer !== undefined) clearTimeout(pendingTimer)
      pendingTimer = undefined
      const u = Net.connect({ host: target.upstream.host, port: target.upstream.port, noDelay: true, ...(from === undefined ? {} : { localAddress: srcIp }) })
      upstream = u
      let connected = false
      u.on("error", () => {
        if (!connected) {
          // The node is down: its peer sees the connection refused (reset).
          counters.refused++
          client.resetAndDestroy()
          return destroy()
        }
        back.finish("reset")
        fwd.stop()
        settle()
      })
      u.once("connect", () => {
        connected = true
        fwd.ready()
        back.ready()
      })
      u.on("data", (d: Buffer) => back.push(d))
      u.on("end", () => {
        back.finish("end")
        fwd.stop()
        settle()
      })
      u.on("close", () => {
        if (!back.isDead()) back.finish("end")
        fwd.stop()
        settle()
      })
    }
    /** A held connection goes to the node once neither direction is cut and its "lost SYN" wait is over. */
    const tryConnect = () => {
      if (upstream !== undefined || done) return
      if (policy(from, to).cut || policy(to, from).cut) return
      const wait = holdUntil - Date.now()
      if (wait > 0) {
        setTimeout(tryConnect, wait).unref()
        return
      }
      connectUpstream()
    }
    const conn = {
      wake: () => {
        if (upstream === undefined) tryConnect()
        fwd.pump()
        back.pump()
      },
      destroy
    }
    conns.add(conn)
    client.on("data", (d: Buffer) => fwd.push(d))
    client.on("end", () => {
      if (upstream === undefined) return destroy()
      fwd.finish("end")
      back.stop()
      settle()
    })
    client.on("close", (hadError) => {
      if (upstream === undefined) return destroy()
      if (!fwd.isDead()) fwd.finish(hadError ? "reset" : "end")
      back.stop()
      settle()
    })
    const loss = Math.max(policy(from, to).loss, policy(to, from).loss)
    if (loss > 0 && random() < loss) holdUntil = Date.now() + synStall
    pendingTimer = setTimeout(() => {
      if (upstream === undefined) {
        client.resetAndDestroy()
        destroy()
      }
    }, pendingTimeout)
    pendingTimer.unref()
    tryConnect()
  }

  const servers: Array<Net.Server> = []
  const ports: Array<number> = []
  try {
    for (const target of options.targets) {
      const server = Net.createServer({ noDelay: true }, accept(target))
      servers.push(server)
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject)
        server.listen({ host: target.listen.host, port: target.listen.port }, () => {
          server.off("error", reject)
          resolve()
        })
      })
      ports.push((server.address() as Net.AddressInfo).port)
    }
  } catch (e) {
    for (const s of servers) s.close()
    throw e
  }

  const closeNow = () => {
    closed = true
    rules.clear()
    for (const c of [...conns]) c.destroy()
    for (const p of [...pipes]) p.stop()
    for (const s of servers) s.close()
  }

  return {
    ports,
    apply: (id, list) => {
      rules.set(id, { rules: list, buckets: new Map() })
      wakeAll()
    },
    heal: (id) => {
      if (rules.delete(id)) wakeAll()
    },
    healAll: () => {
      rules.clear()
      wakeAll()
    },
    stats: () => ({ open: conns.size, ...counters, buffered: [...pipes].reduce((s, p) => s + p.held(), 0) }),
    close: () => {
      closeNow()
      return Promise.all(servers.map((s) => new Promise<void>((r) => (s.listening ? s.once("close", () => r()) : r())))).then(() => {})
    },
    closeNow
  }
}

/**
 * Checks that a network fault is in effect, from inside the namespaces, without touching the
 * nodes: TCP connects to port 9 of another host (nothing listens there), so a reachable host
 * answers at once with a reset ("refused") and a blocked one times out. The nodes' own port is
 * never used (a connection closed before its handshake would count as a failed handshake against
 * our address). Needs only bash (`/dev/tcp`) and `timeout`.
 *
 * On loopback ({@link verifyProxied}) the same questions are asked through the link proxy: from a
 * node's address to another node's probe port on the proxy, which applies that link's faults and
 * leads to an echo server in the runner (never to the node). A link cut both ways resets the
 * connect ("refused"), a one-way cut stalls the echo, latency delays it; loss must hold some of 20
 * echoes (the proxy models loss as stalls); bandwidth must pace a burst + 0.4 s worth of bytes.
 */
import { spawn } from "node:child_process"
import { readFileSync } from "node:fs"
import * as Net from "node:net"
import { bytesPerSecond } from "./Fabric.ts"
import type { Fault } from "./Manifest.ts"
import type { Host } from "./Netns.ts"

export interface Reach {
  readonly attempts: number
  /** Attempts answered (refused) within the timeout. */
  readonly reached: number
  /** Round-trip time of the answered attempts, ms (median). */
  readonly rttMs: number | undefined
}

const DISCARD = 9

/** `attempts` parallel connects from `from` to `to`, each waiting up to `timeoutMs`. */
export const reach = (from: Host, to: string, attempts: number, timeoutMs: number): Promise<Reach> =>
  new Promise((resolve) => {
    const t = (timeoutMs / 1000).toFixed(2)
    const script = `for i in $(seq ${attempts}); do ( s=$(date +%s%N); timeout ${t} bash -c 'echo > /dev/tcp/${to}/${DISCARD}' 2>/dev/null; c=$?; e=$(date +%s%N); echo "$c $(( (e - s) / 1000000 ))" ) & done; wait`
    const p = spawn("ip", ["netns", "exec", from.ns!, "bash", "-c", script], { stdio: ["ignore", "pipe", "ignore"] })
    let out = ""
    p.stdout.on("data", (d) => (out += String(d)))
    p.on("error", () => resolve({ attempts, reached: 0, rttMs: undefined }))
    p.on("close", () => {
      const rows = out.trim().split("\n").filter((l) => l !== "").map((l) => l.split(" ").map(Number) as [number, number])
      // bash's /dev/tcp fails with 1 on "connection refused" (reached); timeout gives 124.
      const answered = rows.filter(([code]) => code === 1).map(([, ms]) => ms).sort((a, b) => a - b)
      resolve({ attempts, reached: answered.length, rttMs: answered.length === 0 ? undefined : answered[Math.floor(answered.length / 2)] })
    })
  })

export interface Verdict {
  readonly ok: boolean
  readonly detail: string
}

/**
 * Whether `fault` is in effect: a partition blocks across groups and not within one; a one-way
 * cut blocks from→to; an isolated node reaches nobody; loss loses some of 40 connects; latency
 * adds at least 90% of the delay to the round trip; bandwidth shows a tbf qdisc on eth0.
 */
export const verify = async (fault: Fault, host: (name: string) => Host, first: string): Promise<Verdict | undefined> => {
  const blocked = async (a: string, b: string) => (await reach(host(a), host(b).ip, 2, 800)).reached === 0
  const open = async (a: string, b: string) => (await reach(host(a), host(b).ip, 2, 800)).reached > 0
  switch (fault.kind) {
    case "partition": {
      const [g0, g1] = [fault.groups[0]!, fault.groups[1]!]
      const across = await blocked(g0[0]!, g1[0]!)
      const within = g0.length > 1 ? await open(g0[0]!, g0[1]!) : true
      return { ok: across && within, detail: `${g0[0]}->${g1[0]} ${across ? "blocked" : "OPEN"}${g0.length > 1 ? `, ${g0[0]}->${g0[1]} ${within ? "open" : "BLOCKED"}` : ""}` }
    }
    case "one_way": {
      const cut = await blocked(fault.from[0]!, fault.to[0]!)
      return { ok: cut, detail: `${fault.from[0]}->${fault.to[0]} ${cut ? "blocked" : "OPEN"}` }
    }
    case "isolate": {
      const other = (n: string) => host(n).index === 0 ? 1 : 0
      const n = fault.nodes[0]!
      const r = await reach(host(n), `10.77.0.${10 + other(n)}`, 2, 800)
      return { ok: r.reached === 0, detail: `${n}->10.77.0.${10 + other(n)} ${r.reached === 0 ? "blocked" : "OPEN"}` }
    }
    case "loss": {
      const from = fault.nodes[0] ?? first
      const h = host(from)
      const target = `10.77.0.${10 + (h.index === 0 ? 1 : 0)}`
      const r = await reach(h, target, 40, 1500)
      const lost = r.attempts - r.reached
      return { ok: fault.percent === 0 || lost > 0, detail: `${lost}/${r.attempts} connects from ${from} lost` }
    }
    case "latency": {
      const from = fault.nodes[0] ?? first
      const h = host(from)
      const target = `10.77.0.${10 + (h.index === 0 ? 1 : 0)}`
      const r = await reach(h, target, 3, 2000 + 2 * (fault.delay + fault.jitter))
      return { ok: r.rttMs !== undefined && r.rttMs >= 0.9 * fault.delay, detail: `connect round trip from ${from} ${r.rttMs ?? "-"} ms (delay ${fault.delay} ms)` }
    }
    case "bandwidth": {
      // `ip netns exec` can come back empty while another run creates or deletes namespaces: ask again.
      const shownBy = async (n: string) => {
        for (let attempt = 0; ; attempt++) {
          const q = await qdisc(host(n))
          if (/\btbf\b/.test(q) || attempt === 4) return q
          await new Promise((r) => setTimeout(r, 200))
        }
      }
      const shown = await Promise.all((fault.nodes.length === 0 ? [first] : fault.nodes).map(shownBy))
      const ok = shown.every((q) => /\btbf\b/.test(q))
      return { ok, detail: shown.map((q) => q.trim().split("\n")[0] ?? "").join("; ") }
    }
    default:
      return undefined
  }
}

const qdisc = (h: Host): Promise<string> =>
  new Promise((resolve) => {
    const p = spawn("ip", ["netns", "exec", h.ns!, "tc", "qdisc", "show", "dev", "eth0"], { stdio: ["ignore", "pipe", "ignore"] })
    let out = ""
    p.stdout.on("data", (d) => (out += String(d)))
    p.on("error", () => resolve(""))
    p.on("close", () => resolve(out))
  })

/** Whether a process is stopped (state T in /proc/PID/stat). */
export const stopped = (pid: number | undefined): boolean => {
  if (pid === undefined) return false
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    return stat.slice(stat.lastIndexOf(")") + 2).startsWith("T")
  } catch {
    return false
  }
}

/** An echo server on 127.0.0.1: where the proxy's probe ports lead (a node is never touched). */
export const startEcho = (): Promise<{ readonly port: number; readonly close: () => void }> =>
  new Promise((resolve, reject) => {
    const sockets = new Set<Net.Socket>()
    const server = Net.createServer((s) => {
      sockets.add(s)
      s.on("error", () => {})
      s.on("close", () => sockets.delete(s))
      s.on("data", (d) => s.write(d))
    })
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () =>
      resolve({
        port: (server.address() as Net.AddressInfo).port,
        close: () => {
          for (const s of sockets) s.destroy()
          server.close()
        }
      }))
  })

/** What one connect through the proxy saw: the echo of `size` bytes, a reset or close, or nothing in time. */
export interface Echo {
  readonly outcome: "answered" | "refused" | "stalled"
  /** From the connect to the echo's last byte (or the reset, or the timeout). */
  readonly ms: number
}

/** Connects from `fromIp` to `toIp:port`, sends `size` bytes and waits for their echo, at most `timeoutMs`. */
export const echoOnce = (fromIp: string, toIp: string, port: number, timeoutMs: number, size = 1): Promise<Echo> =>
  new Promise((resolve) => {
    const t0 = Date.now()
    let got = 0
    let settled = false
    const s = Net.connect({ host: toIp, port, localAddress: fromIp }, () => s.write(Buffer.alloc(size, 0x2a)))
    const done = (outcome: Echo["outcome"]) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      s.destroy()
      resolve({ outcome, ms: Date.now() - t0 })
    }
    const timer = setTimeout(() => done("stalled"), timeoutMs)
    s.on("data", (d: Buffer) => {
      got += d.length
      if (got >= size) done("answered")
    })
    s.on("error", () => done("refused"))
    s.on("close", () => done("refused"))
  })

const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

/** Burst of the proxy's token buckets (its default). */
const PROXY_BURST = 32 * 1024

/**
 * Whether `fault` is in effect on loopback, asked through the link proxy's probe ports (see the
 * top of this file). `ipOf` gives a node's address, `names` every node's name.
 */
export const verifyProxied = async (fault: Fault, ipOf: (name: string) => string, probePort: number, names: ReadonlyArray<string>): Promise<Verdict | undefined> => {
  const first = names[0]!
  const other = (n: string) => names.find((x) => x !== n)!
  const probe = (a: string, b: string, attempts = 2, timeoutMs = 800) =>
    Promise.all(Array.from({ length: attempts }, () => echoOnce(ipOf(a), ipOf(b), probePort, timeoutMs)))
  const say = (a: string, b: string, list: ReadonlyArray<Echo>) => {
    const answered = list.filter((e) => e.outcome === "answered")
    return answered.length > 0 ? `${a}->${b} open (echo in ${median(answered.map((e) => e.ms))} ms)` : `${a}->${b} ${list.some((e) => e.outcome === "refused") ? "refused" : "stalled"}`
  }
  const blocked = (list: ReadonlyArray<Echo>) => list.every((e) => e.outcome !== "answered")
  switch (fault.kind) {
    case "partition": {
      const [g0, g1] = [fault.groups[0]!, fault.groups[1]!]
      const across = await probe(g0[0]!, g1[0]!)
      const within = g0.length > 1 ? await probe(g0[0]!, g0[1]!) : undefined
      const ok = blocked(across) && (within === undefined || !blocked(within))
      return { ok, detail: `through the link proxy: ${say(g0[0]!, g1[0]!, across)}${within === undefined ? "" : `, ${say(g0[0]!, g0[1]!, within)}`}` }
    }
    case "one_way": {
      const cut = await probe(fault.from[0]!, fault.to[0]!)
      return { ok: blocked(cut), detail: `through the link proxy: ${say(fault.from[0]!, fault.to[0]!, cut)}` }
    }
    case "isolate": {
      const n = fault.nodes[0]!
      const r = await probe(n, other(n))
      return { ok: blocked(r), detail: `through the link proxy: ${say(n, other(n), r)}` }
    }
    case "loss": {
      const from = fault.nodes[0] ?? first
      const r = await probe(from, other(from), 20, 1500)
      // An echo on loopback takes a few ms; a "lost" chunk or SYN holds it 200 ms or more.
      const held = r.filter((e) => e.outcome !== "answered" || e.ms >= 150).length
      return { ok: fault.percent === 0 || held > 0, detail: `${held}/${r.length} echoes from ${from} held (loss modeled as stalls by the link proxy)` }
    }
    case "latency": {
      const from = fault.nodes[0] ?? first
      const r = (await probe(from, other(from), 3, 2000 + 2 * (fault.delay + fault.jitter))).filter((e) => e.outcome === "answered").map((e) => e.ms)
      const rtt = r.length === 0 ? undefined : median(r)!
      return { ok: rtt !== undefined && rtt >= 0.9 * fault.delay, detail: `echo round trip from ${from} through the link proxy ${rtt ?? "-"} ms (delay ${fault.delay} ms)` }
    }
    case "bandwidth": {
      const from = fault.nodes[0] ?? first
      const rate = bytesPerSecond(fault.rate)
      // The burst goes at once; 0.4 s worth of the rate after it (at most 4 MiB).
      const size = Math.min(4 * 1024 * 1024, PROXY_BURST + Math.round(rate * 0.4))
      const expected = ((size - PROXY_BURST) / rate) * 1000
      const e = await echoOnce(ipOf(from), ipOf(other(from)), probePort, 3_000 + 3 * expected, size)
      const ok = e.outcome === "answered" && e.ms >= 0.8 * expected
      return { ok, detail: `${size} bytes from ${from} through the link proxy in ${e.outcome === "answered" ? `${e.ms} ms` : e.outcome} (at ${fault.rate} at least ${Math.round(expected)} ms)` }
    }
    default:
      return undefined
  }
}

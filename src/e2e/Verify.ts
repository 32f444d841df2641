/**
 * Checks that a network fault is in effect, from inside the namespaces, without touching the
 * nodes: TCP connects to port 9 of another host (nothing listens there), so a reachable host
 * answers at once with a reset ("refused") and a blocked one times out. The nodes' own port is
 * never used (a connection closed before its handshake would count as a failed handshake against
 * our address). Needs only bash (`/dev/tcp`) and `timeout`.
 */
import { spawn } from "node:child_process"
import { readFileSync } from "node:fs"
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

/**
 * The network the nodes run in. With network namespaces (root on Linux with `ip`): a switch
 * namespace `p2pe2e-<run>-sw` holding a bridge `br0` (stp off, forward delay 0), and per node a
 * namespace `p2pe2e-<run>-nI` whose `eth0` (10.77.0.(10+I)/24) is a veth to port `pI` of the
 * bridge; `lo` is up in each. Nothing is added to the root namespace, no default route anywhere
 * (docs: /work/shared/NETNS.md). Without namespaces the nodes run on loopback addresses
 * 127.0.1.(10+I) and only process faults apply.
 *
 * Leftovers: every name starts with {@link PREFIX}; {@link cleanupLeftovers} kills what runs in
 * such namespaces (`ip netns pids`), then deletes them; processes of a loopback run are listed in
 * a pid file under the state directory and killed the same way.
 */
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { E2eError, run, which } from "./Sh.ts"

export const PREFIX = "p2pe2e-"
export const SUBNET = "10.77.0.0/24"

/** Where each run keeps its homes and sockets: `<tmp>/p2pe2e-<run>/`. */
export const stateRoot = () => tmpdir()

export interface Host {
  readonly index: number
  /** Namespace name, or undefined on loopback. */
  readonly ns: string | undefined
  readonly ip: string
  /** The bridge port of this host in the switch namespace. */
  readonly port: string
}

export interface Topology {
  readonly mode: "netns" | "loopback"
  /** Why namespaces are not used (loopback mode). */
  readonly reason: string | undefined
  readonly run: string
  readonly switchNs: string | undefined
  readonly hosts: ReadonlyArray<Host>
}

/** Whether namespaces can be created here; undefined if they can, else the reason. */
export const namespaceSupport = (): string | undefined => {
  if (process.platform !== "linux") return `not Linux (${process.platform})`
  if (typeof process.getuid === "function" && process.getuid() !== 0) return "not root"
  if (!which("ip")) return "no `ip` command (iproute2)"
  return undefined
}

/** Names of namespaces left by earlier runs. */
export const leftoverNamespaces = (): ReadonlyArray<string> =>
  run("ip", ["netns", "list"], { allowFail: true }).stdout.split("\n").map((l) => l.trim().split(/\s+/)[0] ?? "").filter((n) => n.startsWith(PREFIX))

const killPid = (pid: number) => {
  try {
    process.kill(pid, "SIGKILL")
  } catch {
    // gone already
  }
}

/** Kills every process in the namespace, then deletes it. */
export const deleteNamespace = (ns: string): void => {
  for (let attempt = 0; attempt < 3; attempt++) {
    const pids = run("ip", ["netns", "pids", ns], { allowFail: true }).stdout.split("\n").map((s) => Number(s.trim())).filter((n) => n > 0)
    if (pids.length === 0) break
    for (const pid of pids) killPid(pid)
    run("sleep", ["0.1"])
  }
  run("ip", ["netns", "del", ns], { allowFail: true })
}

/** Processes listed in pid files of earlier runs (loopback mode, helpers) that still run. */
const leftoverPidFiles = (): ReadonlyArray<string> => {
  try {
    return readdirSync(stateRoot()).filter((d) => d.startsWith(PREFIX)).map((d) => join(stateRoot(), d))
  } catch {
    return []
  }
}

/** The file naming the runner process of a run, in its state directory. */
export const RUNNER_FILE = "runner.pid"

/** Run IDs whose runner still runs (their state directory names a live e2e runner). */
export const activeRuns = (): ReadonlySet<string> => {
  const out = new Set<string>()
  for (const dir of leftoverPidFiles()) {
    try {
      const pid = Number(readFileSync(join(dir, RUNNER_FILE), "utf8").trim())
      if (pid > 0 && pid !== process.pid && readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("e2e")) out.add(dir.slice(dir.lastIndexOf(PREFIX) + PREFIX.length))
    } catch {
      // no runner file, or the runner is gone: a leftover
    }
  }
  return out
}

/**
 * Removes what crashed earlier runs left: processes in `p2pe2e-*` namespaces and the namespaces
 * (their nft tables, iptables rules, qdiscs and nfqdelay helpers go with them), processes in their
 * pid files, and their state directories. Runs whose runner is still alive are left alone (two runs
 * can share the machine). Returns a line per thing removed.
 */
export const cleanupLeftovers = (keep?: string): ReadonlyArray<string> => {
  const done: Array<string> = []
  const active = activeRuns()
  const isActive = (name: string) => [...active].some((run) => name.startsWith(`${PREFIX}${run}-`) || name.endsWith(`${PREFIX}${run}`))
  if (namespaceSupport() === undefined) {
    for (const ns of leftoverNamespaces()) {
      if (isActive(ns)) continue
      deleteNamespace(ns)
      done.push(`removed leftover namespace ${ns}`)
    }
  }
  for (const dir of leftoverPidFiles()) {
    if (keep !== undefined && dir.endsWith(keep)) continue
    if (isActive(dir)) continue
    const pidFile = join(dir, "pids")
    if (existsSync(pidFile)) {
      for (const line of readFileSync(pidFile, "utf8").split("\n")) {
        const pid = Number(line.trim())
        if (pid > 0 && isOurs(pid)) {
          killPid(pid)
          done.push(`killed leftover process ${pid}`)
        }
      }
    }
    rmSync(dir, { recursive: true, force: true })
    done.push(`removed leftover directory ${dir}`)
  }
  return done
}

/** Whether a pid is a node or helper of ours (so a recycled pid is never killed). */
const isOurs = (pid: number): boolean => {
  try {
    const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8")
    return /cli\/main\.[jt]s/.test(cmd) || cmd.includes("nfqdelay") || cmd.includes(PREFIX)
  } catch {
    return false
  }
}

/** Builds the topology for `count` hosts. */
export const create = (runId: string, count: number, loopbackReason: string | undefined): Topology => {
  if (loopbackReason !== undefined) {
    return {
      mode: "loopback",
      reason: loopbackReason,
      run: runId,
      switchNs: undefined,
      hosts: Array.from({ length: count }, (_, i) => ({ index: i, ns: undefined, ip: process.platform === "linux" ? `127.0.1.${10 + i}` : "127.0.0.1", port: "" }))
    }
  }
  if (count > 240) throw new E2eError(`${count} nodes do not fit 10.77.0.10-250`)
  const sw = `${PREFIX}${runId}-sw`
  const hosts: Array<Host> = Array.from({ length: count }, (_, i) => ({ index: i, ns: `${PREFIX}${runId}-n${i}`, ip: `10.77.0.${10 + i}`, port: `p${i}` }))
  run("ip", ["netns", "add", sw])
  const cmds = [
    "link set lo up",
    "link add br0 type bridge stp_state 0 forward_delay 0",
    "link set br0 up"
  ]
  run("ip", ["-n", sw, "-batch", "-"], { input: cmds.join("\n") + "\n" })
  for (const h of hosts) {
    run("ip", ["netns", "add", h.ns!])
    run("ip", ["link", "add", h.port, "netns", sw, "type", "veth", "peer", "name", "eth0", "netns", h.ns!])
    run("ip", ["-n", sw, "-batch", "-"], { input: `link set ${h.port} master br0\nlink set ${h.port} up\n` })
    run("ip", ["-n", h.ns!, "-batch", "-"], { input: `link set lo up\naddr add ${h.ip}/24 dev eth0\nlink set eth0 up\n` })
  }
  return { mode: "netns", reason: undefined, run: runId, switchNs: sw, hosts }
}

/** Deletes the run's namespaces (killing what runs in them). */
export const destroy = (t: Topology): void => {
  if (t.mode !== "netns") return
  for (const h of t.hosts) if (h.ns !== undefined) deleteNamespace(h.ns)
  if (t.switchNs !== undefined) deleteNamespace(t.switchNs)
}

/** A command run inside a host's namespace (or as is on loopback). */
export const inHost = (h: Host, cmd: string, args: ReadonlyArray<string>): { cmd: string; args: ReadonlyArray<string> } =>
  h.ns === undefined ? { cmd, args } : { cmd: "ip", args: ["netns", "exec", h.ns, cmd, ...args] }

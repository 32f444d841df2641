/**
 * Where the benchmark processes run. On the 2-vCPU development VM a round trip between two
 * processes on different CPUs costs ~100 µs, mostly waking the idle vCPU, and ~35 µs on the same
 * CPU: left to the scheduler, each pair of processes lands one way or the other, and the ping-pong
 * ratio swung from 1.0 to 3.4 between runs. On Linux with two CPUs or more (and `taskset`), the
 * benchmark process and its threads run on CPU 0 and the peer processes on CPU 1 (as two hosts
 * would: the receiver's CPU is idle when a message comes, and each side has a core). Elsewhere
 * nothing is pinned. Only benchmark main processes import this module (importing it pins).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process"
import { availableParallelism } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { Effect } from "effect"

/** Whether this process was pinned to CPU 0 (then peers go to {@link PEER_CPU}). */
export const PINNED = process.platform === "linux" && availableParallelism() >= 2 &&
  spawnSync("taskset", ["-a", "-cp", "0", String(process.pid)], { stdio: "ignore" }).status === 0

/** The peers' CPU. */
export const PEER_CPU = "1"

/** `argv` run on `cpu` when pinning, as is otherwise. */
export const onCpu = (cpu: string, argv: ReadonlyArray<string>): ReadonlyArray<string> => (PINNED ? ["taskset", "-c", cpu, ...argv] : argv)

/**
 * Starts bench/_tcp-peer.ts (node flags `nodeFlags`, then `args`) on `cpu` and waits for its
 * "PORT n" line; fails if it exits first.
 */
export const spawnPeer = (cpu: string, nodeFlags: ReadonlyArray<string>, args: ReadonlyArray<string>) =>
  Effect.callback<{ readonly child: ChildProcess; readonly port: number }, Error>((resume) => {
    const peer = join(dirname(fileURLToPath(import.meta.url)), "_tcp-peer.ts")
    const argv = onCpu(cpu, [process.execPath, ...nodeFlags, peer, ...args])
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "pipe", "inherit"] })
    let out = ""
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString()
      const m = /PORT (\d+)/.exec(out)
      if (m !== null) resume(Effect.succeed({ child, port: Number(m[1]) }))
    })
    child.once("exit", (code) => resume(Effect.fail(new Error(`peer ${args.join(" ")} exited with ${code}`))))
  })

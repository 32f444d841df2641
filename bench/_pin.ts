/**
 * Where the benchmark processes run. On the 2-vCPU development VM a round trip between two
 * processes on different CPUs costs ~100 µs, mostly waking the idle vCPU, and ~35 µs on the same
 * CPU: left to the scheduler, each pair of processes lands one way or the other, and the ping-pong
 * ratio swung from 1.0 to 3.4 between runs. On Linux with two CPUs or more (and `taskset`), the
 * benchmark process and its threads run on CPU 0 and the peer processes on CPU 1 (as two hosts
 * would: the receiver's CPU is idle when a message comes, and each side has a core). Elsewhere
 * nothing is pinned.
 */
import { spawnSync } from "node:child_process"
import { availableParallelism } from "node:os"

/** Whether this process was pinned to CPU 0 (then peers go to {@link PEER_CPU}). */
export const PINNED = process.platform === "linux" && availableParallelism() >= 2 &&
  spawnSync("taskset", ["-a", "-cp", "0", String(process.pid)], { stdio: "ignore" }).status === 0

/** The peers' CPU. */
export const PEER_CPU = "1"

/** `argv` run on `cpu` when pinning, as is otherwise. */
export const onCpu = (cpu: string, argv: ReadonlyArray<string>): ReadonlyArray<string> => (PINNED ? ["taskset", "-c", cpu, ...argv] : argv)

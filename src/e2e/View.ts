/**
 * What the runner shows while it runs: one line per event (fault start/heal, a node's peer count
 * changing, a check's result) when standard output is not a terminal; on a terminal a view redrawn
 * every second (nodes and their peers, faults in force, time since heal, the latest events).
 */
import { secs } from "./Report.ts"

export interface NodeRow {
  readonly name: string
  readonly state: string
  readonly peers: number | undefined
  readonly fds: number | undefined
  readonly rssMb: number | undefined
  readonly restarts: number
}

export interface ActiveFault {
  readonly id: number
  readonly kind: string
  readonly nodes: string
  readonly since: number
  /** ms since heal, while waiting for the mesh. */
  readonly healedFor: number | undefined
  readonly bound: number
}

export interface View {
  readonly event: (t: number, text: string) => void
  readonly frame: (t: number, nodes: ReadonlyArray<NodeRow>, faults: ReadonlyArray<ActiveFault>, header: string) => void
  readonly close: () => void
}

const stamp = (t: number) => `[${(t / 1000).toFixed(1).padStart(7)}s]`

export const make = (live: boolean): View => {
  const recent: Array<string> = []
  if (!live) {
    return {
      event: (t, text) => process.stdout.write(`${stamp(t)} ${text}\n`),
      frame: () => {},
      close: () => {}
    }
  }
  return {
    event: (t, text) => {
      recent.push(`${stamp(t)} ${text}`)
      if (recent.length > 12) recent.shift()
    },
    frame: (t, nodes, faults, header) => {
      const rows = nodes.map((n) => `${n.name.padEnd(6)} ${n.state.padEnd(11)} ${String(n.peers ?? "-").padStart(5)} ${String(n.fds ?? "-").padStart(5)} ${(n.rssMb === undefined ? "-" : n.rssMb.toFixed(0)).padStart(7)} ${String(n.restarts).padStart(8)}`)
      const fs = faults.length === 0
        ? ["  (none)"]
        : faults.map((f) => `  #${f.id} ${f.kind} ${f.nodes} since ${secs(t - f.since)}${f.healedFor === undefined ? "" : `, healed ${secs(f.healedFor)} ago (bound ${secs(f.bound, 0)})`}`)
      const rowsMax = Math.max(5, (process.stdout.rows ?? 40) - fs.length - recent.length - 8)
      process.stdout.write(
        "\x1b[H\x1b[2J" +
          [
            `${header}   t=${secs(t)}   Ctrl-C to stop (cleans up)`,
            "",
            `NODE   STATE       PEERS   FDS  RSS(MB) RESTARTS`,
            ...rows.slice(0, rowsMax),
            ...(rows.length > rowsMax ? [`... and ${rows.length - rowsMax} more`] : []),
            "",
            "faults:",
            ...fs,
            "",
            "events:",
            ...recent
          ].join("\n") + "\n"
      )
    },
    close: () => process.stdout.write("\n")
  }
}

/**
 * One memory-reducing garbage collection once a node has started, in the command's own process.
 *
 * Loading the command (about 450 modules run from the sources; one bundle of the same code in
 * the package, scripts/build.ts) and building the node allocates far more than an idle node
 * keeps: V8 grows its young generation to the maximum while it does (a 64 MB semi-space pair on a
 * machine with a few GB) and leaves old-space pages half empty, and nothing gives that memory back
 * while the node is idle, since V8's memory reducer only runs after allocation-heavy work. One
 * full, compacting collection with the "last resort" flavor (what V8 does under memory pressure)
 * shrinks the young generation and releases the freed pages: an idle node's RSS falls by about
 * 40 MB run from the sources, and by about 11 MB (84 to 73) run from the package's bundle, which
 * allocates less while loading (issue 15, `npm run bench -- idle`). It costs one pause of some
 * tens of milliseconds, once, before any peer is connected. More collections in a row would also
 * drop the bytecode of functions that only ran at start-up (V8 flushes bytecode unused for 6 full
 * collections): measured, 0.7 MB less RSS for ~200 ms more pause, so it is not done.
 *
 * V8 offers no API for it, so this exposes `gc` in a throwaway context
 * (`v8.setFlagsFromString("--expose-gc")`, the approach of the `expose-gc` package); the global
 * `gc` stays undefined. A library user's process is never touched: only `effect-p2p start` calls it.
 *
 * @since 0.1.0
 */
import * as V8 from "node:v8"
import * as Vm from "node:vm"

type Gc = (options?: { readonly type?: "major" | "minor"; readonly execution?: "sync" | "async"; readonly flavor?: "regular" | "last-resort" }) => void

/** Runs one compacting, memory-reducing collection; does nothing where `gc` cannot be exposed. */
export const reduceMemory = (): void => {
  try {
    V8.setFlagsFromString("--expose-gc")
    const gc = Vm.runInNewContext("gc") as Gc | undefined
    if (typeof gc === "function") gc({ type: "major", execution: "sync", flavor: "last-resort" })
  } catch {
    // Another engine or a locked-down runtime: the node runs the same, with more memory.
  }
}

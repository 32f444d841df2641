/**
 * `npm run fuzz [-- --inputs N] [--connections N] [--seconds S] [--seed N] [--target NAME]`: runs
 * every fuzz target (or the one named) on N generated inputs each (default 1,000,000), and the
 * connection-level fuzzer (target `connection`) on N fuzzed streams against a whole node (default
 * 10,000); `--seconds` caps each target's time. Prints one JSON line per target ({"target",
 * "inputs", "failures", "seconds", "seed", "examples"}); saves failing inputs under
 * test/fuzz/corpus/ (replayed by `npm test`); exits 1 when anything failed.
 */
import { parseArgs } from "node:util"
import { Effect } from "effect"
import { fuzzConnections } from "./Connections.ts"
import { run } from "./Fuzz.ts"
import { targets } from "./targets.ts"

const { values } = parseArgs({
  options: {
    inputs: { type: "string", default: "1000000" },
    connections: { type: "string", default: "10000" },
    seconds: { type: "string" },
    seed: { type: "string" },
    target: { type: "string" }
  }
})
const inputs = Number(values.inputs)
const connections = Number(values.connections)
const seconds = values.seconds === undefined ? undefined : Number(values.seconds)
const seed = values.seed === undefined ? (Date.now() & 0x7fffffff) : Number(values.seed)
if (!Number.isSafeInteger(inputs) || inputs < 1 || !Number.isSafeInteger(connections) || connections < 0 || (seconds !== undefined && !(seconds > 0)) || !Number.isSafeInteger(seed)) {
  console.error("fuzz: --inputs must be a positive integer, --connections a non-negative integer, --seconds a positive number, --seed an integer")
  process.exit(2)
}
const chosen = targets.filter((t) => values.target === undefined || t.name === values.target)
const withConnections = (values.target === undefined || values.target === "connection") && connections > 0
if (chosen.length === 0 && !withConnections) {
  console.error(`fuzz: no target ${JSON.stringify(values.target)}; targets: ${[...targets.map((t) => t.name), "connection"].join(", ")}`)
  process.exit(2)
}
let failed = 0
for (const target of chosen) {
  const report = run(target, { inputs, ...(seconds === undefined ? {} : { seconds }), seed, save: true })
  failed += report.failures
  console.log(JSON.stringify(report))
}
if (withConnections) {
  const report = await Effect.runPromise(fuzzConnections({ cases: connections, ...(seconds === undefined ? {} : { seconds }), seed, save: true }))
  failed += report.failures
  console.log(JSON.stringify(report))
}
process.exit(failed === 0 ? 0 : 1)

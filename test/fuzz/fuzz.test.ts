// The fuzz targets in `npm test`: every saved failing input replays cleanly, a short generated run
// per target (fixed seed, so it is the same run every time) finds nothing, and the whole node
// survives a run of fuzzed connections. `npm run fuzz` runs the long version.
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { fuzzConnections } from "./Connections.ts"
import { corpus, run } from "./Fuzz.ts"
import { targets } from "./targets.ts"

const INPUTS = 2000

describe("fuzz targets", () => {
  for (const target of targets) {
    it(`${target.name}: the saved corpus replays and ${INPUTS} generated inputs keep the contract`, () => {
      for (const { file, input } of corpus(target.name)) {
        assert.doesNotThrow(() => target.check(input), undefined, undefined, `corpus/${target.name}/${file}`)
      }
      const report = run(target, { inputs: INPUTS, seed: 20261128, save: false })
      assert.strictEqual(report.inputs, INPUTS)
      assert.deepStrictEqual(report.examples, [])
    })
  }
})

describe("fuzzed connections against a whole node", () => {
  it.live("150 fuzzed streams: each connection closed by the node, the friend kept, no defect, nothing left over", () =>
    Effect.gen(function* () {
      for (const { file, input } of corpus("connection")) assert.fail(`corpus/connection/${file} (${input.length} bytes): replay it with npm run fuzz -- --target connection`)
      const report = yield* fuzzConnections({ cases: 150, seed: 20261128, save: false })
      console.log(`connection fuzz: ${report.inputs} streams in ${report.seconds} s`)
      assert.strictEqual(report.inputs, 150)
      assert.deepStrictEqual(report.examples, [])
      assert.strictEqual(report.failures, 0)
    }), 120_000)
})

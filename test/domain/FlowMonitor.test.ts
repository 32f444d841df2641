import { assert, describe, it } from "@effect/vitest"
import { FlowMonitor, SAMPLE_MS, WINDOW_MS } from "../../src/domain/FlowMonitor.ts"

describe("FlowMonitor", () => {
  it("starts empty and idle", () => {
    const m = new FlowMonitor(1_000)
    assert.deepStrictEqual(m.status(1_000), { start: 1_000, bytes: 0, samples: 0, instRate: 0, curRate: 0, avgRate: 0, peakRate: 0, duration: 0, idle: 0, active: false })
  })

  it("counts bytes, samples every 100 ms and reports rates in bytes per second", () => {
    const m = new FlowMonitor(0)
    m.update(500, 10)
    m.update(500, 50)
    const s = m.status(SAMPLE_MS)
    assert.strictEqual(s.bytes, 1000)
    assert.strictEqual(s.samples, 1)
    assert.strictEqual(s.instRate, 10_000) // 1000 bytes in 100 ms
    assert.strictEqual(s.peakRate, 10_000)
    assert.strictEqual(s.avgRate, 10_000)
    assert.strictEqual(s.idle, SAMPLE_MS - 50)
    assert.isTrue(s.active)
  })

  it("the current rate decays towards zero while idle, the peak stays", () => {
    const m = new FlowMonitor(0)
    m.update(1000, 0)
    m.status(SAMPLE_MS)
    const later = m.status(SAMPLE_MS + 5 * WINDOW_MS)
    assert.strictEqual(later.instRate, 0)
    assert.strictEqual(later.curRate, 0)
    assert.strictEqual(later.peakRate, 10_000)
    assert.isFalse(later.active)
    assert.strictEqual(later.idle, SAMPLE_MS + 5 * WINDOW_MS)
    assert.strictEqual(later.avgRate, Math.round(1000 * 1000 / later.duration))
  })
})

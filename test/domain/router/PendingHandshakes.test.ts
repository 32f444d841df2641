import { assert, describe, it } from "@effect/vitest"
import * as Ip from "../../../src/domain/Ip.ts"
import * as ConnTracker from "../../../src/domain/router/ConnTracker.ts"
import * as PendingHandshakes from "../../../src/domain/router/PendingHandshakes.ts"

const entry = (key: string, ip: string, since = 0): PendingHandshakes.Entry<string> => ({ key, ip, group: Ip.group(ip), since })

/** Admits each in turn; the evicted keys, and `!reason` for refused ones. */
const admitAll = (set: PendingHandshakes.PendingHandshakes<string>, entries: ReadonlyArray<PendingHandshakes.Entry<string>>) => {
  const outcomes: Array<string> = []
  for (const e of entries) {
    const r = PendingHandshakes.admit(set, e)
    if ("rejected" in r) outcomes.push(`!${r.rejected}`)
    else {
      set = r.set
      outcomes.push(r.evicted?.key ?? "ok")
    }
  }
  return { set, outcomes }
}

describe("PendingHandshakes", () => {
  it("when full, the connection that has waited longest gives up its slot", () => {
    const { set, outcomes } = admitAll(PendingHandshakes.make({ max: 2, perIp: 10, perGroup: 10 }), [entry("a", "10.0.1.1"), entry("b", "10.0.2.1"), entry("c", "10.0.3.1"), entry("d", "10.0.4.1")])
    assert.deepStrictEqual(outcomes, ["ok", "ok", "a", "b"])
    assert.deepStrictEqual([...set.entries.keys()], ["c", "d"])
  })

  it("caps per IP and per /24 refuse the excess instead of evicting", () => {
    const { outcomes } = admitAll(PendingHandshakes.make({ max: 100, perIp: 2, perGroup: 3 }), [
      entry("a", "10.0.0.1"), entry("b", "10.0.0.1"), entry("c", "10.0.0.1"), entry("d", "10.0.0.2"), entry("e", "10.0.0.3"), entry("f", "10.0.1.1")
    ])
    assert.deepStrictEqual(outcomes, ["ok", "ok", "!pending_ip_limit", "ok", "!pending_subnet_limit", "ok"])
  })

  it("IPv6 is grouped by /64", () => {
    const { outcomes } = admitAll(PendingHandshakes.make({ max: 100, perIp: 5, perGroup: 1 }), [entry("a", "2001:db8::1"), entry("b", "2001:db8::ffff:1"), entry("c", "2001:db8:0:1::1")])
    assert.deepStrictEqual(outcomes, ["ok", "!pending_subnet_limit", "ok"])
  })

  it("remove frees the IP's and the group's count; connections without an IP count only toward the total", () => {
    const limits = { max: 3, perIp: 1, perGroup: 1 }
    let { set } = admitAll(PendingHandshakes.make(limits), [entry("a", "10.0.0.1")])
    set = PendingHandshakes.remove(set, "a")
    assert.deepStrictEqual(admitAll(set, [entry("b", "10.0.0.1")]).outcomes, ["ok"])
    assert.deepStrictEqual(admitAll(PendingHandshakes.make(limits), [entry("x", ""), entry("y", ""), entry("z", ""), entry("w", "")]).outcomes, ["ok", "ok", "ok", "x"])
  })
})

describe("ConnTracker per network group", () => {
  it("refuses a connection when its /24 holds maxPerGroup, and counts the group down on close", () => {
    let t = ConnTracker.make(10, 0, 2)
    for (const ip of ["10.0.0.1", "10.0.0.2"]) {
      const r = ConnTracker.add(t, ip, 0)
      if ("rejected" in r) throw new Error(r.rejected)
      t = r.tracker
    }
    const third = ConnTracker.add(t, "10.0.0.3", 0)
    assert.isTrue("rejected" in third && third.reason === "subnet_limit")
    assert.isFalse("rejected" in ConnTracker.add(t, "10.0.1.3", 0))
    t = ConnTracker.remove(t, "10.0.0.1", 0)
    assert.isFalse("rejected" in ConnTracker.add(t, "10.0.0.3", 0))
  })
})

import { assert, describe, it } from "@effect/vitest"
import * as CometJson from "../../src/domain/CometJson.ts"
import * as NodeInfo from "../../src/domain/NodeInfo.ts"
import type * as NodeId from "../../src/domain/NodeId.ts"

describe("CometBFT's RPC JSON", () => {
  it("times are RFC 3339 with the fraction's trailing zeros trimmed, as Go prints them", () => {
    assert.strictEqual(CometJson.time(Date.UTC(2019, 6, 31, 14, 31, 28, 660)), "2019-07-31T14:31:28.66Z")
    assert.strictEqual(CometJson.time(Date.UTC(2019, 6, 31, 14, 31, 28, 0)), "2019-07-31T14:31:28Z")
    assert.strictEqual(CometJson.time(Date.UTC(2019, 6, 31, 14, 31, 28, 5)), "2019-07-31T14:31:28.005Z")
  })

  it("durations are nanoseconds as strings; byte strings upper-case hex", () => {
    assert.strictEqual(CometJson.duration(1500), "1500000000")
    assert.strictEqual(CometJson.duration(0), "0")
    assert.strictEqual(CometJson.hex(Uint8Array.of(0x40, 0x20, 0x2a, 0x00)), "40202A00")
  })

  it("DefaultNodeInfo has CometBFT's field names, uint64 as strings", () => {
    const info = NodeInfo.make({ nodeId: "ab".repeat(20) as NodeId.NodeId, listenAddr: "tcp://0.0.0.0:26656", network: "chain", moniker: "m", channels: [0x40, 0x20], version: "0.38.0", other: { txIndex: "on", rpcAddress: "tcp://0.0.0.0:26657" } })
    assert.deepStrictEqual(CometJson.nodeInfo(info), {
      protocol_version: { p2p: "8", block: "11", app: "0" },
      id: "ab".repeat(20),
      listen_addr: "tcp://0.0.0.0:26656",
      network: "chain",
      version: "0.38.0",
      channels: "4020",
      moniker: "m",
      other: { tx_index: "on", rpc_address: "tcp://0.0.0.0:26657" }
    })
  })

  it("ConnectionStatus uses Go's field names; int and int64 are strings, the channel ID a number", () => {
    const flow = { start: Date.UTC(2024, 0, 1), bytes: 5, samples: 1, instRate: 2, curRate: 3, avgRate: 4, peakRate: 6, duration: 2000, idle: 1000, active: true }
    const json = CometJson.connectionStatus({ duration: 2000, send: flow, receive: flow, channels: [{ id: 0x30, priority: 5, sendQueueCapacity: 1, sendQueueSize: 0, recentlySent: 7 }] })
    assert.deepStrictEqual(json.Channels, [{ ID: 48, SendQueueCapacity: "1", SendQueueSize: "0", Priority: "5", RecentlySent: "7" }])
    assert.deepStrictEqual(json.SendMonitor, {
      Start: "2024-01-01T00:00:00Z", Bytes: "5", Samples: "1", InstRate: "2", CurRate: "3", AvgRate: "4", PeakRate: "6",
      BytesRem: "0", Duration: "2000000000", Idle: "1000000000", TimeRem: "0", Progress: 0, Active: true
    })
    assert.strictEqual(json.Duration, "2000000000")
  })

  it("a JSON-RPC request needs jsonrpc 2.0, an id and a method", () => {
    assert.deepStrictEqual(CometJson.parseRequest({ jsonrpc: "2.0", id: 1, method: "status" }), { _tag: "Request", id: 1, method: "status", params: {} })
    assert.deepStrictEqual(CometJson.parseRequest({ jsonrpc: "2.0", id: 1, method: "unsafe_ban", params: { subject: "x" } }), { _tag: "Request", id: 1, method: "unsafe_ban", params: { subject: "x" } })
    assert.strictEqual(CometJson.parseRequest({ jsonrpc: "2.0", id: 1, method: "status", params: ["x"] })._tag, "Invalid")
    assert.deepStrictEqual(CometJson.parseRequest([]), { _tag: "Invalid", id: null, data: "a request must be a JSON object" })
    assert.deepStrictEqual(CometJson.parseRequest({ jsonrpc: "1.0", id: 2, method: "status" }), { _tag: "Invalid", id: 2, data: `"jsonrpc" must be "2.0"` })
    assert.strictEqual(CometJson.parseRequest({ jsonrpc: "2.0", method: "status" })._tag, "Invalid")
    assert.strictEqual(CometJson.parseRequest({ jsonrpc: "2.0", id: "x", method: 5 })._tag, "Invalid")
  })
})

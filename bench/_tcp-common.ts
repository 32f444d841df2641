/** Shared setup of the TCP benchmarks' two processes. */
import { BytesValueSchema } from "@bufbuild/protobuf/wkt"
import * as ChannelDescriptor from "../src/domain/ChannelDescriptor.ts"
import * as NodeInfo from "../src/domain/NodeInfo.ts"
import * as NodeKey from "../src/domain/NodeKey.ts"

/** Deterministic keys for the two processes. */
export const benchKey = (n: number) => NodeKey.fromSeed(new Uint8Array(32).fill(n))

/** The benchmark channel: large queue, large messages. */
export const benchChannel = ChannelDescriptor.make({ id: 0x01, messageType: BytesValueSchema, priority: 1, sendQueueCapacity: 256, recvMessageCapacity: 4 * 1024 * 1024 })

export const benchInfo = (key: NodeKey.NodeKey) =>
  NodeInfo.make({ nodeId: key.nodeId, listenAddr: "tcp://127.0.0.1:26656", network: "bench", moniker: "bench", channels: [benchChannel.id] })

/** Rate limits off: the benchmark measures the protocol, not the configured throttle. */
export const benchMConnection = { sendRate: 1e12, recvRate: 1e12, receiveBuffer: 256 }

/** Fixed frame keys for the raw baseline (one per direction). */
export const RAW_KEY_A = new Uint8Array(32).fill(0xa1)
export const RAW_KEY_B = new Uint8Array(32).fill(0xb2)

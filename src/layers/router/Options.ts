/**
 * Router options: validation and defaults (SPEC §4.1). A bad value fails with
 * `InvalidRouterOptions` naming the option.
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import { InvalidRouterOptions, defaults, type Options } from "../../services/Router.ts"

const positive = (option: string, value: number | undefined, fallback: number, minimum = Number.MIN_VALUE) => {
  const v = value ?? fallback
  if (!Number.isFinite(v) || v < minimum) {
    const rule = minimum === Number.MIN_VALUE ? "a positive number" : `a number of at least ${minimum}`
    throw new InvalidRouterOptions({ option, message: `Router option ${option} must be ${rule}, got ${value}` })
  }
  return v
}

/** Counts (slots, queue sizes) must be whole: flooring 0.5 to 0 would stop dialing or accepting for good. */
const positiveInt = (option: string, value: number | undefined, fallback: number) => {
  const v = value ?? fallback
  if (!Number.isSafeInteger(v) || v < 1) throw new InvalidRouterOptions({ option, message: `Router option ${option} must be a positive integer, got ${value}` })
  return v
}

/** Validates options and applies defaults. */
export const resolveOptions = (input: Options) =>
  Effect.try({
    try: () => {
      if (input.queueType !== undefined && input.queueType !== "fifo" && input.queueType !== "priority") {
        throw new InvalidRouterOptions({ option: "queueType", message: `queue type ${JSON.stringify(input.queueType)} is not supported: use "fifo" or "priority"` })
      }
      if (input.nodeInfo.moniker === "") throw new InvalidRouterOptions({ option: "nodeInfo.moniker", message: "Router option nodeInfo.moniker must not be empty" })
      return {
        queueType: input.queueType ?? defaults.queueType,
        dialTimeout: positive("dialTimeout", input.dialTimeout, defaults.dialTimeout),
        handshakeTimeout: positive("handshakeTimeout", input.handshakeTimeout, defaults.handshakeTimeout),
        resolveTimeout: positive("resolveTimeout", input.resolveTimeout, defaults.resolveTimeout),
        maxConcurrentDials: positiveInt("maxConcurrentDials", input.maxConcurrentDials, defaults.maxConcurrentDials),
        maxConcurrentHandshakes: positiveInt("maxConcurrentHandshakes", input.maxConcurrentHandshakes, defaults.maxConcurrentHandshakes),
        maxPendingHandshakesPerIp: positiveInt("maxPendingHandshakesPerIp", input.maxPendingHandshakesPerIp, defaults.maxPendingHandshakesPerIp),
        maxPendingHandshakesPerSubnet: positiveInt("maxPendingHandshakesPerSubnet", input.maxPendingHandshakesPerSubnet, defaults.maxPendingHandshakesPerSubnet),
        maxIncomingConnectionAttempts: positiveInt("maxIncomingConnectionAttempts", input.maxIncomingConnectionAttempts, defaults.maxIncomingConnectionAttempts),
        maxIncomingConnectionsPerSubnet: positiveInt("maxIncomingConnectionsPerSubnet", input.maxIncomingConnectionsPerSubnet, defaults.maxIncomingConnectionsPerSubnet),
        // SPEC §4.1: a window below 1 ms is an error.
        incomingConnectionWindow: positive("incomingConnectionWindow", input.incomingConnectionWindow, defaults.incomingConnectionWindow, 1),
        peerQueueSize: positiveInt("peerQueueSize", input.peerQueueSize, defaults.peerQueueSize)
      }
    },
    catch: (e) => (e instanceof InvalidRouterOptions ? e : new InvalidRouterOptions({ option: "options", message: String(e) }))
  })


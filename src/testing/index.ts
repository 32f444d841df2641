/**
 * The test kit, exported as `effect-p2p/testing`: in-memory networks, channel and peer-update
 * assertions that work under `TestClock`, and the transport conformance suite.
 *
 * @since 0.1.0
 */
export * as Assertions from "./Assertions.ts"
export * as TestNetwork from "./TestNetwork.ts"
export * as TransportSuite from "./TransportSuite.ts"
export * as Within from "./Within.ts"

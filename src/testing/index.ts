/**
 * The test kit, exported as `effect-p2p/testing`: in-memory networks and channel and peer-update
 * assertions that work under `TestClock`. It needs no test runner; the vitest-bound transport
 * conformance suite is `effect-p2p/testing/vitest`.
 *
 * @since 0.1.0
 */
export * as Assertions from "./Assertions.ts"
export * as Keys from "./Keys.ts"
export * as MemoryNetwork from "../layers/MemoryNetwork.ts"
export * as RawPeer from "./RawPeer.ts"
export * as Simulation from "./Simulation.ts"
export * as TestNetwork from "./TestNetwork.ts"
export * as Within from "./Within.ts"

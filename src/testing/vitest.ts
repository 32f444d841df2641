/**
 * The parts of the test kit that register vitest tests, exported as `effect-p2p/testing/vitest`
 * (needs `vitest` and `@effect/vitest`): the transport conformance suite.
 *
 * @since 0.1.0
 */
export * as TransportSuite from "./TransportSuite.ts"

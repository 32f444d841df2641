/**
 * The test kit, exported as `effect-p2p/testing`.
 *
 * @since 0.1.0
 */
export * as TransportSuite from "./TransportSuite.ts"

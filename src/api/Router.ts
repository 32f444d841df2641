/** `Router`: the service, its options, and its layer. */
export * from "../services/Router.ts"
export { layer, make } from "../layers/Router.ts"

/** `Pex`: peer exchange on channel 0x00 in CometBFT's wire form; the service, options and layer. */
export * from "../services/Pex.ts"
export { layer, make } from "../layers/Pex.ts"

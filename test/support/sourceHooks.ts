/**
 * `node --import ./test/support/sourceHooks.ts program.ts`: resolves `effect-p2p` and its
 * subpaths to this repository's TypeScript sources, so a program written against the published
 * package (the README's examples in `examples/app`) runs in the repository without a build, the
 * way `paths` in tsconfig.json and the alias in vitest.config.ts serve the type-checker and vitest.
 */
import { registerHooks } from "node:module"

const sources: Record<string, string> = {
  "effect-p2p": "../../src/index.ts",
  "effect-p2p/testing": "../../src/testing/index.ts",
  "effect-p2p/testing/vitest": "../../src/testing/vitest.ts"
}

registerHooks({
  resolve: (specifier, context, next) => {
    const source = sources[specifier]
    return source === undefined ? next(specifier, context) : { url: new URL(source, import.meta.url).href, shortCircuit: true }
  }
})

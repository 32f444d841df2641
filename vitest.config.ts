import { fileURLToPath } from "node:url"
import { defineConfig } from "vitest/config"

const src = (path: string) => fileURLToPath(new URL(`./src/${path}`, import.meta.url))

export default defineConfig({
  resolve: {
    // In this repository the package's own name resolves to its TypeScript sources (as `paths` in
    // tsconfig.json does for the type-checker); installed users get the compiled `dist/`.
    alias: [
      { find: /^effect-p2p$/, replacement: src("index.ts") },
      { find: /^effect-p2p\/testing$/, replacement: src("testing/index.ts") },
      { find: /^effect-p2p\/testing\/vitest$/, replacement: src("testing/vitest.ts") }
    ]
  },
  test: {
    include: ["test/**/*.test.ts", "examples/app/test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: "forks"
  }
})

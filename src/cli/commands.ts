/** Subcommands defined in their own files, registered by `main.ts`. */
import { crawlCommand } from "./Crawl.ts"
import { e2eCommand } from "./E2e.ts"
import { testnetCommand } from "./Testnet.ts"

export const commands = [testnetCommand, crawlCommand, e2eCommand] as const

/** Subcommands defined in their own files, registered by `main.ts`. */
import { crawlCommand } from "./Crawl.ts"
import { testnetCommand } from "./Testnet.ts"

export const commands = [testnetCommand, crawlCommand] as const

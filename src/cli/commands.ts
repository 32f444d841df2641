/** Subcommands defined in their own files, registered by `main.ts`. */
export const commands = [] as const

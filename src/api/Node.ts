/** `Node`: a whole node as one layer (`layer` on TCP, `layerMemory` over a MemoryNetwork). */
export * from "../layers/Node.ts"

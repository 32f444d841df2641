/**
 * A persistent map with string keys (a hash array mapped trie): `with` and `without` return a new
 * map sharing all but O(log₃₂ n) nodes with the old one, which stays as it was. The PeerManager's
 * state keeps its large collections (peers, address owners, retry times) in it, so a transition
 * that changes one peer costs O(log n) instead of a copy of the whole map.
 *
 * It is a `ReadonlyMap`: code that reads the state sees a map. Iteration follows the keys' hashes,
 * not insertion order; the structure depends only on the keys, so two maps with the same keys
 * iterate alike.
 *
 * @since 0.1.0
 */

const BITS = 5
const MASK = (1 << BITS) - 1
/** Below this shift every hash bit has been used: keys with equal hashes share a collision node. */
const MAX_SHIFT = 30

/** FNV-1a over the UTF-16 code units, then a final mix. */
const hashOf = (key: string): number => {
  let h = 0x811c9dc5
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193)
  h ^= h >>> 15
  h = Math.imul(h, 0x2c1b3c6d)
  return (h ^ (h >>> 12)) >>> 0
}

const popcount = (x: number): number => {
  x -= (x >>> 1) & 0x55555555
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333)
  x = (x + (x >>> 4)) & 0x0f0f0f0f
  return Math.imul(x, 0x01010101) >>> 24
}

class Leaf<V> {
  readonly hash: number
  readonly key: string
  readonly value: V
  constructor(hash: number, key: string, value: V) {
    this.hash = hash
    this.key = key
    this.value = value
  }
}

class Branch<V> {
  readonly bitmap: number
  readonly children: ReadonlyArray<Node<V>>
  constructor(bitmap: number, children: ReadonlyArray<Node<V>>) {
    this.bitmap = bitmap
    this.children = children
  }
}

class Collision<V> {
  readonly hash: number
  readonly leaves: ReadonlyArray<Leaf<V>>
  constructor(hash: number, leaves: ReadonlyArray<Leaf<V>>) {
    this.hash = hash
    this.leaves = leaves
  }
}

type Node<V> = Leaf<V> | Branch<V> | Collision<V>

/** Set by `insert`: whether the key was new. */
let added = false

const pair = <V>(shift: number, a: Leaf<V> | Collision<V>, b: Leaf<V>): Node<V> => {
  if (shift > MAX_SHIFT) return new Collision(b.hash, a instanceof Leaf ? [a, b] : [...a.leaves, b])
  const ia = (a.hash >>> shift) & MASK
  const ib = (b.hash >>> shift) & MASK
  if (ia === ib) return new Branch(1 << ia, [pair(shift + BITS, a, b)])
  return ia < ib ? new Branch((1 << ia) | (1 << ib), [a, b]) : new Branch((1 << ia) | (1 << ib), [b, a])
}

const insert = <V>(node: Node<V>, shift: number, leaf: Leaf<V>): Node<V> => {
  if (node instanceof Leaf) {
    if (node.key === leaf.key) return node.value === leaf.value ? node : leaf
    added = true
    if (node.hash === leaf.hash && shift > MAX_SHIFT) return new Collision(leaf.hash, [node, leaf])
    return pair(shift, node, leaf)
  }
  if (node instanceof Collision) {
    // A collision node lifted up by removals may meet a key of another hash.
    if (node.hash !== leaf.hash) {
      added = true
      return pair(shift, node, leaf)
    }
    const i = node.leaves.findIndex((l) => l.key === leaf.key)
    if (i >= 0) {
      if (node.leaves[i]!.value === leaf.value) return node
      const leaves = node.leaves.slice()
      leaves[i] = leaf
      return new Collision(node.hash, leaves)
    }
    added = true
    return new Collision(node.hash, [...node.leaves, leaf])
  }
  const bit = 1 << ((leaf.hash >>> shift) & MASK)
  const at = popcount(node.bitmap & (bit - 1))
  if ((node.bitmap & bit) === 0) {
    added = true
    const children = node.children.slice()
    children.splice(at, 0, leaf)
    return new Branch(node.bitmap | bit, children)
  }
  const child = node.children[at]!
  const next = insert(child, shift + BITS, leaf)
  if (next === child) return node
  const children = node.children.slice()
  children[at] = next
  return new Branch(node.bitmap, children)
}

/** The node without `key`: the same node when absent, `undefined` when it empties. A branch left with one leaf becomes that leaf, so the shape depends only on the keys. */
const remove = <V>(node: Node<V>, shift: number, hash: number, key: string): Node<V> | undefined => {
  if (node instanceof Leaf) return node.key === key ? undefined : node
  if (node instanceof Collision) {
    const i = node.leaves.findIndex((l) => l.key === key)
    if (i < 0) return node
    if (node.leaves.length === 2) return node.leaves[1 - i]
    return new Collision(node.hash, node.leaves.filter((_, j) => j !== i))
  }
  const bit = 1 << ((hash >>> shift) & MASK)
  if ((node.bitmap & bit) === 0) return node
  const at = popcount(node.bitmap & (bit - 1))
  const child = node.children[at]!
  const next = remove(child, shift + BITS, hash, key)
  if (next === child) return node
  if (next === undefined) {
    if (node.children.length === 1) return undefined
    if (node.children.length === 2) {
      const other = node.children[1 - at]!
      if (!(other instanceof Branch)) return other
    }
    const children = node.children.slice()
    children.splice(at, 1)
    return new Branch(node.bitmap & ~bit, children)
  }
  if (node.children.length === 1 && !(next instanceof Branch)) return next
  const children = node.children.slice()
  children[at] = next
  return new Branch(node.bitmap, children)
}

const lookup = <V>(node: Node<V> | undefined, key: string): Leaf<V> | undefined => {
  if (node === undefined) return undefined
  const hash = hashOf(key)
  let shift = 0
  while (true) {
    if (node instanceof Leaf) return node.key === key ? node : undefined
    if (node instanceof Collision) return node.leaves.find((l) => l.key === key)
    const bit = 1 << ((hash >>> shift) & MASK)
    if ((node.bitmap & bit) === 0) return undefined
    node = node.children[popcount(node.bitmap & (bit - 1))]!
    shift += BITS
  }
}

function* leaves<V>(root: Node<V> | undefined): Generator<Leaf<V>> {
  if (root === undefined) return
  const stack: Array<Node<V>> = [root]
  while (stack.length > 0) {
    const node = stack.pop()!
    if (node instanceof Leaf) yield node
    else if (node instanceof Collision) yield* node.leaves
    else for (let i = node.children.length - 1; i >= 0; i--) stack.push(node.children[i]!)
  }
}

/** A persistent map; see the module comment. */
export class PersistentMap<K extends string, V> implements ReadonlyMap<K, V> {
  readonly #root: Node<V> | undefined
  readonly size: number

  private constructor(root: Node<V> | undefined, size: number) {
    this.#root = root
    this.size = size
  }

  static empty<K extends string, V>(): PersistentMap<K, V> {
    return new PersistentMap<K, V>(undefined, 0)
  }

  /** A map of the entries (later ones win); returns `entries` itself when it is one already. */
  static from<K extends string, V>(entries: Iterable<readonly [K, V]>): PersistentMap<K, V> {
    if (entries instanceof PersistentMap) return entries as PersistentMap<K, V>
    let map = PersistentMap.empty<K, V>()
    for (const [k, v] of entries) map = map.with(k, v)
    return map
  }

  get(key: K): V | undefined {
    return lookup(this.#root, key)?.value
  }

  has(key: K): boolean {
    return lookup(this.#root, key) !== undefined
  }

  /** This map with `key` set to `value` (this map itself when it already holds that value). */
  with(key: K, value: V): PersistentMap<K, V> {
    const leaf = new Leaf(hashOf(key), key, value)
    if (this.#root === undefined) return new PersistentMap(leaf, 1)
    added = false
    const root = insert(this.#root, 0, leaf)
    return root === this.#root ? this : new PersistentMap(root, added ? this.size + 1 : this.size)
  }

  /** This map without `key` (this map itself when absent). */
  without(key: K): PersistentMap<K, V> {
    if (this.#root === undefined) return this
    const root = remove(this.#root, 0, hashOf(key), key)
    return root === this.#root ? this : new PersistentMap(root, this.size - 1)
  }

  *entries(): MapIterator<[K, V]> {
    for (const leaf of leaves(this.#root)) yield [leaf.key as K, leaf.value]
  }

  *keys(): MapIterator<K> {
    for (const leaf of leaves(this.#root)) yield leaf.key as K
  }

  *values(): MapIterator<V> {
    for (const leaf of leaves(this.#root)) yield leaf.value
  }

  [Symbol.iterator](): MapIterator<[K, V]> {
    return this.entries()
  }

  forEach(f: (value: V, key: K, map: ReadonlyMap<K, V>) => void, thisArg?: unknown): void {
    // No generator, no entry pairs: the cheapest walk, for hot paths.
    if (this.#root === undefined) return
    const stack: Array<Node<V>> = [this.#root]
    while (stack.length > 0) {
      const node = stack.pop()!
      if (node instanceof Leaf) f.call(thisArg, node.value, node.key as K, this)
      else if (node instanceof Collision) for (const leaf of node.leaves) f.call(thisArg, leaf.value, leaf.key as K, this)
      else for (let i = node.children.length - 1; i >= 0; i--) stack.push(node.children[i]!)
    }
  }

  get [Symbol.toStringTag](): string {
    return "PersistentMap"
  }

  /** As a list of entries, like a `Map` spread. */
  toJSON(): Array<[K, V]> {
    return [...this.entries()]
  }
}

/** A persistent set of strings (a {@link PersistentMap} to `true`); `with` and `without` return a new set. */
export class PersistentSet<K extends string> implements ReadonlySet<K> {
  readonly #map: PersistentMap<K, true>

  private constructor(map: PersistentMap<K, true>) {
    this.#map = map
  }

  static empty<K extends string>(): PersistentSet<K> {
    return new PersistentSet<K>(PersistentMap.empty())
  }

  /** A set of the values; returns `values` itself when it is one already. */
  static from<K extends string>(values: Iterable<K>): PersistentSet<K> {
    if (values instanceof PersistentSet) return values as PersistentSet<K>
    let set = PersistentSet.empty<K>()
    for (const v of values) set = set.with(v)
    return set
  }

  get size(): number {
    return this.#map.size
  }

  has(value: K): boolean {
    return this.#map.has(value)
  }

  with(value: K): PersistentSet<K> {
    const map = this.#map.with(value, true)
    return map === this.#map ? this : new PersistentSet(map)
  }

  without(value: K): PersistentSet<K> {
    const map = this.#map.without(value)
    return map === this.#map ? this : new PersistentSet(map)
  }

  *entries(): SetIterator<[K, K]> {
    for (const k of this.#map.keys()) yield [k, k]
  }

  keys(): SetIterator<K> {
    return this.#map.keys()
  }

  values(): SetIterator<K> {
    return this.#map.keys()
  }

  [Symbol.iterator](): SetIterator<K> {
    return this.#map.keys()
  }

  forEach(f: (value: K, key: K, set: ReadonlySet<K>) => void, thisArg?: unknown): void {
    this.#map.forEach((_, k) => f.call(thisArg, k, k, this))
  }

  get [Symbol.toStringTag](): string {
    return "PersistentSet"
  }

  /** As a list, like a `Set` spread. */
  toJSON(): Array<K> {
    return [...this.#map.keys()]
  }
}

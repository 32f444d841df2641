/**
 * Inputs for the fuzzers: a seeded generator (so a run replays exactly from its seed), random byte
 * strings, and mutations of valid encodings (bit flips, interesting bytes, insertions, deletions,
 * duplications, truncation, splices with another seed, and rewritten varints, where length
 * prefixes hide). Text inputs are mutated the same way over their UTF-8 bytes.
 */

/** A small, fast, seeded generator (sfc32). */
export class Random {
  #a: number
  #b: number
  #c: number
  #d: number

  constructor(seed: number) {
    this.#a = 0x9e3779b9
    this.#b = 0x243f6a88
    this.#c = 0xb7e15162
    this.#d = seed >>> 0
    for (let i = 0; i < 15; i++) this.u32()
  }

  /** A 32-bit unsigned integer. */
  u32(): number {
    const t = (((this.#a + this.#b) >>> 0) + this.#d) >>> 0
    this.#d = (this.#d + 1) >>> 0
    this.#a = this.#b ^ (this.#b >>> 9)
    this.#b = (this.#c + (this.#c << 3)) >>> 0
    this.#c = ((this.#c << 21) | (this.#c >>> 11)) >>> 0
    this.#c = (this.#c + t) >>> 0
    return t
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return n <= 0 ? 0 : this.u32() % n
  }

  /** `true` with probability `p`. */
  chance(p: number): boolean {
    return this.u32() / 0x100000000 < p
  }

  pick<A>(xs: ReadonlyArray<A>): A {
    return xs[this.int(xs.length)]!
  }

  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n)
    for (let i = 0; i < n; i++) out[i] = this.u32() & 0xff
    return out
  }
}

const INTERESTING = [0x00, 0x01, 0x7f, 0x80, 0xff, 0xfe, 0x22, 0x0a, 0x12, 0x1a, 0x20, 0x40]

/** Varints at the edges of what decoders accept: 0, 127/128, 1034/1035, 2^31, 2^53, 2^64 - 1, eleven bytes. */
const EDGE_VARINTS: ReadonlyArray<Uint8Array> = [
  [0x00], [0x7f], [0x80, 0x01], [0x8a, 0x08], [0x8b, 0x08], [0xff, 0x7f], [0x80, 0x80, 0x80, 0x80, 0x08],
  [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f], [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
  [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], [0x80, 0x00]
].map((b) => Uint8Array.from(b))

const splice = (a: Uint8Array, at: number, removeCount: number, insert: Uint8Array): Uint8Array => {
  const remove = Math.max(0, Math.min(removeCount, a.length - at))
  const out = new Uint8Array(a.length - remove + insert.length)
  out.set(a.subarray(0, at))
  out.set(insert, at)
  out.set(a.subarray(at + remove), at + insert.length)
  return out
}

/** One to four mutations of `input`; `others` are other seeds to splice from. */
export const mutate = (r: Random, input: Uint8Array, others: ReadonlyArray<Uint8Array>, maxLength: number): Uint8Array => {
  let out: Uint8Array = new Uint8Array(input)
  const rounds = 1 + r.int(4)
  for (let k = 0; k < rounds; k++) {
    const at = r.int(out.length + 1)
    switch (r.int(10)) {
      case 0: // flip a bit
        if (out.length > 0) out[r.int(out.length)]! ^= 1 << r.int(8)
        break
      case 1: // an interesting byte
        if (out.length > 0) out[r.int(out.length)] = r.pick(INTERESTING)
        break
      case 2: // a random byte
        if (out.length > 0) out[r.int(out.length)] = r.int(256)
        break
      case 3: // insert random bytes
        out = splice(out, at, 0, r.bytes(1 + r.int(16)))
        break
      case 4: // delete a range
        out = splice(out, at, Math.min(out.length - at, 1 + r.int(16)), new Uint8Array(0))
        break
      case 5: // duplicate a range
        if (out.length > 0) {
          const from = r.int(out.length)
          out = splice(out, at, 0, out.slice(from, from + 1 + r.int(32)))
        }
        break
      case 6: // truncate
        out = out.slice(0, r.int(out.length + 1))
        break
      case 7: { // splice with another seed
        const other = r.pick(others)
        const from = r.int(other.length + 1)
        out = splice(out, at, r.int(8), other.slice(from, from + 1 + r.int(64)))
        break
      }
      case 8: // a varint at the edge, over whatever was there (length prefixes live at byte 0 and after tags)
        out = splice(out, at, Math.min(out.length - at, r.int(3)), r.pick(EDGE_VARINTS))
        break
      default: // an arithmetic nudge of a byte
        if (out.length > 0) {
          const i = r.int(out.length)
          out[i] = (out[i]! + r.pick([1, -1, 16, -16, 128])) & 0xff
        }
    }
  }
  return out.length > maxLength ? out.slice(0, maxLength) : out
}

/** An input: a mutation of a seed most of the time, a random string otherwise. */
export const generate = (r: Random, seeds: ReadonlyArray<Uint8Array>, maxLength: number): Uint8Array =>
  seeds.length > 0 && r.chance(0.85) ? mutate(r, r.pick(seeds), seeds, maxLength) : r.bytes(r.int(Math.min(maxLength, 256) + 1))

/**
 * Protobuf encoding for the router's hot path. `toBinary` from protobuf-es starts every message in
 * a fresh 128-byte buffer and grows it by doubling, which is a third of the cost of routing a 1 KiB
 * message. This encoder walks the same descriptors with protobuf-es's own `BinaryWriter`, but one
 * writer is reused, so its buffer grows once. It covers proto3-style fields (scalars, enums,
 * messages, oneofs, repeated fields, explicit presence, unknown fields); any message type using
 * something else (maps, groups, required fields, unwrapped well-known types) is encoded by
 * `toBinary`. The output is byte-for-byte `toBinary`'s: the tests compare them.
 *
 * @since 0.1.0
 */
import { ScalarType, toBinary, type DescField, type DescMessage, type MessageShape } from "@bufbuild/protobuf"
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire"

type Fields = Record<string, unknown>
type Write = (writer: BinaryWriter, message: Fields) => void

const IMPLICIT = 2
const LEGACY_REQUIRED = 3

const wireTypeOf = (type: ScalarType): WireType => {
  switch (type) {
    case ScalarType.BYTES:
    case ScalarType.STRING:
      return WireType.LengthDelimited
    case ScalarType.DOUBLE:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      return WireType.Bit64
    case ScalarType.FIXED32:
    case ScalarType.SFIXED32:
    case ScalarType.FLOAT:
      return WireType.Bit32
    default:
      return WireType.Varint
  }
}

type ScalarWrite = (w: BinaryWriter, v: unknown) => void

const scalarWrite = (type: ScalarType): ScalarWrite => {
  switch (type) {
    case ScalarType.STRING: return (w, v) => void w.string(v as string)
    case ScalarType.BOOL: return (w, v) => void w.bool(v as boolean)
    case ScalarType.DOUBLE: return (w, v) => void w.double(v as number)
    case ScalarType.FLOAT: return (w, v) => void w.float(v as number)
    case ScalarType.INT32: return (w, v) => void w.int32(v as number)
    case ScalarType.INT64: return (w, v) => void w.int64(v as bigint | string)
    case ScalarType.UINT64: return (w, v) => void w.uint64(v as bigint | string)
    case ScalarType.FIXED64: return (w, v) => void w.fixed64(v as bigint | string)
    case ScalarType.BYTES: return (w, v) => void w.bytes(v as Uint8Array)
    case ScalarType.FIXED32: return (w, v) => void w.fixed32(v as number)
    case ScalarType.SFIXED32: return (w, v) => void w.sfixed32(v as number)
    case ScalarType.SFIXED64: return (w, v) => void w.sfixed64(v as bigint | string)
    case ScalarType.SINT64: return (w, v) => void w.sint64(v as bigint | string)
    case ScalarType.UINT32: return (w, v) => void w.uint32(v as number)
    case ScalarType.SINT32: return (w, v) => void w.sint32(v as number)
  }
}

/** Whether a singular implicit-presence value is its type's zero (then it is not written). */
const isZero = (type: ScalarType, v: unknown): boolean => {
  switch (type) {
    case ScalarType.BOOL: return v === false
    case ScalarType.STRING: return v === ""
    case ScalarType.BYTES: return v instanceof Uint8Array && v.byteLength === 0
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT: return Object.is(v, 0)
    // Loose comparison matches 0n, 0 and "0", as protobuf-es does.
    default: return v == 0
  }
}

/** A compiled writer, `null` for a message type this encoder leaves to `toBinary`. */
const compiled = new WeakMap<DescMessage, Write | null>()

const unsupported = (field: DescField): boolean =>
  field.fieldKind === "map" ||
  field.presence === LEGACY_REQUIRED ||
  ((field.fieldKind === "message" || (field.fieldKind === "list" && field.listKind === "message")) &&
    (field.delimitedEncoding || field.message.typeName.startsWith("google.protobuf.")))

const compile = (desc: DescMessage): Write | null => {
  const known = compiled.get(desc)
  if (known !== undefined) return known
  if (desc.fields.some(unsupported)) {
    compiled.set(desc, null)
    return null
  }
  const writers: Array<Write> = []
  // Registered before the fields so recursive types find it (through `children` below).
  const typeName = desc.typeName
  const checked = desc.fields.length > 0
  const write: Write = (w, m) => {
    // A message of another type is refused, as protobuf-es does (it would otherwise be written
    // with this type's field numbers).
    if (checked && m["$typeName"] !== typeName) throw new Error(`cannot encode a ${String(m["$typeName"])} as ${typeName}`)
    for (let i = 0; i < writers.length; i++) writers[i]!(w, m)
    const unknown = m["$unknown"] as ReadonlyArray<{ no: number; wireType: WireType; data: Uint8Array }> | undefined
    if (unknown !== undefined) for (const u of unknown) w.tag(u.no, u.wireType).raw(u.data)
  }
  compiled.set(desc, write)
  const children: Array<DescMessage> = []
  for (const field of [...desc.fields].sort((a, b) => a.number - b.number)) {
    const no = field.number
    const name = field.localName
    if (field.fieldKind === "message" || (field.fieldKind === "list" && field.listKind === "message")) children.push(field.message!)
    let value: (w: BinaryWriter, v: unknown) => void
    if (field.fieldKind === "message") {
      const child = field.message
      value = (w, v) => {
        w.tag(no, WireType.LengthDelimited).fork()
        compiled.get(child)!(w, v as Fields)
        w.join()
      }
    } else if (field.fieldKind === "scalar" || field.fieldKind === "enum") {
      const type = field.fieldKind === "enum" ? ScalarType.INT32 : field.scalar
      const wt = wireTypeOf(type)
      const sw = scalarWrite(type)
      value = (w, v) => {
        w.tag(no, wt)
        sw(w, v)
      }
    } else if (field.fieldKind === "list") {
      if (field.listKind === "message") {
        const child = field.message
        writers.push((w, m) => {
          const items = m[name] as ReadonlyArray<Fields>
          for (let i = 0; i < items.length; i++) {
            w.tag(no, WireType.LengthDelimited).fork()
            compiled.get(child)!(w, items[i]!)
            w.join()
          }
        })
      } else {
        const type = field.listKind === "enum" ? ScalarType.INT32 : field.scalar
        const sw = scalarWrite(type)
        if (field.packed) {
          writers.push((w, m) => {
            const items = m[name] as ReadonlyArray<unknown>
            if (items.length === 0) return
            w.tag(no, WireType.LengthDelimited).fork()
            for (let i = 0; i < items.length; i++) sw(w, items[i])
            w.join()
          })
        } else {
          const wt = wireTypeOf(type)
          writers.push((w, m) => {
            const items = m[name] as ReadonlyArray<unknown>
            for (let i = 0; i < items.length; i++) {
              w.tag(no, wt)
              sw(w, items[i])
            }
          })
        }
      }
      continue
    } else {
      compiled.set(desc, null)
      return null
    }
    if (field.oneof !== undefined) {
      const oneofName = field.oneof.localName
      writers.push((w, m) => {
        const oneof = m[oneofName] as { readonly case: string | undefined; readonly value?: unknown }
        if (oneof.case === name) value(w, oneof.value)
      })
    } else if (field.presence !== IMPLICIT || field.fieldKind === "message") {
      writers.push((w, m) => {
        const v = m[name]
        // Explicit presence: only own properties count (defaults live on the prototype).
        if (v !== undefined && Object.prototype.hasOwnProperty.call(m, name)) value(w, v)
      })
    } else if (field.fieldKind === "enum") {
      const zero = field.enum.values[0]?.number ?? 0
      writers.push((w, m) => {
        const v = m[name]
        if (v !== zero) value(w, v)
      })
    } else {
      const type = field.scalar
      writers.push((w, m) => {
        const v = m[name]
        if (!isZero(type, v)) value(w, v)
      })
    }
  }
  for (const child of children) {
    if (compile(child) === null) {
      compiled.set(desc, null)
      return null
    }
  }
  return write
}

const writer = new BinaryWriter()

// ---------------------------------------------------------------------------------------------
// Taking the bytes out

/**
 * protobuf-es's `finish()` copies the bytes out with `slice`, one new ArrayBuffer per message
 * (~0.65 µs for 1 KiB: a third of routing it between two memory-connected routers). Messages below
 * `POOLED_BELOW` are copied into Node's Buffer pool instead (`Buffer.allocUnsafe`, ~0.15 µs), as
 * Node's own socket reads are: a message kept long keeps its 64 KiB pool slab alive, and readers of
 * `.buffer` must honour `byteOffset` (ours do). It reads the writer's `buffer` and `pos`, which
 * protobuf-es does not export: `pooledFinishWorks` checks once, against a plain writer, that they
 * are what this expects, and with another protobuf-es whose writer differs `finish()` is used.
 */
const POOLED_BELOW = 4096

interface WriterState {
  readonly buffer: Uint8Array
  pos: number
}

const stateOf = (w: BinaryWriter): WriterState | undefined => {
  const s = w as unknown as { readonly buffer?: unknown; readonly pos?: unknown }
  return s.buffer instanceof Uint8Array && typeof s.pos === "number" ? (s as WriterState) : undefined
}

/** The bytes written so far, in the Buffer pool; resets the writer (a whole message leaves no fork open). */
const takePooled = (w: BinaryWriter, state: WriterState): Uint8Array => {
  const n = state.pos
  const b = Buffer.allocUnsafe(n)
  b.set(state.buffer.subarray(0, n))
  state.pos = 0
  return new Uint8Array(b.buffer, b.byteOffset, n)
}

const sample = (w: BinaryWriter) => w.tag(1, WireType.LengthDelimited).bytes(Uint8Array.of(1, 2, 3)).tag(2, WireType.LengthDelimited).fork().tag(1, WireType.Varint).int32(300).join()

const sameBytes = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((x, i) => x === b[i])

/** Whether `takePooled` gives `finish()`'s bytes and leaves the writer as `finish()` does. */
const pooledFinishWorks = ((): boolean => {
  try {
    const ours = new BinaryWriter()
    const state = stateOf(sample(ours))
    if (state === undefined) return false
    const taken = takePooled(ours, state)
    const again = ours.tag(3, WireType.Varint).int32(5).finish()
    return sameBytes(taken, sample(new BinaryWriter()).finish()) && sameBytes(again, Uint8Array.of(24, 5))
  } catch {
    return false
  }
})()

const finish = (w: BinaryWriter): Uint8Array => {
  if (!pooledFinishWorks) return w.finish()
  const state = stateOf(w)
  return state !== undefined && state.pos < POOLED_BELOW ? takePooled(w, state) : w.finish()
}

/** The protobuf bytes of `message` (equal to `toBinary(desc, message)`). */
export const encode = <Desc extends DescMessage>(desc: Desc, message: MessageShape<Desc>): Uint8Array => {
  const write = compile(desc)
  if (write === null) return toBinary(desc, message)
  try {
    write(writer, message as unknown as Fields)
    return finish(writer)
  } catch {
    writer.finish() // reset the shared writer
    return toBinary(desc, message) // rethrows with protobuf-es's message when the value is bad
  }
}

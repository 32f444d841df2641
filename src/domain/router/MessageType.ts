/**
 * The `message_type` label of the byte counters `p2p_message_send_bytes_total` and
 * `p2p_message_receive_bytes_total`, as CometBFT forms it: `<package>_<Message>` of the message
 * a reactor handles, e.g. `p2p_PexRequest`. CometBFT's reactors unwrap their channel's wrapper
 * message (`tendermint.p2p.Message { oneof sum { PexRequest ...; PexAddrs ... } }`) before
 * counting, so for a message made of a single `oneof` of messages the label names the case that
 * is set; otherwise it names the message itself. The package is the last segment of the protobuf
 * package (Go's package name for CometBFT's protos). Labels are cached per type and case.
 *
 * @since 0.1.0
 */
import type { DescMessage } from "@bufbuild/protobuf"

const labelOf = (typeName: string): string => {
  const dot = typeName.lastIndexOf(".")
  if (dot < 0) return typeName
  const pkg = typeName.slice(0, dot)
  return `${pkg.slice(pkg.lastIndexOf(".") + 1)}_${typeName.slice(dot + 1)}`
}

interface Labeller {
  /** The wrapper's oneof property, when the message is a wrapper. */
  readonly oneof: string | undefined
  readonly self: string
  readonly cases: ReadonlyMap<string, string>
}

const cache = new WeakMap<DescMessage, Labeller>()

const labellerOf = (desc: DescMessage): Labeller => {
  const cached = cache.get(desc)
  if (cached !== undefined) return cached
  const only = desc.members.length === 1 ? desc.members[0] : undefined
  const wrapper = only !== undefined && only.kind === "oneof" && only.fields.every((f) => f.fieldKind === "message") ? only : undefined
  const labeller: Labeller = {
    oneof: wrapper?.localName,
    self: labelOf(desc.typeName),
    cases: new Map((wrapper?.fields ?? []).map((f) => [f.localName, f.fieldKind === "message" ? labelOf(f.message.typeName) : labelOf(desc.typeName)]))
  }
  cache.set(desc, labeller)
  return labeller
}

/** The label of `message`, a message of type `desc`. */
export const label = (desc: DescMessage, message: unknown): string => {
  const l = labellerOf(desc)
  if (l.oneof === undefined) return l.self
  const set = (message as Record<string, { readonly case?: string } | undefined>)[l.oneof]?.case
  return (set === undefined ? undefined : l.cases.get(set)) ?? l.self
}

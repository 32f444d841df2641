/**
 * A ban: a node ID, or an IP network (a single address is a /32 or /128), refused until a time.
 * Node bans stop a peer whatever address it comes from; network bans stop connections that never
 * get as far as a node ID (garbage, failed authentication), before any handshake work. Stored as
 * the protobuf `tendermint.p2p.Ban` (ours) in the peer store.
 *
 * @since 0.1.0
 */
import { create, fromBinary, toBinary } from "@bufbuild/protobuf"
import { timestampFromMs, timestampMs } from "@bufbuild/protobuf/wkt"
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import { BanSchema } from "../proto/tendermint/p2p/peerstore_pb.ts"
import * as Ip from "./Ip.ts"
import * as NodeId from "./NodeId.ts"

/** What is banned. */
export type Subject =
  | { readonly _tag: "Node"; readonly nodeId: NodeId.NodeId }
  | { readonly _tag: "Network"; readonly cidr: string; readonly bits: number; readonly v4: boolean }

/** A ban. `until` is epoch milliseconds, `Infinity` for a ban without end. */
export interface Ban {
  readonly subject: Subject
  readonly since: number
  readonly until: number
  readonly reason: string
}

/** Text that is not a node ID, an IP address or an IP network. */
export class InvalidBanSubject extends Schema.TaggedError<InvalidBanSubject>()("InvalidBanSubject", {
  subject: Schema.String,
  message: Schema.String
}) {}

/** A stored ban could not be decoded. */
export class InvalidBan extends Schema.TaggedError<InvalidBan>()("InvalidBan", {
  message: Schema.String
}) {}

/** A node ID ban. */
export const node = (nodeId: NodeId.NodeId): Subject => ({ _tag: "Node", nodeId })

/**
 * Reads a subject: a node ID (40 hex digits, any case), an IP address (`1.2.3.4`, `2001:db8::1`),
 * or a network (`1.2.3.0/24`, `2001:db8::/32`); host bits of a network are cleared.
 */
export const parseSubject = (text: string): Result.Result<Subject, InvalidBanSubject> => {
  const s = text.trim()
  const bad = (why: string) => Result.fail(new InvalidBanSubject({ subject: text, message: `cannot ban ${JSON.stringify(text)}: ${why}` }))
  const id = NodeId.decodeResult(s)
  if (Result.isSuccess(id)) return Result.succeed(node(id.success))
  const slash = s.indexOf("/")
  const address = slash < 0 ? s : s.slice(0, slash)
  const ip = Ip.parse(address)
  if (Option.isNone(ip)) return bad("it is not a node ID (40 hex digits), an IP address or a network like 10.0.0.0/24")
  const v4 = Option.isSome(Ip.to4(ip.value))
  const max = v4 ? 32 : 128
  const bits = slash < 0 ? max : /^\d{1,3}$/.test(s.slice(slash + 1)) ? Number(s.slice(slash + 1)) : Number.NaN
  if (!Number.isInteger(bits) || bits < 8 || bits > max) return bad(`the prefix length must be from 8 to ${max}`)
  return Result.succeed({ _tag: "Network", cidr: Ip.group(address, bits, bits), bits, v4 })
}

/** The subject as text: the node ID, or the network in CIDR form. */
export const formatSubject = (subject: Subject): string => (subject._tag === "Node" ? subject.nodeId : subject.cidr)

/** A key for maps of bans: equal subjects, equal keys. */
export const key = (subject: Subject): string => (subject._tag === "Node" ? `node:${subject.nodeId}` : `net:${subject.cidr}`)

/** Whether the ban is in force at `now`. */
export const isActive = (ban: Ban, now: number): boolean => ban.until > now

/** The network keys (as {@link key} gives them) an IP address falls in, for the prefix lengths in use. */
export const networkKeys = (ip: string, prefixes: Iterable<readonly [bits: number, v4: boolean]>): Array<string> => {
  const parsed = Ip.parse(ip)
  if (Option.isNone(parsed)) return []
  const v4 = Option.isSome(Ip.to4(parsed.value))
  const out: Array<string> = []
  for (const [bits, isV4] of prefixes) if (isV4 === v4) out.push(`net:${Ip.group(ip, bits, bits)}`)
  return out
}

/** Protobuf bytes of a ban. */
export const encode = (ban: Ban): Uint8Array =>
  toBinary(BanSchema, create(BanSchema, {
    subject: formatSubject(ban.subject),
    since: timestampFromMs(ban.since),
    until: Number.isFinite(ban.until) ? timestampFromMs(ban.until) : undefined,
    reason: ban.reason
  }))

/** Decodes a stored ban. */
export const decode = (bytes: Uint8Array): Result.Result<Ban, InvalidBan> => {
  let b
  try {
    b = fromBinary(BanSchema, bytes)
  } catch (e) {
    return Result.fail(new InvalidBan({ message: `not a Ban message: ${(e as Error).message}` }))
  }
  const subject = parseSubject(b.subject)
  if (Result.isFailure(subject)) return Result.fail(new InvalidBan({ message: subject.failure.message }))
  return Result.succeed({
    subject: subject.success,
    since: b.since === undefined ? 0 : timestampMs(b.since),
    until: b.until === undefined ? Number.POSITIVE_INFINITY : timestampMs(b.until),
    reason: b.reason
  })
}

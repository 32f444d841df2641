/**
 * Small pure IP helpers: text to bytes and back, rendered the way Go's `net.IP.String()` does so
 * addresses print the same as in the original (docs/ARCHITECTURE.md#node-addresses-and-endpoints).
 *
 * @since 0.1.0
 */
import * as Option from "effect/Option"

/** Bytes in an IPv4 address. */
export const IPV4_LENGTH = 4

/** Bytes in an IPv6 address. */
export const IPV6_LENGTH = 16

const v4InV6Prefix = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff] as const

const decimalOctet = /^(?:0|[1-9][0-9]{0,2})$/
const hexGroup = /^[0-9a-fA-F]{1,4}$/

const parseV4 = (s: string): Uint8Array | undefined => {
  const parts = s.split(".")
  if (parts.length !== 4) return undefined
  const out = new Uint8Array(IPV4_LENGTH)
  for (let i = 0; i < 4; i++) {
    const part = parts[i] ?? ""
    // Leading zeros are rejected, as Go does since 1.17: "010" is ambiguous (octal or decimal).
    if (!decimalOctet.test(part)) return undefined
    const n = Number(part)
    if (n > 255) return undefined
    out[i] = n
  }
  return out
}

const parseV6 = (s: string): Uint8Array | undefined => {
  const halves = s.split("::")
  if (halves.length > 2) return undefined
  const groups = (text: string): Array<string> => (text === "" ? [] : text.split(":"))
  const head = groups(halves[0] ?? "")
  const tail = halves.length === 2 ? groups(halves[1] ?? "") : []
  const bytes: Array<number> = []
  const push = (parts: ReadonlyArray<string>, last: boolean): boolean => {
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i] ?? ""
      // A trailing dotted quad stands for the last 32 bits (e.g. ::ffff:1.2.3.4).
      if (last && i === parts.length - 1 && part.includes(".")) {
        const v4 = parseV4(part)
        if (v4 === undefined) return false
        bytes.push(...v4)
        continue
      }
      if (!hexGroup.test(part)) return false
      const n = parseInt(part, 16)
      bytes.push(n >> 8, n & 0xff)
    }
    return true
  }
  const headLast = halves.length === 1
  if (!push(head, headLast)) return undefined
  const headBytes = bytes.length
  if (!push(tail, true)) return undefined
  if (halves.length === 1) return bytes.length === IPV6_LENGTH ? new Uint8Array(bytes) : undefined
  // "::" must stand for at least one zero group.
  if (bytes.length > IPV6_LENGTH - 2) return undefined
  const out = new Uint8Array(IPV6_LENGTH)
  out.set(bytes.slice(0, headBytes), 0)
  out.set(bytes.slice(headBytes), IPV6_LENGTH - (bytes.length - headBytes))
  return out
}

/**
 * Parses IPv4 dotted-decimal text (4 bytes) or IPv6 text (16 bytes, an embedded dotted quad allowed
 * in the last 32 bits). Zones (`%eth0`), brackets, and IPv4 octets with leading zeros are rejected,
 * like Go's `net.ParseIP`.
 */
export const parse = (s: string): Option.Option<Uint8Array> => {
  const bytes = s.includes(":") ? parseV6(s) : parseV4(s)
  return bytes === undefined ? Option.none() : Option.some(bytes)
}

/** Whether `s` is IPv4 or IPv6 text that {@link parse} accepts. */
export const isValid = (s: string): boolean => Option.isSome(parse(s))

/** The 4-byte form of an IPv4 or IPv4-mapped IPv6 address (`::ffff:a.b.c.d`), if it is one. */
export const to4 = (ip: Uint8Array): Option.Option<Uint8Array> => {
  if (ip.length === IPV4_LENGTH) return Option.some(ip)
  if (ip.length === IPV6_LENGTH && v4InV6Prefix.every((b, i) => ip[i] === b)) return Option.some(ip.subarray(12))
  return Option.none()
}

/**
 * Canonical text of an address, as Go's `net.IP.String()`: IPv4 and IPv4-mapped IPv6 render as
 * dotted decimal; other IPv6 addresses are lowercase with the longest run of two or more zero
 * groups (the first, on a tie) compressed to `::` (RFC 5952). An empty array gives `"<nil>"` and any
 * other length gives `"?"` followed by hex, so the result is never mistaken for an address.
 */
export const format = (ip: Uint8Array): string => {
  if (ip.length === 0) return "<nil>"
  const v4 = to4(ip)
  if (Option.isSome(v4)) return Array.from(v4.value).join(".")
  if (ip.length !== IPV6_LENGTH) return "?" + Buffer.from(ip).toString("hex")
  const groups: Array<number> = []
  for (let i = 0; i < IPV6_LENGTH; i += 2) groups.push(((ip[i] ?? 0) << 8) | (ip[i + 1] ?? 0))
  let bestStart = -1
  let bestLength = 0
  for (let i = 0; i < groups.length; ) {
    if (groups[i] !== 0) {
      i++
      continue
    }
    let j = i
    while (j < groups.length && groups[j] === 0) j++
    if (j - i > bestLength) {
      bestStart = i
      bestLength = j - i
    }
    i = j
  }
  const hex = (g: ReadonlyArray<number>) => g.map((n) => n.toString(16)).join(":")
  if (bestLength < 2) return hex(groups)
  return hex(groups.slice(0, bestStart)) + "::" + hex(groups.slice(bestStart + bestLength))
}

/** Parses then formats: the canonical text of `s`, or none when `s` is not an IP address. */
export const canonical = (s: string): Option.Option<string> => Option.map(parse(s), format)

/** Whether the address is `0.0.0.0` or `::` (also `::ffff:0.0.0.0`). */
export const isUnspecified = (ip: Uint8Array): boolean => {
  const v4 = to4(ip)
  if (Option.isSome(v4)) return v4.value.every((b) => b === 0)
  return ip.length === IPV6_LENGTH && ip.every((b) => b === 0)
}

/** Whether the address is the IPv4 limited broadcast address `255.255.255.255`. */
export const isBroadcast = (ip: Uint8Array): boolean => {
  const v4 = to4(ip)
  return Option.isSome(v4) && v4.value.every((b) => b === 0xff)
}

/** Whether the address is multicast: `224.0.0.0/4` for IPv4, `ff00::/8` for IPv6. */
export const isMulticast = (ip: Uint8Array): boolean => {
  const v4 = to4(ip)
  if (Option.isSome(v4)) return ((v4.value[0] ?? 0) & 0xf0) === 0xe0
  return ip.length === IPV6_LENGTH && ip[0] === 0xff
}

/** Whether the address is loopback: `127.0.0.0/8` for IPv4, `::1` for IPv6. */
export const isLoopback = (ip: Uint8Array): boolean => {
  const v4 = to4(ip)
  if (Option.isSome(v4)) return v4.value[0] === 127
  return ip.length === IPV6_LENGTH && ip.every((b, i) => b === (i === 15 ? 1 : 0))
}

/** The network of `ip` keeping `bits` leading bits, as `a.b.c.0/24` or `2001:db8::/64` text. */
const network = (ip: Uint8Array, bits: number): string => {
  const out = new Uint8Array(ip.length)
  for (let i = 0; i < ip.length; i++) {
    const keep = Math.max(0, Math.min(8, bits - i * 8))
    out[i] = (ip[i] ?? 0) & ((0xff << (8 - keep)) & 0xff)
  }
  return `${format(out)}/${bits}`
}

/**
 * The group an address belongs to for per-network limits: its IPv4 /`v4Bits` or IPv6 /`v6Bits`
 * network (IPv4-mapped IPv6 counts as IPv4). One operator usually holds a whole /24 (IPv4) or
 * /64 (IPv6), so limits per group bound what one machine with many addresses can take.
 * Text that is not an IP address is its own group.
 */
export const group = (text: string, v4Bits = 24, v6Bits = 64): string => {
  const ip = parse(text)
  if (Option.isNone(ip)) return text
  const v4 = to4(ip.value)
  return Option.isSome(v4) ? network(v4.value, v4Bits) : network(ip.value, v6Bits)
}

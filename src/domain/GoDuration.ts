/**
 * Go-style durations as CometBFT writes them in `config.toml` ("100ms", "20s", "1m30s", "0s").
 *
 * @since 0.1.0
 */

const units: Record<string, number> = { ns: 1e-6, us: 1e-3, "µs": 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

/** Milliseconds of a Go duration string, or `undefined` when it is not one. */
export const parseGoDuration = (text: string): number | undefined => {
  const s = text.trim()
  if (s === "0") return 0
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/y
  let total = 0
  let matched = 0
  while (re.lastIndex < s.length) {
    const start = re.lastIndex
    const m = re.exec(s)
    if (m === null || m.index !== start) return undefined
    total += Number(m[1]) * units[m[2]!]!
    matched++
  }
  return matched === 0 ? undefined : total
}

/** A Go duration string for milliseconds ("100ms", "20s", "1m30s"). */
export const formatGoDuration = (ms: number): string => {
  if (ms === 0) return "0s"
  if (ms < 1000 || ms % 1000 !== 0) return `${ms}ms`
  let s = ms / 1000
  const h = Math.floor(s / 3600)
  s -= h * 3600
  const m = Math.floor(s / 60)
  s -= m * 60
  return `${h > 0 ? `${h}h` : ""}${m > 0 ? `${m}m` : ""}${s > 0 || (h === 0 && m === 0) ? `${s}s` : ""}`
}

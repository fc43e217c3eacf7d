/** The cache benchmark's workload: the participants' tokens and a Zipf sequence of look-ups. */

/** Token i (0-based) as the seeded participants hold it: P-(i+1)'s, eight hex digits. */
export const tokenOf = (i: number): string => (i + 1).toString(16).padStart(8, '0')

/** The participants P-1 .. P-$1 with the tokens of tokenOf, for the loader to find. */
export const PARTICIPANTS_SQL = `INSERT INTO participants (id, token, status, name, email)
       SELECT 'P-' || i, lpad(to_hex(i), 8, '0'), 'active', 'Participant ' || i, 'p' || i || '@example.org'
         FROM generate_series(1, $1::int) AS i`

/** A deterministic Zipf(s = 1) sequence of token indexes. */
export function zipfSequence(n: number, count: number, seed: number): Uint32Array {
  const cdf = new Float64Array(n)
  let sum = 0
  for (let i = 0; i < n; i++) {
    sum += 1 / (i + 1)
    cdf[i] = sum
  }
  let a = seed >>> 0
  const rnd = () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const out = new Uint32Array(count)
  for (let k = 0; k < count; k++) {
    const u = rnd() * sum
    let lo = 0
    let hi = n - 1
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if ((cdf[mid] as number) >= u) hi = mid
      else lo = mid + 1
    }
    // spread the popular ranks over the token space
    out[k] = (Math.imul(lo, 2654435761) >>> 0) % n
  }
  return out
}

/**
 * A small, fast, seedable PRNG (mulberry32) so a simulated crowd is the same crowd for the same seed.
 * Not for secrets.
 */
export class Prng {
  private state: number
  private spare: number | null = null

  constructor(seed: number) {
    this.state = seed >>> 0 || 0x9e3779b9
  }

  /** uniform in [0, 1) */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) | 0
    let t = this.state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }

  /** uniform in [lo, hi) */
  range(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next()
  }

  /** integer in [lo, hi] */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1))
  }

  /** standard normal (Box-Muller, the spare value kept for the next call) */
  gauss(): number {
    if (this.spare !== null) {
      const kept = this.spare
      this.spare = null
      return kept
    }
    let u = 0
    while (u === 0) u = this.next()
    const v = this.next()
    const r = Math.sqrt(-2 * Math.log(u))
    this.spare = r * Math.sin(2 * Math.PI * v)
    return r * Math.cos(2 * Math.PI * v)
  }

  /** `n` random bytes */
  bytes(count: number): Buffer {
    const bytes = Buffer.allocUnsafe(count)
    for (let i = 0; i < count; i++) bytes[i] = Math.floor(this.next() * 256)
    return bytes
  }

  /** a random BLE address; `random` sets the two top bits of a static random address */
  address(random = true): string {
    const bytes = this.bytes(6)
    if (random) bytes[0] = ((bytes[0] ?? 0) | 0xc0) & 0xff
    return Array.from(bytes, (x) => x.toString(16).padStart(2, '0')).join(':')
  }

  /** one element of a non-empty list */
  pick<T>(list: readonly T[]): T {
    const picked = list[Math.floor(this.next() * list.length)]
    if (picked === undefined) throw new RangeError('pick from an empty list')
    return picked
  }
}

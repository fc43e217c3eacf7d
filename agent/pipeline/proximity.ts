import type { ProximityConfig } from '../config/schema.js'
import type { Sighting } from './types.js'

interface Track {
  /** exponentially smoothed RSSI, dBm */
  ema: number
  samples: number
  present: boolean
  lastTs: number
}

/**
 * Proximity: is a badge at the gate? Smoothed RSSI (EMA) must reach `enterDbm` after `minSamples`
 * sightings; it leaves only when the smoothed RSSI falls `hysteresisDb` below that, or when it is not
 * heard for `absenceMs`. So one loud reading of a passer-by does not check them in, and noise around
 * the threshold does not make a badge flap in and out.
 */
export class Proximity {
  private readonly tracks = new Map<string, Track>()
  private readonly exitDbm: number
  private lastSweep = 0
  /** badges that became present */
  entered = 0
  /** tracks dropped because the table was full (a flood of random tokens) */
  evicted = 0

  constructor(private readonly cfg: ProximityConfig) {
    this.exitDbm = cfg.enterDbm - cfg.hysteresisDb
  }

  /** Feed one sighting. Returns true when this sighting makes the badge present (an arrival). */
  observe(s: Sighting): boolean {
    if (s.ts - this.lastSweep > this.cfg.absenceMs) this.sweep(s.ts)
    let t = this.tracks.get(s.token)
    if (t === undefined || s.ts - t.lastTs > this.cfg.absenceMs) {
      if (t === undefined && this.tracks.size >= this.cfg.maxTracked) this.evictOldest()
      t = { ema: s.rssi, samples: 1, present: false, lastTs: s.ts }
      this.tracks.set(s.token, t)
    } else {
      t.ema += this.cfg.alpha * (s.rssi - t.ema)
      t.samples++
      t.lastTs = s.ts
    }
    if (t.present) {
      if (t.ema < this.exitDbm) t.present = false
      return false
    }
    if (t.samples >= this.cfg.minSamples && t.ema >= this.cfg.enterDbm) {
      t.present = true
      this.entered++
      return true
    }
    return false
  }

  /** Whether a token is at the gate now. */
  isPresent(token: string): boolean {
    return this.tracks.get(token)?.present === true
  }

  /** Smoothed RSSI of a token, dBm, or undefined. */
  smoothed(token: string): number | undefined {
    return this.tracks.get(token)?.ema
  }

  /** Badges currently tracked. */
  size(): number {
    return this.tracks.size
  }

  /** Forget badges not heard for absenceMs (called as time passes). */
  sweep(now: number): void {
    this.lastSweep = now
    for (const [token, t] of this.tracks) {
      if (now - t.lastTs > this.cfg.absenceMs) this.tracks.delete(token)
    }
  }

  private evictOldest(): void {
    // Map iteration order is insertion order: the first entries are the oldest tracks. Badges at the
    // gate go last: a flood of made-up tokens must not push out the people standing there (they would
    // arrive again and be denied as already checked in).
    const drop = Math.max(1, Math.floor(this.cfg.maxTracked / 10))
    let n = 0
    for (const [token, t] of this.tracks) {
      if (n >= drop) break
      if (t.present) continue
      this.tracks.delete(token)
      n++
    }
    for (const token of this.tracks.keys()) {
      if (n >= drop) break
      this.tracks.delete(token)
      n++
    }
    this.evicted += n
  }
}

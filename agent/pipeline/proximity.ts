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
  observe(sighting: Sighting): boolean {
    if (sighting.ts - this.lastSweep > this.cfg.absenceMs) this.sweep(sighting.ts)
    let track = this.tracks.get(sighting.token)
    if (track === undefined || sighting.ts - track.lastTs > this.cfg.absenceMs) {
      if (track === undefined && this.tracks.size >= this.cfg.maxTracked) this.evictOldest()
      track = { ema: sighting.rssi, samples: 1, present: false, lastTs: sighting.ts }
      this.tracks.set(sighting.token, track)
    } else {
      track.ema += this.cfg.alpha * (sighting.rssi - track.ema)
      track.samples++
      track.lastTs = sighting.ts
    }
    if (track.present) {
      if (track.ema < this.exitDbm) track.present = false
      return false
    }
    if (track.samples >= this.cfg.minSamples && track.ema >= this.cfg.enterDbm) {
      track.present = true
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
    for (const [token, track] of this.tracks) {
      if (now - track.lastTs > this.cfg.absenceMs) this.tracks.delete(token)
    }
  }

  private evictOldest(): void {
    // Map iteration order is insertion order: the first entries are the oldest tracks. Badges at the
    // gate go last: a flood of made-up tokens must not push out the people standing there (they would
    // arrive again and be denied as already checked in).
    const drop = Math.max(1, Math.floor(this.cfg.maxTracked / 10))
    let dropped = 0
    for (const [token, track] of this.tracks) {
      if (dropped >= drop) break
      if (track.present) continue
      this.tracks.delete(token)
      dropped++
    }
    for (const token of this.tracks.keys()) {
      if (dropped >= drop) break
      this.tracks.delete(token)
      dropped++
    }
    this.evicted += dropped
  }
}

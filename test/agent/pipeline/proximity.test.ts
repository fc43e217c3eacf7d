import { describe, expect, it } from 'vitest'
import { agentConfigSchema } from '../../../agent/config/schema.js'
import { Proximity } from '../../../agent/pipeline/proximity.js'
import type { Sighting } from '../../../agent/pipeline/types.js'

const cfg = agentConfigSchema.parse({}).proximity // enter -65 dBm, hysteresis 8 dB, alpha 0.3, 3 samples, 5 s absence

/** A deterministic noise source (tests must not depend on Math.random). */
function noise(seed: number) {
  let s = seed >>> 0
  return (sigma: number) => {
    s = (s * 1664525 + 1013904223) >>> 0
    const u = s / 2 ** 32
    s = (s * 1664525 + 1013904223) >>> 0
    const v = s / 2 ** 32
    return sigma * Math.sqrt(-2 * Math.log(u + 1e-12)) * Math.cos(2 * Math.PI * v)
  }
}

const at = (token: string, rssi: number, ts: number): Sighting => ({
  token,
  rssi,
  ts,
  address: 'aa:bb:cc:dd:ee:ff',
  decoder: 'ibeacon',
})

/** RSSI of someone at distance d metres (log-distance model, -59 dBm at 1 m). */
const rssiAt = (d: number) => -59 - 22 * Math.log10(Math.max(d, 0.3))

describe('proximity', () => {
  it('checks in someone who walks up to the gate exactly once', () => {
    const p = new Proximity(cfg)
    const n = noise(1)
    let arrivals = 0
    // 12 s walk from 12 m to 0.5 m, 3 s at the gate, 8 s walking away; advert every 200 ms
    for (let t = 0; t < 23_000; t += 200) {
      const d = t < 12_000 ? 12 - (11.5 * t) / 12_000 : t < 15_000 ? 0.5 : 0.5 + (t - 15_000) / 700
      if (p.observe(at('a1', rssiAt(d) + n(4), t))) arrivals++
    }
    expect(arrivals).toBe(1)
  })

  it('does not check in a passer-by at the edge of range, even with noisy loud readings', () => {
    const n = noise(7)
    for (let trial = 0; trial < 50; trial++) {
      const p = new Proximity(cfg)
      let arrivals = 0
      // walks past at 4 m closest, 6 s in range; noise sigma 4 dB gives single readings above -65
      let loudest = -200
      for (let t = 0; t < 6_000; t += 100) {
        const x = (t - 3_000) / 600
        const r = rssiAt(Math.sqrt(16 + x * x)) + n(4)
        loudest = Math.max(loudest, r)
        if (p.observe(at(`p${trial}`, r, t))) arrivals++
      }
      expect(loudest).toBeGreaterThan(-75) // noise does make it sound close at times
      expect(arrivals).toBe(0)
    }
  })

  it('does not flap when someone stands right at the threshold', () => {
    const p = new Proximity(cfg)
    const n = noise(3)
    let arrivals = 0
    for (let t = 0; t < 60_000; t += 100) if (p.observe(at('s1', -64 + n(3), t))) arrivals++
    expect(arrivals).toBe(1)
  })

  it('a badge that leaves and comes back arrives again', () => {
    const p = new Proximity(cfg)
    let arrivals = 0
    for (let t = 0; t < 2_000; t += 100) if (p.observe(at('b1', -50, t))) arrivals++
    for (let t = 2_000; t < 6_000; t += 100) if (p.observe(at('b1', -90, t))) arrivals++ // walks away: smoothed falls below -73
    for (let t = 6_000; t < 8_000; t += 100) if (p.observe(at('b1', -50, t))) arrivals++
    expect(arrivals).toBe(2)
    // not heard at all for longer than absenceMs: also a new arrival
    for (let t = 20_000; t < 21_000; t += 100) if (p.observe(at('b1', -50, t))) arrivals++
    expect(arrivals).toBe(3)
  })

  it('keeps memory bounded under a flood of random tokens', () => {
    const p = new Proximity({ ...cfg, maxTracked: 1000 })
    for (let i = 0; i < 50_000; i++) p.observe(at(i.toString(16).padStart(8, '0'), -80, i))
    expect(p.size()).toBeLessThanOrEqual(1000)
    expect(p.evicted).toBeGreaterThan(0)
  })

  it('a flood of made-up tokens does not push out the badges standing at the gate', () => {
    const p = new Proximity({ ...cfg, maxTracked: 1000, absenceMs: 60_000 })
    for (let t = 0; t < 3; t++) p.observe(at('here-1', -50, t))
    expect(p.isPresent('here-1')).toBe(true)
    let again = 0
    for (let i = 0; i < 20_000; i++) {
      p.observe(at(`fake${i}`, -80, 10 + i))
      if (i % 100 === 0 && p.observe(at('here-1', -50, 10 + i))) again++ // still heard, still there
    }
    expect(p.evicted).toBeGreaterThan(0)
    expect(p.isPresent('here-1')).toBe(true)
    expect(again).toBe(0) // never a second arrival
  })
})

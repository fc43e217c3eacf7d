import type { DecodersConfig, SimConfig } from '../../config/schema.js'
import type { Advert } from '../source.js'
import { BADGE_TX_AT_1M, type Payload } from './badges.js'
import { type CrowdPlan, planCrowd } from './demo-roster.js'
import { Prng } from './prng.js'

/** Log-distance path loss: RSSI = P(1 m) - 10 n log10(d) + N(0, sigma). Indoors, n is 2..3. */
export const PATH_LOSS_EXPONENT = 2.2
export const RSSI_SIGMA_DB = 4
/** Below this the radio hears nothing. */
export const SENSITIVITY_DBM = -100

/** Where a badge holder starts walking towards the gate, and where passers-by start, metres. */
const APPROACH_FROM_M = 8
const PASS_FROM_M = 10

/** RSSI a receiver sees from a transmitter at `d` metres with measured power `p1m` at 1 m, before noise. */
export function meanRssi(d: number, p1m = BADGE_TX_AT_1M): number {
  return p1m - 10 * PATH_LOSS_EXPONENT * Math.log10(Math.max(d, 0.1))
}

enum Role {
  Walker = 0,
  Foreign = 1,
}

/**
 * A synthetic crowd in virtual time (ms from 0). Participants walk up to the gate, wait a moment and
 * walk away; passers-by stay at the edge of range; foreign devices (phones, sensors) sit in the hall.
 * Each device advertises at its own interval with log-distance path loss and Gaussian noise.
 *
 * The next advert of every device is kept in a binary heap, so producing an advert is O(log n) with no
 * allocation: payload Buffers are built once per device and shared by all of its adverts (receivers
 * must not modify them). Deterministic for a seed.
 */
export class Crowd {
  readonly plan: CrowdPlan
  /** length of one pass of the whole crowd, virtual ms; with `loop` the crowd comes again after it */
  readonly cycleMs: number
  private readonly rng: Prng
  private readonly n: number
  private readonly role: Uint8Array
  private readonly next: Float64Array
  private readonly interval: Float64Array
  private readonly t0: Float64Array
  private readonly approach: Float64Array
  private readonly dwell: Float64Array
  private readonly leave: Float64Array
  private readonly dFar: Float64Array
  private readonly dNear: Float64Array
  private readonly base: Float64Array
  private readonly payloads: Payload[]
  private readonly addresses: string[]
  private readonly heap: Int32Array
  private size = 0
  private readonly loop: boolean
  /** adverts emitted, and adverts too weak to be heard (not emitted) */
  emitted = 0
  unheard = 0

  constructor(sim: SimConfig, decoders: DecodersConfig, whole: CrowdPlan = planCrowd(sim, decoders)) {
    // one door of several: its share of the venue's crowd
    const { index, of } = sim.door
    const plan =
      of === 1
        ? whole
        : {
            badges: whole.badges.filter((_, i) => i % of === index),
            foreign: whole.foreign.filter((_, i) => i % of === index),
          }
    this.plan = plan
    this.loop = sim.loop
    this.rng = new Prng((sim.seed ^ 0x5bd1e995) >>> 0)
    const rng = this.rng
    const walkers = plan.badges.length
    const n = walkers + plan.foreign.length
    this.n = n
    this.role = new Uint8Array(n)
    this.next = new Float64Array(n)
    this.interval = new Float64Array(n)
    this.t0 = new Float64Array(n)
    this.approach = new Float64Array(n)
    this.dwell = new Float64Array(n)
    this.leave = new Float64Array(n)
    this.dFar = new Float64Array(n)
    this.dNear = new Float64Array(n)
    this.base = new Float64Array(n)
    this.payloads = new Array<Payload>(n)
    this.addresses = new Array<string>(n)
    this.heap = new Int32Array(n)

    let longestWalk = 0
    plan.badges.forEach((b, i) => {
      this.role[i] = Role.Walker
      this.payloads[i] = b.payload
      this.addresses[i] = b.address
      this.interval[i] = rng.range(100, 300)
      this.t0[i] = sim.arrivalSpreadMs > 0 ? rng.range(0, sim.arrivalSpreadMs) : 0
      const speed = rng.range(0.8, 1.4) / 1000 // metres per ms
      if (b.passerBy) {
        this.dFar[i] = PASS_FROM_M
        this.dNear[i] = rng.range(4.5, 7)
        this.dwell[i] = 0
      } else {
        this.dFar[i] = APPROACH_FROM_M
        this.dNear[i] = rng.range(0.3, 1.2)
        this.dwell[i] = rng.range(1_000, 3_000)
      }
      const dist = (this.dFar[i] as number) - (this.dNear[i] as number)
      this.approach[i] = dist / speed
      this.leave[i] = dist / speed
      longestWalk = Math.max(
        longestWalk,
        (this.approach[i] as number) + (this.dwell[i] as number) + (this.leave[i] as number),
      )
    })
    this.cycleMs = Math.ceil(sim.arrivalSpreadMs + longestWalk + 1_000)
    plan.foreign.forEach((f, j) => {
      const i = walkers + j
      this.role[i] = Role.Foreign
      this.payloads[i] = f.payload
      this.addresses[i] = f.address
      this.interval[i] = f.kind === 'ruuvi' ? 1_000 : rng.range(150, 1_000)
      this.dNear[i] = rng.range(1.5, 12)
      this.t0[i] = 0
    })
    for (let i = 0; i < n; i++) {
      this.next[i] = (this.t0[i] as number) + rng.range(0, this.interval[i] as number)
      this.push(i)
    }
  }

  /** virtual time of the next advert, Infinity when the crowd has gone (no loop) */
  get nextAt(): number {
    return this.size === 0 ? Number.POSITIVE_INFINITY : (this.next[this.heap[0] as number] as number)
  }

  get done(): boolean {
    return this.size === 0
  }

  /** how many devices there are */
  get devices(): number {
    return this.n
  }

  /**
   * Produce every advert due at or before `untilVt` (at most `max`), in time order, through
   * `emit(device, rssi, vt)`. Returns how many were emitted.
   */
  advance(
    untilVt: number,
    emit: (device: number, rssi: number, vt: number) => void,
    max = Number.POSITIVE_INFINITY,
  ): number {
    let count = 0
    while (this.size > 0 && count < max) {
      const i = this.heap[0] as number
      const t = this.next[i] as number
      if (t > untilVt) break
      const d = this.distance(i, t)
      if (d < 0) {
        this.reschedule(i, t, true)
        continue
      }
      const rssi = Math.round(meanRssi(d) + RSSI_SIGMA_DB * this.rng.gauss())
      this.reschedule(i, t, false)
      if (rssi < SENSITIVITY_DBM) {
        this.unheard++
        continue
      }
      this.emitted++
      count++
      emit(i, Math.min(rssi, -20), t)
    }
    return count
  }

  /** An Advert for device `i` stamped with `ts` (the receiver's monotonic time). Payload Buffers are shared. */
  advert(i: number, rssi: number, ts: number): Advert {
    const p = this.payloads[i] as Payload
    return {
      address: this.addresses[i] as string,
      rssi,
      manufacturerData: p.manufacturerData,
      serviceData: p.serviceData,
      localName: p.localName,
      txPower: p.txPower,
      ts,
    }
  }

  /** Distance from the gate at virtual time t, or -1 when the device has left (this cycle). */
  private distance(i: number, t: number): number {
    if (this.role[i] === Role.Foreign) return this.dNear[i] as number
    const rel = t - (this.base[i] as number) - (this.t0[i] as number)
    const a = this.approach[i] as number
    const w = this.dwell[i] as number
    const l = this.leave[i] as number
    const far = this.dFar[i] as number
    const near = this.dNear[i] as number
    if (rel < 0) return far
    if (rel < a) return far - ((far - near) * rel) / a
    if (rel < a + w) return near
    if (rel < a + w + l) return near + ((far - near) * (rel - a - w)) / l
    return -1
  }

  private reschedule(i: number, t: number, left: boolean): void {
    this.pop()
    if (left) {
      if (!this.loop) return
      this.base[i] = (this.base[i] as number) + this.cycleMs
      this.next[i] = (this.base[i] as number) + (this.t0[i] as number)
      this.push(i)
      return
    }
    if (!this.loop && this.role[i] === Role.Foreign && t >= this.cycleMs) return
    const iv = this.interval[i] as number
    // BLE adds a random 0..10 ms advDelay to every advertising event
    this.next[i] = t + iv + this.rng.next() * 10
    this.push(i)
  }

  private less(a: number, b: number): boolean {
    return (this.next[a] as number) < (this.next[b] as number)
  }

  private push(i: number): void {
    const h = this.heap
    let k = this.size++
    h[k] = i
    while (k > 0) {
      const p = (k - 1) >> 1
      const hp = h[p] as number
      if (!this.less(i, hp)) break
      h[k] = hp
      k = p
    }
    h[k] = i
  }

  private pop(): void {
    const h = this.heap
    const last = h[--this.size] as number
    if (this.size === 0) return
    let k = 0
    const n = this.size
    for (;;) {
      const l = 2 * k + 1
      if (l >= n) break
      const r = l + 1
      let c = l
      if (r < n && this.less(h[r] as number, h[l] as number)) c = r
      if (!this.less(h[c] as number, last)) break
      h[k] = h[c] as number
      k = c
    }
    h[k] = last
  }
}

import type { DecodersConfig, SimConfig } from '../../config/schema.js'
import { EDDYSTONE_SERVICE } from '../../decode/eddystone.js'
import type { Advert } from '../source.js'
import {
  BADGE_TX_AT_1M,
  type BadgeKind,
  badgeFrameIn,
  badgeFrameLength,
  badgeLocalName,
  type Payload,
  writeBadgeFrame,
} from './badges.js'
import { type CrowdPlan, planCrowd } from './demo-roster.js'
import { DeviceHeap } from './device-heap.js'
import { Prng } from './prng.js'

/** Log-distance path loss: RSSI = P(1 m) - 10 n log10(d) + N(0, sigma). Indoors, n is 2..3. */
export const PATH_LOSS_EXPONENT = 2.2
/** sigma of the path loss's Gaussian noise, dB */
export const RSSI_SIGMA_DB = 4
/** Below this the radio hears nothing. */
export const SENSITIVITY_DBM = -100

/** Where a badge holder starts walking towards the gate, and where passers-by start, metres. */
const APPROACH_FROM_M = 8
const PASS_FROM_M = 10
/** walking speeds, metres per ms, and how long a badge holder waits at the gate, ms */
const SPEED_MIN = 0.8 / 1000
const SPEED_MAX = 1.4 / 1000
const DWELL_MIN_MS = 1_000
const DWELL_MAX_MS = 3_000
/** the nearest a badge holder comes to the gate, metres */
const NEAR_MIN_M = 0.3
/** the longest walk up to a gate and away, ms: one crowd cycle at every door of a venue */
const LONGEST_WALK_MS = Math.ceil((2 * (APPROACH_FROM_M - NEAR_MIN_M)) / SPEED_MIN + DWELL_MAX_MS)

/**
 * When badge `j` of the whole crowd comes to its entrance, as a fraction of the arrival spread:
 * a hash of the seed and the badge, so that every door of a venue (each with its share of the
 * crowd, or a door that follows the entrances) agrees on it.
 */
export function arrivalFraction(seed: number, j: number): number {
  let h = (Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(j + 1, 0xc2b2ae35)) >>> 0
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d) >>> 0
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b) >>> 0
  return ((h ^ (h >>> 16)) >>> 0) / 4_294_967_296
}

/** RSSI a receiver sees from a transmitter `metres` away with measured power `p1m` at 1 m, before noise. */
export function meanRssi(metres: number, p1m = BADGE_TX_AT_1M): number {
  return p1m - 10 * PATH_LOSS_EXPONENT * Math.log10(Math.max(metres, 0.1))
}

enum Role {
  Walker = 0,
  Foreign = 1,
  /** walks past at the edge of range (from PASS_FROM_M), not up to the gate */
  PasserBy = 2,
}

const BADGE_KINDS: readonly BadgeKind[] = ['ibeacon', 'eddystone', 'manufacturer']

/** One door's share of the venue's crowd (every badge, for a door that follows the entrances). */
function shareOf(whole: CrowdPlan, sim: SimConfig): CrowdPlan {
  const { index, of } = sim.door
  const share = <T>(xs: readonly T[]) => (of === 1 ? [...xs] : xs.filter((_, i) => i % of === index))
  return {
    badges: sim.follows !== undefined ? [...whole.badges] : share(whole.badges),
    foreign: share(whole.foreign),
  }
}

/** "c0:11:22:33:44:55" as its six bytes */
function addressBytes(address: string, into: Uint8Array, at: number): void {
  const parts = address.split(':')
  for (let k = 0; k < 6; k++) into[at + k] = Number.parseInt(parts[k] ?? '0', 16)
}

const HEX_BYTE = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, '0'))

/**
 * A synthetic crowd in virtual time (ms from 0). Participants walk up to the gate, wait a moment and
 * walk away; passers-by stay at the edge of range; foreign devices (phones, sensors) sit in the hall.
 * Each device advertises at its own interval with log-distance path loss and Gaussian noise.
 *
 * The next advert of every device is kept in a binary heap, so producing an advert is O(log n). A
 * badge costs a few dozen bytes: its frame lives in one buffer shared by the whole crowd (an advert
 * carries a view of it, which receivers must not modify) and its address as six bytes, so the
 * benchmark's crowd of 100,000 does not weigh on the memory it measures. Deterministic for a seed.
 */
export class Crowd {
  /** length of one pass of the whole crowd, virtual ms; with `loop` the crowd comes again after it */
  readonly cycleMs: number
  private readonly rng: Prng
  /** devices in this door's share of the crowd: badges, then foreign devices */
  private readonly deviceCount: number
  private readonly role: Uint8Array
  private readonly next: Float64Array
  private readonly interval: Float32Array
  /** when each device first comes, virtual ms into a cycle */
  private readonly arrival: Float32Array
  private readonly approach: Float32Array
  private readonly dwell: Float32Array
  private readonly dNear: Float32Array
  private readonly base: Float64Array
  /** badges in this share (devices 0..badges-1; foreign devices after them) */
  private readonly badges: number
  /** every badge's frame, back to back; where each starts, its length, and its kind */
  private readonly frames: Buffer
  private readonly frameAt: Uint32Array
  private readonly frameLength: Uint8Array
  /** index into BADGE_KINDS */
  private readonly kindOf: Uint8Array
  private readonly badgeAddresses: Uint8Array
  /** the few foreign devices keep their payloads and addresses as they are */
  private readonly foreignPayloads: Payload[]
  private readonly foreignAddresses: string[]
  private readonly sim: SimConfig
  private readonly decoders: DecodersConfig
  private planned: CrowdPlan | undefined
  /** devices by their next advert */
  private readonly heap: DeviceHeap
  private readonly loop: boolean
  /** a door that follows the entrances: how long after them the crowd comes, ms */
  private readonly laterBy: number
  /** adverts emitted, and adverts too weak to be heard (not emitted) */
  emitted = 0
  unheard = 0

  constructor(sim: SimConfig, decoders: DecodersConfig) {
    // one door of several: its share of the venue's crowd; `globalIndex` is each badge's place in
    // the whole crowd
    const { index, of } = sim.door
    const follows = sim.follows !== undefined
    const plan = shareOf(planCrowd(sim, decoders), sim)
    const globalIndex = (i: number) => (follows || of === 1 ? i : i * of + index)
    const laterBy = sim.follows?.afterMs ?? 0
    this.sim = sim
    this.decoders = decoders
    this.laterBy = laterBy
    this.loop = sim.loop
    this.rng = new Prng((sim.seed ^ 0x5bd1e995) >>> 0)
    const rng = this.rng
    const walkers = plan.badges.length
    const devices = walkers + plan.foreign.length
    this.deviceCount = devices
    this.badges = walkers
    this.role = new Uint8Array(devices)
    this.next = new Float64Array(devices)
    this.interval = new Float32Array(devices)
    this.arrival = new Float32Array(devices)
    this.approach = new Float32Array(devices)
    this.dwell = new Float32Array(devices)
    this.dNear = new Float32Array(devices)
    this.base = new Float64Array(devices)
    this.heap = new DeviceHeap(devices, this.next)
    this.frameAt = new Uint32Array(walkers)
    this.frameLength = new Uint8Array(walkers)
    this.kindOf = Uint8Array.from(plan.badges, (b) => BADGE_KINDS.indexOf(b.kind))
    let bytes = 0
    plan.badges.forEach((b, i) => {
      this.frameAt[i] = bytes
      this.frameLength[i] = badgeFrameLength(b.kind, decoders)
      bytes += this.frameLength[i] as number
    })
    this.frames = Buffer.alloc(bytes)
    this.badgeAddresses = new Uint8Array(walkers * 6)
    this.foreignPayloads = plan.foreign.map((d) => d.payload)
    this.foreignAddresses = plan.foreign.map((d) => d.address)

    plan.badges.forEach((b, i) => {
      this.role[i] = b.passerBy ? Role.PasserBy : Role.Walker
      writeBadgeFrame(b.kind, b.token, decoders, this.frames, this.frameAt[i] as number)
      addressBytes(b.address, this.badgeAddresses, i * 6)
      this.interval[i] = rng.range(100, 300)
      this.arrival[i] = arrivalFraction(sim.seed, globalIndex(i)) * sim.arrivalSpreadMs + laterBy
      const speed = rng.range(SPEED_MIN, SPEED_MAX)
      if (b.passerBy) {
        this.dNear[i] = rng.range(4.5, 7)
        this.dwell[i] = 0
      } else {
        this.dNear[i] = rng.range(NEAR_MIN_M, 1.2)
        this.dwell[i] = rng.range(DWELL_MIN_MS, DWELL_MAX_MS)
      }
      const dist = (b.passerBy ? PASS_FROM_M : APPROACH_FROM_M) - (this.dNear[i] as number)
      this.approach[i] = dist / speed
    })
    // the same at every door of a venue, so that looping crowds stay in step across the doors
    this.cycleMs = Math.ceil(sim.arrivalSpreadMs + LONGEST_WALK_MS + 1_000)
    plan.foreign.forEach((device, j) => {
      const i = walkers + j
      this.role[i] = Role.Foreign
      this.interval[i] = device.kind === 'ruuvi' ? 1_000 : rng.range(150, 1_000)
      this.dNear[i] = rng.range(1.5, 12)
      this.arrival[i] = 0
    })
    for (let i = 0; i < devices; i++) {
      this.next[i] = (this.arrival[i] as number) + rng.range(0, this.interval[i] as number)
      this.heap.push(i)
    }
  }

  /** virtual time of the next advert, Infinity when the crowd has gone (no loop) */
  get nextAt(): number {
    const first = this.heap.peek()
    return first === undefined ? Number.POSITIVE_INFINITY : (this.next[first] as number)
  }

  get done(): boolean {
    return this.heap.size === 0
  }

  /** how many of them are badges (the rest are foreign devices) */
  get badgeCount(): number {
    return this.badges
  }

  /** how many devices there are */
  get devices(): number {
    return this.deviceCount
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
    while (this.heap.size > 0 && count < max) {
      const device = this.heap.peek() as number
      const at = this.next[device] as number
      if (at > untilVt) break
      const metres = this.distance(device, at)
      if (metres < 0) {
        this.reschedule(device, at, true)
        continue
      }
      const rssi = Math.round(meanRssi(metres) + RSSI_SIGMA_DB * this.rng.gauss())
      this.reschedule(device, at, false)
      if (rssi < SENSITIVITY_DBM) {
        this.unheard++
        continue
      }
      this.emitted++
      count++
      emit(device, Math.min(rssi, -20), at)
    }
    return count
  }

  /**
   * Everyone this door's crowd holds, as planned: tokens, participants, kinds. Planned again when
   * first asked (the crowd itself keeps only what its adverts need).
   */
  get plan(): CrowdPlan {
    this.planned ??= shareOf(planCrowd(this.sim, this.decoders), this.sim)
    return this.planned
  }

  /** An Advert for device `i` stamped with `ts` (the receiver's monotonic time); its payload is a view receivers must not modify. */
  advert(i: number, rssi: number, ts: number): Advert {
    if (i >= this.badges) {
      const payload = this.foreignPayloads[i - this.badges] as Payload
      return {
        address: this.foreignAddresses[i - this.badges] as string,
        rssi,
        manufacturerData: payload.manufacturerData,
        serviceData: payload.serviceData,
        localName: payload.localName,
        txPower: payload.txPower,
        ts,
      }
    }
    const at = this.frameAt[i] as number
    const frame = this.frames.subarray(at, at + (this.frameLength[i] as number))
    const kind = BADGE_KINDS[this.kindOf[i] as number] as BadgeKind
    const inService = badgeFrameIn(kind) === 'eddystone'
    return {
      address: this.address(i),
      rssi,
      manufacturerData: inService ? undefined : frame,
      serviceData: inService ? [{ uuid: EDDYSTONE_SERVICE, data: frame }] : undefined,
      localName: badgeLocalName(kind),
      txPower: undefined,
      ts,
    }
  }

  private address(i: number): string {
    const a = this.badgeAddresses
    const o = i * 6
    return `${HEX_BYTE[a[o] as number]}:${HEX_BYTE[a[o + 1] as number]}:${HEX_BYTE[a[o + 2] as number]}:${HEX_BYTE[a[o + 3] as number]}:${HEX_BYTE[a[o + 4] as number]}:${HEX_BYTE[a[o + 5] as number]}`
  }

  /** Distance from the gate at virtual time t, or -1 when the device has left (this cycle). */
  private distance(i: number, at: number): number {
    if (this.role[i] === Role.Foreign) return this.dNear[i] as number
    const rel = at - (this.base[i] as number) - (this.arrival[i] as number)
    const approach = this.approach[i] as number
    const dwell = this.dwell[i] as number
    // walking away takes as long as walking up
    const leave = approach
    const far = this.role[i] === Role.PasserBy ? PASS_FROM_M : APPROACH_FROM_M
    const near = this.dNear[i] as number
    if (rel < 0) return far
    if (rel < approach) return far - ((far - near) * rel) / approach
    if (rel < approach + dwell) return near
    if (rel < approach + dwell + leave) return near + ((far - near) * (rel - approach - dwell)) / leave
    return -1
  }

  private reschedule(i: number, at: number, left: boolean): void {
    this.heap.pop()
    if (left) {
      if (!this.loop) return
      this.base[i] = (this.base[i] as number) + this.cycleMs
      this.next[i] = (this.base[i] as number) + (this.arrival[i] as number)
      this.heap.push(i)
      return
    }
    if (!this.loop && this.role[i] === Role.Foreign && at >= this.cycleMs + this.laterBy) return
    const interval = this.interval[i] as number
    // BLE adds a random 0..10 ms advDelay to every advertising event
    this.next[i] = at + interval + this.rng.next() * 10
    this.heap.push(i)
  }
}

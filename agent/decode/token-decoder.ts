import type { Advert } from '../ble/source.js'
import type { DecodersConfig } from '../config/schema.js'
import type { Sighting } from '../pipeline/types.js'
import { EDDYSTONE_FRAME, EDDYSTONE_SERVICE, EDDYSTONE_UID_MAX, EDDYSTONE_UID_MIN } from './eddystone.js'
import { IBEACON_LENGTH, looksLikeIBeacon } from './ibeacon.js'

/** What became of the adverts the decoder saw: tokens per decoder, and what was dropped. */
export interface DecoderCounters {
  ibeacon: number
  eddystone: number
  manufacturer: number
  /** adverts that carry nothing of ours: phones, sensors, other events' beacons */
  foreign: number
  /** adverts whose bytes claim one of our formats but are broken (truncated, wrong length) */
  malformed: number
}

export interface TokenDecoder {
  /** Turn an advert into a sighting of a participant token, or null (counted). Never throws. */
  decode(a: Advert): Sighting | null
  readonly counters: DecoderCounters
}

enum Outcome {
  None = 0,
  Foreign = 1,
  Malformed = 2,
}

/**
 * The configured decoders as one hot-path function. Everything configuration decides (event UUID,
 * namespace, company id, prefix) is turned into bytes once, so decoding compares bytes and allocates
 * only the token string of a match.
 */
export function createTokenDecoder(cfg: DecodersConfig): TokenDecoder {
  const counters: DecoderCounters = { ibeacon: 0, eddystone: 0, manufacturer: 0, foreign: 0, malformed: 0 }
  const ib = cfg.ibeacon
  const uuid = Buffer.from(ib.uuid, 'hex')
  const ibMinorOnly = ib.token === 'minor'
  const ed = cfg.eddystone
  const namespace = Buffer.from(ed.namespace, 'hex')
  const mf = cfg.manufacturer
  const prefix = Buffer.from(mf.prefix, 'hex')
  const mfCompanyLo = mf.companyId & 0xff
  const mfCompanyHi = mf.companyId >> 8
  const mfNeed = 2 + prefix.length + mf.tokenBytes

  const sighting = (a: Advert, token: string, decoder: Sighting['decoder']): Sighting => ({
    token,
    rssi: a.rssi,
    ts: a.ts,
    address: a.address,
    decoder,
  })

  function decodeManufacturer(a: Advert, m: Buffer): Sighting | Outcome {
    if (m.length < 2) return Outcome.Malformed
    if (looksLikeIBeacon(m)) {
      if (!ib.enabled) return Outcome.Foreign
      if (m.length !== IBEACON_LENGTH) return Outcome.Malformed
      if (m.compare(uuid, 0, 16, 4, 20) !== 0) return Outcome.Foreign
      counters.ibeacon++
      return sighting(a, ibMinorOnly ? m.toString('hex', 22, 24) : m.toString('hex', 20, 24), 'ibeacon')
    }
    if (mf.enabled && m[0] === mfCompanyLo && m[1] === mfCompanyHi) {
      for (let i = 0; i < prefix.length; i++) {
        if (m[2 + i] !== prefix[i]) return m.length < 2 + i + 1 ? Outcome.Malformed : Outcome.Foreign
      }
      if (m.length < mfNeed) return Outcome.Malformed
      counters.manufacturer++
      return sighting(a, m.toString('hex', 2 + prefix.length, mfNeed), 'manufacturer')
    }
    return Outcome.Foreign
  }

  function decodeService(a: Advert, list: ReadonlyArray<{ uuid: string; data: Buffer }>): Sighting | Outcome {
    let outcome = Outcome.None
    for (const sd of list) {
      if (sd.uuid !== EDDYSTONE_SERVICE || !ed.enabled) {
        outcome = Math.max(outcome, Outcome.Foreign)
        continue
      }
      const d = sd.data
      if (!Buffer.isBuffer(d) || d.length === 0) {
        outcome = Outcome.Malformed
        continue
      }
      if (d[0] !== EDDYSTONE_FRAME.uid) {
        outcome = Math.max(outcome, Outcome.Foreign)
        continue
      }
      if (d.length < EDDYSTONE_UID_MIN || d.length > EDDYSTONE_UID_MAX) {
        outcome = Outcome.Malformed
        continue
      }
      if (d.compare(namespace, 0, 10, 2, 12) !== 0) {
        outcome = Math.max(outcome, Outcome.Foreign)
        continue
      }
      counters.eddystone++
      return sighting(a, d.toString('hex', 12, 18), 'eddystone')
    }
    return outcome
  }

  function decode(a: Advert): Sighting | null {
    try {
      let outcome = Outcome.None
      const m = a.manufacturerData
      if (m !== undefined) {
        if (!Buffer.isBuffer(m)) {
          outcome = Outcome.Malformed
        } else {
          const r = decodeManufacturer(a, m)
          if (typeof r === 'object') return r
          outcome = r
        }
      }
      const sd = a.serviceData
      if (sd !== undefined && sd.length > 0) {
        const r = decodeService(a, sd)
        if (typeof r === 'object') return r
        outcome = Math.max(outcome, r)
      }
      if (outcome === Outcome.Malformed) counters.malformed++
      else counters.foreign++
      return null
    } catch {
      // a shape no radio should deliver (a getter that throws, a non-array): dropped and counted
      counters.malformed++
      return null
    }
  }

  return { decode, counters }
}

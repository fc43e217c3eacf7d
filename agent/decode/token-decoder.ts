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

/** The configured decoders as one: adverts in, sightings of tokens out, everything else counted. */
export interface TokenDecoder {
  /** Turn an advert into a sighting of a participant token, or null (counted). Never throws. */
  decode(advert: Advert): Sighting | null
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
  const ibeacon = cfg.ibeacon
  const uuid = Buffer.from(ibeacon.uuid, 'hex')
  const ibMinorOnly = ibeacon.token === 'minor'
  const eddystone = cfg.eddystone
  const namespace = Buffer.from(eddystone.namespace, 'hex')
  const manufacturer = cfg.manufacturer
  const prefix = Buffer.from(manufacturer.prefix, 'hex')
  const mfCompanyLo = manufacturer.companyId & 0xff
  const mfCompanyHi = manufacturer.companyId >> 8
  const mfNeed = 2 + prefix.length + manufacturer.tokenBytes

  const sighting = (advert: Advert, token: string, decoder: Sighting['decoder']): Sighting => ({
    token,
    rssi: advert.rssi,
    ts: advert.ts,
    address: advert.address,
    decoder,
  })

  function decodeManufacturer(advert: Advert, manufacturerData: Buffer): Sighting | Outcome {
    if (manufacturerData.length < 2) return Outcome.Malformed
    if (looksLikeIBeacon(manufacturerData)) {
      if (!ibeacon.enabled) return Outcome.Foreign
      if (manufacturerData.length !== IBEACON_LENGTH) return Outcome.Malformed
      if (manufacturerData.compare(uuid, 0, 16, 4, 20) !== 0) return Outcome.Foreign
      counters.ibeacon++
      return sighting(
        advert,
        ibMinorOnly ? manufacturerData.toString('hex', 22, 24) : manufacturerData.toString('hex', 20, 24),
        'ibeacon',
      )
    }
    if (manufacturer.enabled && manufacturerData[0] === mfCompanyLo && manufacturerData[1] === mfCompanyHi) {
      for (let i = 0; i < prefix.length; i++) {
        if (manufacturerData[2 + i] !== prefix[i])
          return manufacturerData.length < 2 + i + 1 ? Outcome.Malformed : Outcome.Foreign
      }
      if (manufacturerData.length < mfNeed) return Outcome.Malformed
      counters.manufacturer++
      return sighting(advert, manufacturerData.toString('hex', 2 + prefix.length, mfNeed), 'manufacturer')
    }
    return Outcome.Foreign
  }

  function decodeService(
    advert: Advert,
    list: ReadonlyArray<{ uuid: string; data: Buffer }>,
  ): Sighting | Outcome {
    let outcome = Outcome.None
    for (const entry of list) {
      if (entry.uuid !== EDDYSTONE_SERVICE || !eddystone.enabled) {
        outcome = Math.max(outcome, Outcome.Foreign)
        continue
      }
      const data = entry.data
      if (!Buffer.isBuffer(data) || data.length === 0) {
        outcome = Outcome.Malformed
        continue
      }
      if (data[0] !== EDDYSTONE_FRAME.uid) {
        outcome = Math.max(outcome, Outcome.Foreign)
        continue
      }
      if (data.length < EDDYSTONE_UID_MIN || data.length > EDDYSTONE_UID_MAX) {
        outcome = Outcome.Malformed
        continue
      }
      if (data.compare(namespace, 0, 10, 2, 12) !== 0) {
        outcome = Math.max(outcome, Outcome.Foreign)
        continue
      }
      counters.eddystone++
      return sighting(advert, data.toString('hex', 12, 18), 'eddystone')
    }
    return outcome
  }

  function decode(advert: Advert): Sighting | null {
    try {
      let outcome = Outcome.None
      const manufacturerData = advert.manufacturerData
      if (manufacturerData !== undefined) {
        if (!Buffer.isBuffer(manufacturerData)) {
          outcome = Outcome.Malformed
        } else {
          const result = decodeManufacturer(advert, manufacturerData)
          if (typeof result === 'object') return result
          outcome = result
        }
      }
      const serviceData = advert.serviceData
      if (serviceData !== undefined && serviceData.length > 0) {
        const result = decodeService(advert, serviceData)
        if (typeof result === 'object') return result
        outcome = Math.max(outcome, result)
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

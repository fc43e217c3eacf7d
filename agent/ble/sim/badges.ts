import type { DecodersConfig } from '../../config/schema.js'
import { EDDYSTONE_SERVICE } from '../../decode/eddystone.js'
import type { Prng } from './prng.js'

/** Which kind of badge a simulated participant wears (one per enabled decoder). */
export type BadgeKind = 'ibeacon' | 'eddystone' | 'manufacturer'

/** The advertising payload of one device, built once and reused for each of its adverts. */
export interface Payload {
  manufacturerData?: Buffer
  serviceData?: Array<{ uuid: string; data: Buffer }>
  localName?: string
  txPower?: number
}

/** Measured power at 1 m that badges put in their frames, dBm. */
export const BADGE_TX_AT_1M = -59

/** The badge kinds the configuration can decode, in a fixed order. */
export function enabledBadgeKinds(d: DecodersConfig): BadgeKind[] {
  const kinds: BadgeKind[] = []
  if (d.ibeacon.enabled) kinds.push('ibeacon')
  if (d.eddystone.enabled) kinds.push('eddystone')
  if (d.manufacturer.enabled) kinds.push('manufacturer')
  return kinds
}

/** Token length in hex characters for a badge kind under this configuration. */
export function tokenHexLength(kind: BadgeKind, d: DecodersConfig): number {
  switch (kind) {
    case 'ibeacon':
      return d.ibeacon.token === 'minor' ? 4 : 8
    case 'eddystone':
      return 12
    case 'manufacturer':
      return d.manufacturer.tokenBytes * 2
  }
}

/** The frame a badge of `kind` broadcasts for `token` (lower-case hex of tokenHexLength). */
export function badgePayload(kind: BadgeKind, token: string, d: DecodersConfig): Payload {
  switch (kind) {
    case 'ibeacon': {
      const b = Buffer.alloc(25)
      b.write('4c000215', 0, 'hex')
      b.write(d.ibeacon.uuid, 4, 'hex')
      if (d.ibeacon.token === 'minor') {
        b.writeUInt16BE(1, 20)
        b.write(token, 22, 'hex')
      } else {
        b.write(token, 20, 'hex')
      }
      b.writeInt8(BADGE_TX_AT_1M, 24)
      return { manufacturerData: b }
    }
    case 'eddystone': {
      const data = Buffer.alloc(20)
      data[0] = 0x00
      data.writeInt8(-18, 1) // Eddystone calibrates at 0 m: about 41 dB above the 1 m figure
      data.write(d.eddystone.namespace, 2, 'hex')
      data.write(token, 12, 'hex')
      return { serviceData: [{ uuid: EDDYSTONE_SERVICE, data }] }
    }
    case 'manufacturer': {
      const prefix = Buffer.from(d.manufacturer.prefix, 'hex')
      const b = Buffer.alloc(2 + prefix.length + d.manufacturer.tokenBytes)
      b.writeUInt16LE(d.manufacturer.companyId, 0)
      prefix.copy(b, 2)
      b.write(token, 2 + prefix.length, 'hex')
      return { manufacturerData: b, localName: 'GATE-BADGE' }
    }
  }
}

/** Devices that are not ours: they must be decoded as foreign (or malformed) and never checked in. */
export type ForeignKind =
  | 'apple-continuity'
  | 'other-ibeacon'
  | 'eddystone-url'
  | 'eddystone-tlm'
  | 'ruuvi'
  | 'microsoft'
  | 'malformed-ibeacon'
  | 'malformed-eddystone'

const FOREIGN_KINDS: ForeignKind[] = [
  'apple-continuity',
  'apple-continuity',
  'apple-continuity',
  'other-ibeacon',
  'eddystone-url',
  'eddystone-tlm',
  'ruuvi',
  'microsoft',
  'malformed-ibeacon',
  'malformed-eddystone',
]

/** A foreign device's payload: phones, sensors, other beacons, and a few broken frames. */
export function foreignPayload(rng: Prng, d: DecodersConfig): { kind: ForeignKind; payload: Payload } {
  const kind = rng.pick(FOREIGN_KINDS)
  switch (kind) {
    case 'apple-continuity': {
      // Nearby Info (type 0x10, length 5), what an iPhone in a pocket broadcasts
      const b = Buffer.concat([Buffer.from('4c001005', 'hex'), rng.bytes(5)])
      return { kind, payload: { manufacturerData: b } }
    }
    case 'other-ibeacon': {
      const b = Buffer.alloc(25)
      b.write('4c000215', 0, 'hex')
      rng.bytes(16).copy(b, 4) // another venue's UUID
      b.writeUInt16BE(rng.int(0, 0xffff), 20)
      b.writeUInt16BE(rng.int(0, 0xffff), 22)
      b.writeInt8(-59, 24)
      return { kind, payload: { manufacturerData: b } }
    }
    case 'eddystone-url': {
      const data = Buffer.concat([
        Buffer.from([0x10, 0xeb, 0x03]),
        Buffer.from('example'),
        Buffer.from([0x07]),
      ])
      return { kind, payload: { serviceData: [{ uuid: EDDYSTONE_SERVICE, data }] } }
    }
    case 'eddystone-tlm': {
      const data = Buffer.from('20000bb81800000001a0000012c0', 'hex')
      return { kind, payload: { serviceData: [{ uuid: EDDYSTONE_SERVICE, data }] } }
    }
    case 'ruuvi': {
      // RuuviTag data format 5 under Ruuvi Innovations' company id 0x0499
      const b = Buffer.concat([Buffer.from('990405', 'hex'), rng.bytes(23)])
      return { kind, payload: { manufacturerData: b, localName: 'Ruuvi 1a2b' } }
    }
    case 'microsoft': {
      const b = Buffer.concat([Buffer.from('0600010920', 'hex'), rng.bytes(23)])
      return { kind, payload: { manufacturerData: b } }
    }
    case 'malformed-ibeacon': {
      // our UUID but truncated before major/minor: must be counted as malformed, not admitted
      const b = Buffer.alloc(20)
      b.write('4c000215', 0, 'hex')
      b.write(d.ibeacon.uuid, 4, 'hex')
      return { kind, payload: { manufacturerData: b } }
    }
    case 'malformed-eddystone': {
      const data = Buffer.from([0x00, 0xee, 0x01, 0x02, 0x03])
      return { kind, payload: { serviceData: [{ uuid: EDDYSTONE_SERVICE, data }] } }
    }
  }
}

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
export function enabledBadgeKinds(decoders: DecodersConfig): BadgeKind[] {
  const kinds: BadgeKind[] = []
  if (decoders.ibeacon.enabled) kinds.push('ibeacon')
  if (decoders.eddystone.enabled) kinds.push('eddystone')
  if (decoders.manufacturer.enabled) kinds.push('manufacturer')
  return kinds
}

/** Token length in hex characters for a badge kind under this configuration. */
export function tokenHexLength(kind: BadgeKind, decoders: DecodersConfig): number {
  switch (kind) {
    case 'ibeacon':
      return decoders.ibeacon.token === 'minor' ? 4 : 8
    case 'eddystone':
      return 12
    case 'manufacturer':
      return decoders.manufacturer.tokenBytes * 2
  }
}

/** The frame a badge of `kind` broadcasts for `token` (lower-case hex of tokenHexLength). */
export function badgePayload(kind: BadgeKind, token: string, decoders: DecodersConfig): Payload {
  switch (kind) {
    case 'ibeacon': {
      const bytes = Buffer.alloc(25)
      bytes.write('4c000215', 0, 'hex')
      bytes.write(decoders.ibeacon.uuid, 4, 'hex')
      if (decoders.ibeacon.token === 'minor') {
        bytes.writeUInt16BE(1, 20)
        bytes.write(token, 22, 'hex')
      } else {
        bytes.write(token, 20, 'hex')
      }
      bytes.writeInt8(BADGE_TX_AT_1M, 24)
      return { manufacturerData: bytes }
    }
    case 'eddystone': {
      const data = Buffer.alloc(20)
      data[0] = 0x00
      data.writeInt8(-18, 1) // Eddystone calibrates at 0 m: about 41 dB above the 1 m figure
      data.write(decoders.eddystone.namespace, 2, 'hex')
      data.write(token, 12, 'hex')
      return { serviceData: [{ uuid: EDDYSTONE_SERVICE, data }] }
    }
    case 'manufacturer': {
      const prefix = Buffer.from(decoders.manufacturer.prefix, 'hex')
      const bytes = Buffer.alloc(2 + prefix.length + decoders.manufacturer.tokenBytes)
      bytes.writeUInt16LE(decoders.manufacturer.companyId, 0)
      prefix.copy(bytes, 2)
      bytes.write(token, 2 + prefix.length, 'hex')
      return { manufacturerData: bytes, localName: 'GATE-BADGE' }
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
export function foreignPayload(rng: Prng, decoders: DecodersConfig): { kind: ForeignKind; payload: Payload } {
  const kind = rng.pick(FOREIGN_KINDS)
  switch (kind) {
    case 'apple-continuity': {
      // Nearby Info (type 0x10, length 5), what an iPhone in a pocket broadcasts
      const bytes = Buffer.concat([Buffer.from('4c001005', 'hex'), rng.bytes(5)])
      return { kind, payload: { manufacturerData: bytes } }
    }
    case 'other-ibeacon': {
      const bytes = Buffer.alloc(25)
      bytes.write('4c000215', 0, 'hex')
      rng.bytes(16).copy(bytes, 4) // another venue's UUID
      bytes.writeUInt16BE(rng.int(0, 0xffff), 20)
      bytes.writeUInt16BE(rng.int(0, 0xffff), 22)
      bytes.writeInt8(-59, 24)
      return { kind, payload: { manufacturerData: bytes } }
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
      const bytes = Buffer.concat([Buffer.from('990405', 'hex'), rng.bytes(23)])
      return { kind, payload: { manufacturerData: bytes, localName: 'Ruuvi 1a2b' } }
    }
    case 'microsoft': {
      const bytes = Buffer.concat([Buffer.from('0600010920', 'hex'), rng.bytes(23)])
      return { kind, payload: { manufacturerData: bytes } }
    }
    case 'malformed-ibeacon': {
      // our UUID but truncated before major/minor: must be counted as malformed, not admitted
      const bytes = Buffer.alloc(20)
      bytes.write('4c000215', 0, 'hex')
      bytes.write(decoders.ibeacon.uuid, 4, 'hex')
      return { kind, payload: { manufacturerData: bytes } }
    }
    case 'malformed-eddystone': {
      const data = Buffer.from([0x00, 0xee, 0x01, 0x02, 0x03])
      return { kind, payload: { serviceData: [{ uuid: EDDYSTONE_SERVICE, data }] } }
    }
  }
}

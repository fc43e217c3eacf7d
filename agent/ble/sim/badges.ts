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

/** Where a badge's frame goes in its advert: manufacturer data, or Eddystone service data. */
export function badgeFrameIn(kind: BadgeKind): 'manufacturer' | 'eddystone' {
  return kind === 'eddystone' ? 'eddystone' : 'manufacturer'
}

/** The length of the frame a badge of `kind` broadcasts, bytes. */
export function badgeFrameLength(kind: BadgeKind, decoders: DecodersConfig): number {
  switch (kind) {
    case 'ibeacon':
      return 25
    case 'eddystone':
      return 20
    case 'manufacturer':
      return 2 + decoders.manufacturer.prefix.length / 2 + decoders.manufacturer.tokenBytes
  }
}

/**
 * Write the frame a badge of `kind` broadcasts for `token` (lower-case hex of tokenHexLength) into
 * `into` at `at` (badgeFrameLength bytes, zeroed). The simulated crowd keeps every badge's frame in
 * one buffer: a Buffer of its own per badge costs some 300 bytes, most of them bookkeeping.
 */
export function writeBadgeFrame(
  kind: BadgeKind,
  token: string,
  decoders: DecodersConfig,
  into: Buffer,
  at: number,
): void {
  switch (kind) {
    case 'ibeacon': {
      into.write('4c000215', at, 'hex')
      into.write(decoders.ibeacon.uuid, at + 4, 'hex')
      if (decoders.ibeacon.token === 'minor') {
        into.writeUInt16BE(1, at + 20)
        into.write(token, at + 22, 'hex')
      } else {
        into.write(token, at + 20, 'hex')
      }
      into.writeInt8(BADGE_TX_AT_1M, at + 24)
      return
    }
    case 'eddystone': {
      into[at] = 0x00
      into.writeInt8(-18, at + 1) // Eddystone calibrates at 0 m: about 41 dB above the 1 m figure
      into.write(decoders.eddystone.namespace, at + 2, 'hex')
      into.write(token, at + 12, 'hex')
      return
    }
    case 'manufacturer': {
      into.writeUInt16LE(decoders.manufacturer.companyId, at)
      const prefixAt = at + 2
      into.write(decoders.manufacturer.prefix, prefixAt, 'hex')
      into.write(token, prefixAt + decoders.manufacturer.prefix.length / 2, 'hex')
      return
    }
  }
}

/** The local name a badge of `kind` advertises, if any. */
export const badgeLocalName = (kind: BadgeKind): string | undefined =>
  kind === 'manufacturer' ? 'GATE-BADGE' : undefined

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

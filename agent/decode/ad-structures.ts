import { GateError } from '../../shared/errors.js'
import type { Advert } from '../ble/source.js'

/** AD types the gate understands (Bluetooth Core Supplement, part A). */
export const AD_TYPE = {
  flags: 0x01,
  incomplete16: 0x02,
  complete16: 0x03,
  shortName: 0x08,
  completeName: 0x09,
  txPower: 0x0a,
  serviceData16: 0x16,
  manufacturer: 0xff,
} as const

/** One AD structure: [length][type][data...], where length counts the type byte and the data. */
export interface AdStructure {
  type: number
  data: Buffer
}

/** The result of splitting raw advertising data into AD structures. */
export interface ParsedAd {
  structures: AdStructure[]
  /** what was wrong with the bytes (a truncated structure, trailing garbage); empty when well-formed */
  problems: string[]
}

/**
 * Split raw advertising data (up to 31 bytes legacy, 254 extended) into AD structures. Never throws:
 * a structure whose length runs past the end is reported in `problems` and parsing stops there.
 * A zero length byte ends the significant part (the rest is padding, as the spec allows).
 */
export function parseAdStructures(bytes: Buffer): ParsedAd {
  const structures: AdStructure[] = []
  const problems: string[] = []
  let i = 0
  while (i < bytes.length) {
    const len = bytes[i] ?? 0
    if (len === 0) {
      if (bytes.subarray(i).some((b) => b !== 0))
        problems.push(`non-zero bytes after a zero-length structure at offset ${i}`)
      break
    }
    if (i + 1 + len > bytes.length) {
      problems.push(`structure at offset ${i} claims ${len} bytes but only ${bytes.length - i - 1} remain`)
      break
    }
    structures.push({ type: bytes[i + 1] ?? 0, data: bytes.subarray(i + 2, i + 1 + len) })
    i += 1 + len
  }
  return { structures, problems }
}

/** Turn AD structures into the Advert parts the decoders read (the same shape a radio delivers). */
export function advertFromStructures(
  structures: readonly AdStructure[],
  base: { address?: string; rssi?: number; ts?: number } = {},
): Advert {
  const advert: Advert = {
    address: base.address ?? '00:00:00:00:00:00',
    rssi: base.rssi ?? -60,
    ts: base.ts ?? 0,
  }
  const serviceData: Array<{ uuid: string; data: Buffer }> = []
  for (const structure of structures) {
    switch (structure.type) {
      case AD_TYPE.manufacturer:
        advert.manufacturerData = structure.data
        break
      case AD_TYPE.serviceData16:
        if (structure.data.length >= 2) {
          serviceData.push({
            uuid: structure.data.readUInt16LE(0).toString(16).padStart(4, '0'),
            data: structure.data.subarray(2),
          })
        }
        break
      case AD_TYPE.shortName:
      case AD_TYPE.completeName:
        advert.localName = structure.data.toString('utf8')
        break
      case AD_TYPE.txPower:
        if (structure.data.length >= 1) advert.txPower = structure.data.readInt8(0)
        break
      default:
        break
    }
  }
  if (serviceData.length > 0) advert.serviceData = serviceData
  return advert
}

/** A readable name for an AD type, for `gatectl decode`. */
export function adTypeName(type: number): string {
  switch (type) {
    case AD_TYPE.flags:
      return 'flags'
    case AD_TYPE.incomplete16:
      return 'incomplete 16-bit service UUIDs'
    case AD_TYPE.complete16:
      return 'complete 16-bit service UUIDs'
    case AD_TYPE.shortName:
      return 'shortened local name'
    case AD_TYPE.completeName:
      return 'complete local name'
    case AD_TYPE.txPower:
      return 'TX power level'
    case AD_TYPE.serviceData16:
      return 'service data (16-bit UUID)'
    case AD_TYPE.manufacturer:
      return 'manufacturer specific data'
    default:
      return `type 0x${type.toString(16).padStart(2, '0')}`
  }
}

/**
 * Parse hex typed by a person: spaces, colons, dashes and a leading 0x are allowed.
 * Rejects anything else with E_INPUT, saying what is wrong.
 */
export function parseHexInput(input: string): Buffer {
  const cleaned = input
    .trim()
    .replace(/^0x/i, '')
    .replace(/[\s:-]/g, '')
    .toLowerCase()
  if (cleaned.length === 0)
    throw new GateError(
      'E_INPUT',
      'no bytes given: pass the advertising data as hex, e.g. 0201061aff4c000215...',
    )
  const bad = /[^0-9a-f]/.exec(cleaned)
  if (bad)
    throw new GateError('E_INPUT', `not hexadecimal: unexpected '${bad[0]}' at position ${bad.index + 1}`)
  if (cleaned.length % 2 !== 0)
    throw new GateError('E_INPUT', `odd number of hex digits (${cleaned.length}): bytes are two digits each`)
  return Buffer.from(cleaned, 'hex')
}

import type { Advert } from '../ble/source.js'
import type { DecodersConfig } from '../config/schema.js'
import { adTypeName, advertFromStructures, parseAdStructures, parseHexInput } from './ad-structures.js'
import { EDDYSTONE_SERVICE, parseEddystone } from './eddystone.js'
import { formatUuid, parseIBeacon } from './ibeacon.js'
import { companyIdOf, KNOWN_COMPANIES, parseManufacturerToken } from './manufacturer.js'
import { createTokenDecoder } from './token-decoder.js'

/** What one decoder made of an advert, for a technician. */
export interface DecoderReport {
  decoder: 'ibeacon' | 'eddystone' | 'manufacturer'
  /** token: this badge is ours and yields that token; foreign: a valid frame but not this event's;
   *  malformed: broken bytes; absent: nothing for this decoder; disabled: turned off in config */
  outcome: 'token' | 'foreign' | 'malformed' | 'absent' | 'disabled'
  token?: string
  fields: Record<string, string | number>
  note: string
}

/** The whole inspection: the structures found, each decoder's view, and what the pipeline would do. */
export interface Inspection {
  input: 'ad' | 'manufacturer' | 'advert'
  structures: Array<{ type: string; hex: string }>
  problems: string[]
  decoders: DecoderReport[]
  /** the token the pipeline would take, or null (and then the advert is dropped) */
  token: string | null
  verdict: string
}

/** Inspect an advert with the configured decoders, explaining every decoder's outcome. */
export function inspectAdvert(
  advert: Advert,
  cfg: DecodersConfig,
): Omit<Inspection, 'input' | 'structures' | 'problems'> {
  const reports: DecoderReport[] = [
    ibeaconReport(advert, cfg),
    manufacturerReport(advert, cfg),
    eddystoneReport(advert, cfg),
  ]
  const pipeline = createTokenDecoder(cfg)
  const sighting = pipeline.decode(advert)
  const counters = pipeline.counters
  const verdict = sighting
    ? `admissible badge: token ${sighting.token} (decoder ${sighting.decoder}); the roster decides admit or deny`
    : counters.malformed > 0
      ? 'dropped as malformed: the bytes claim one of our formats but are broken'
      : 'dropped as foreign: nothing in it belongs to this event'
  return { decoders: reports, token: sighting?.token ?? null, verdict }
}

/**
 * Inspect hex typed by a technician: raw advertising data (AD structures), or manufacturer data
 * alone (company id first, little-endian). `auto` takes AD structures when the bytes parse as such.
 * Throws E_INPUT for text that is not hex.
 */
export function inspectHex(
  hex: string,
  cfg: DecodersConfig,
  opts: { kind?: 'ad' | 'manufacturer' | 'auto' } = {},
): Inspection {
  const bytes = parseHexInput(hex)
  const parsed = parseAdStructures(bytes)
  const kind =
    opts.kind === 'ad' || opts.kind === 'manufacturer'
      ? opts.kind
      : parsed.problems.length === 0 && parsed.structures.length > 0
        ? 'ad'
        : 'manufacturer'
  if (kind === 'manufacturer') {
    const advert: Advert = { address: '00:00:00:00:00:00', rssi: -60, ts: 0, manufacturerData: bytes }
    return { input: 'manufacturer', structures: [], problems: [], ...inspectAdvert(advert, cfg) }
  }
  const advert = advertFromStructures(parsed.structures)
  return {
    input: 'ad',
    structures: parsed.structures.map((s) => ({ type: adTypeName(s.type), hex: s.data.toString('hex') })),
    problems: parsed.problems,
    ...inspectAdvert(advert, cfg),
  }
}

function ibeaconReport(advert: Advert, cfg: DecodersConfig): DecoderReport {
  const base = { decoder: 'ibeacon' as const }
  if (!cfg.ibeacon.enabled)
    return { ...base, outcome: 'disabled', fields: {}, note: 'iBeacon decoder is disabled' }
  const manufacturerData = advert.manufacturerData
  if (!manufacturerData) return { ...base, outcome: 'absent', fields: {}, note: 'no manufacturer data' }
  const parsed = parseIBeacon(manufacturerData)
  if (parsed.kind === 'not-ibeacon') {
    const company = companyIdOf(manufacturerData)
    const who =
      company === null ? 'too short' : `company 0x${hex4(company)} ${KNOWN_COMPANIES[company] ?? ''}`.trim()
    return { ...base, outcome: 'absent', fields: {}, note: `not an iBeacon frame (${who})` }
  }
  if (parsed.kind === 'malformed') return { ...base, outcome: 'malformed', fields: {}, note: parsed.why }
  const frame = parsed.frame
  const fields = { uuid: frame.uuid, major: frame.major, minor: frame.minor, txPower: frame.txPower }
  const expected = formatUuid(cfg.ibeacon.uuid)
  if (frame.uuid !== expected) {
    return { ...base, outcome: 'foreign', fields, note: `UUID is not this event's (${expected})` }
  }
  const token = cfg.ibeacon.token === 'minor' ? hex4(frame.minor) : `${hex4(frame.major)}${hex4(frame.minor)}`
  return { ...base, outcome: 'token', token, fields, note: `token is ${cfg.ibeacon.token}` }
}

function manufacturerReport(advert: Advert, cfg: DecodersConfig): DecoderReport {
  const base = { decoder: 'manufacturer' as const }
  const manufacturer = cfg.manufacturer
  if (!manufacturer.enabled)
    return { ...base, outcome: 'disabled', fields: {}, note: 'manufacturer-data decoder is disabled' }
  const manufacturerData = advert.manufacturerData
  if (!manufacturerData) return { ...base, outcome: 'absent', fields: {}, note: 'no manufacturer data' }
  const parsed = parseManufacturerToken(manufacturerData, {
    companyId: manufacturer.companyId,
    prefix: Buffer.from(manufacturer.prefix, 'hex'),
    tokenBytes: manufacturer.tokenBytes,
  })
  const want = `company 0x${hex4(manufacturer.companyId)} prefix ${manufacturer.prefix || '(none)'}`
  switch (parsed.kind) {
    case 'token':
      return {
        ...base,
        outcome: 'token',
        token: parsed.token,
        fields: { companyId: `0x${hex4(manufacturer.companyId)}`, token: parsed.token },
        note: want,
      }
    case 'other-company':
      return {
        ...base,
        outcome: 'absent',
        fields: { companyId: `0x${hex4(parsed.companyId)}` },
        note: `company ${KNOWN_COMPANIES[parsed.companyId] ?? `0x${hex4(parsed.companyId)}`} is not the configured ${want}`,
      }
    case 'prefix-mismatch':
      return {
        ...base,
        outcome: 'foreign',
        fields: { prefix: parsed.got },
        note: `prefix ${parsed.got} is not the configured ${manufacturer.prefix}`,
      }
    case 'malformed':
      return { ...base, outcome: 'malformed', fields: {}, note: parsed.why }
  }
}

function eddystoneReport(advert: Advert, cfg: DecodersConfig): DecoderReport {
  const base = { decoder: 'eddystone' as const }
  if (!cfg.eddystone.enabled)
    return { ...base, outcome: 'disabled', fields: {}, note: 'Eddystone decoder is disabled' }
  const eddystone = advert.serviceData?.find((s) => s.uuid === EDDYSTONE_SERVICE)
  if (!eddystone) return { ...base, outcome: 'absent', fields: {}, note: 'no 0xFEAA service data' }
  const parsed = parseEddystone(eddystone.data)
  if (parsed.kind === 'malformed') return { ...base, outcome: 'malformed', fields: {}, note: parsed.why }
  if (parsed.kind === 'other-frame') {
    return {
      ...base,
      outcome: 'foreign',
      fields: { frame: parsed.frame },
      note: `Eddystone ${parsed.frame.toUpperCase()} frame carries no identity`,
    }
  }
  const fields = {
    namespace: parsed.frame.namespace,
    instance: parsed.frame.instance,
    txPower: parsed.frame.txPower,
  }
  if (parsed.frame.namespace !== cfg.eddystone.namespace) {
    return {
      ...base,
      outcome: 'foreign',
      fields,
      note: `namespace is not this event's (${cfg.eddystone.namespace})`,
    }
  }
  return { ...base, outcome: 'token', token: parsed.frame.instance, fields, note: 'token is the instance' }
}

const hex4 = (n: number) => n.toString(16).padStart(4, '0')

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
  a: Advert,
  cfg: DecodersConfig,
): Omit<Inspection, 'input' | 'structures' | 'problems'> {
  const reports: DecoderReport[] = [
    ibeaconReport(a, cfg),
    manufacturerReport(a, cfg),
    eddystoneReport(a, cfg),
  ]
  const pipeline = createTokenDecoder(cfg)
  const s = pipeline.decode(a)
  const c = pipeline.counters
  const verdict = s
    ? `admissible badge: token ${s.token} (decoder ${s.decoder}); the roster decides admit or deny`
    : c.malformed > 0
      ? 'dropped as malformed: the bytes claim one of our formats but are broken'
      : 'dropped as foreign: nothing in it belongs to this event'
  return { decoders: reports, token: s?.token ?? null, verdict }
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
    const a: Advert = { address: '00:00:00:00:00:00', rssi: -60, ts: 0, manufacturerData: bytes }
    return { input: 'manufacturer', structures: [], problems: [], ...inspectAdvert(a, cfg) }
  }
  const a = advertFromStructures(parsed.structures)
  return {
    input: 'ad',
    structures: parsed.structures.map((s) => ({ type: adTypeName(s.type), hex: s.data.toString('hex') })),
    problems: parsed.problems,
    ...inspectAdvert(a, cfg),
  }
}

function ibeaconReport(a: Advert, cfg: DecodersConfig): DecoderReport {
  const base = { decoder: 'ibeacon' as const }
  if (!cfg.ibeacon.enabled)
    return { ...base, outcome: 'disabled', fields: {}, note: 'iBeacon decoder is disabled' }
  const m = a.manufacturerData
  if (!m) return { ...base, outcome: 'absent', fields: {}, note: 'no manufacturer data' }
  const r = parseIBeacon(m)
  if (r.kind === 'not-ibeacon') {
    const company = companyIdOf(m)
    const who =
      company === null ? 'too short' : `company 0x${hex4(company)} ${KNOWN_COMPANIES[company] ?? ''}`.trim()
    return { ...base, outcome: 'absent', fields: {}, note: `not an iBeacon frame (${who})` }
  }
  if (r.kind === 'malformed') return { ...base, outcome: 'malformed', fields: {}, note: r.why }
  const f = r.frame
  const fields = { uuid: f.uuid, major: f.major, minor: f.minor, txPower: f.txPower }
  const expected = formatUuid(cfg.ibeacon.uuid)
  if (f.uuid !== expected) {
    return { ...base, outcome: 'foreign', fields, note: `UUID is not this event's (${expected})` }
  }
  const token = cfg.ibeacon.token === 'minor' ? hex4(f.minor) : `${hex4(f.major)}${hex4(f.minor)}`
  return { ...base, outcome: 'token', token, fields, note: `token is ${cfg.ibeacon.token}` }
}

function manufacturerReport(a: Advert, cfg: DecodersConfig): DecoderReport {
  const base = { decoder: 'manufacturer' as const }
  const mc = cfg.manufacturer
  if (!mc.enabled)
    return { ...base, outcome: 'disabled', fields: {}, note: 'manufacturer-data decoder is disabled' }
  const m = a.manufacturerData
  if (!m) return { ...base, outcome: 'absent', fields: {}, note: 'no manufacturer data' }
  const r = parseManufacturerToken(m, {
    companyId: mc.companyId,
    prefix: Buffer.from(mc.prefix, 'hex'),
    tokenBytes: mc.tokenBytes,
  })
  const want = `company 0x${hex4(mc.companyId)} prefix ${mc.prefix || '(none)'}`
  switch (r.kind) {
    case 'token':
      return {
        ...base,
        outcome: 'token',
        token: r.token,
        fields: { companyId: `0x${hex4(mc.companyId)}`, token: r.token },
        note: want,
      }
    case 'other-company':
      return {
        ...base,
        outcome: 'absent',
        fields: { companyId: `0x${hex4(r.companyId)}` },
        note: `company ${KNOWN_COMPANIES[r.companyId] ?? `0x${hex4(r.companyId)}`} is not the configured ${want}`,
      }
    case 'prefix-mismatch':
      return {
        ...base,
        outcome: 'foreign',
        fields: { prefix: r.got },
        note: `prefix ${r.got} is not the configured ${mc.prefix}`,
      }
    case 'malformed':
      return { ...base, outcome: 'malformed', fields: {}, note: r.why }
  }
}

function eddystoneReport(a: Advert, cfg: DecodersConfig): DecoderReport {
  const base = { decoder: 'eddystone' as const }
  if (!cfg.eddystone.enabled)
    return { ...base, outcome: 'disabled', fields: {}, note: 'Eddystone decoder is disabled' }
  const sd = a.serviceData?.find((s) => s.uuid === EDDYSTONE_SERVICE)
  if (!sd) return { ...base, outcome: 'absent', fields: {}, note: 'no 0xFEAA service data' }
  const r = parseEddystone(sd.data)
  if (r.kind === 'malformed') return { ...base, outcome: 'malformed', fields: {}, note: r.why }
  if (r.kind === 'other-frame') {
    return {
      ...base,
      outcome: 'foreign',
      fields: { frame: r.frame },
      note: `Eddystone ${r.frame.toUpperCase()} frame carries no identity`,
    }
  }
  const fields = { namespace: r.frame.namespace, instance: r.frame.instance, txPower: r.frame.txPower }
  if (r.frame.namespace !== cfg.eddystone.namespace) {
    return {
      ...base,
      outcome: 'foreign',
      fields,
      note: `namespace is not this event's (${cfg.eddystone.namespace})`,
    }
  }
  return { ...base, outcome: 'token', token: r.frame.instance, fields, note: 'token is the instance' }
}

const hex4 = (n: number) => n.toString(16).padStart(4, '0')

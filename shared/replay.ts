import { z } from 'zod'

/**
 * The replay capture format (`gatectl capture` writes it, `--source replay` plays it): JSON lines.
 * The first line is a header; every other line is one advert, `t` being ms since the capture began.
 *
 *   {"capture":1,"startedAt":"2026-11-25T09:00:00.000Z","gateId":"gate-1","source":"noble"}
 *   {"t":0,"address":"c4:7c:8d:6a:11:02","rssi":-61,"mfg":"4c000215...","name":"badge"}
 *   {"t":104.2,"address":"f0:11:22:33:44:55","rssi":-70,"svc":[{"uuid":"feaa","data":"00ee..."}]}
 */
export const CAPTURE_FORMAT_VERSION = 1

export const captureHeaderSchema = z.object({
  capture: z.literal(CAPTURE_FORMAT_VERSION),
  startedAt: z.string(),
  gateId: z.string().optional(),
  source: z.string().optional(),
})
export type CaptureHeader = z.infer<typeof captureHeaderSchema>

const hexBytes = z.string().regex(/^([0-9a-fA-F]{2})*$/, 'must be hexadecimal bytes')

export const captureLineSchema = z
  .object({
    t: z.number().finite().nonnegative(),
    address: z
      .string()
      .regex(/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/, 'must be a BLE address aa:bb:cc:dd:ee:ff'),
    rssi: z.number().int().min(-127).max(20),
    mfg: hexBytes.optional(),
    svc: z
      .array(z.object({ uuid: z.string().regex(/^[0-9a-fA-F]{4,32}$/), data: hexBytes }))
      .max(16)
      .optional(),
    name: z.string().max(64).optional(),
    tx: z.number().int().min(-127).max(127).optional(),
  })
  .strict()
export type CaptureLine = z.infer<typeof captureLineSchema>

/** What a BLE advert carries (agent/ble/source.ts adds when it was received). */
export interface CapturableAdvert {
  /** peripheral address, lower-case `aa:bb:cc:dd:ee:ff` (may be random/private) */
  address: string
  /** received signal strength, dBm (typically -100..-20) */
  rssi: number
  /** manufacturer-specific data as in AD type 0xFF: company id (little-endian, 2 bytes) then payload */
  manufacturerData?: Buffer | undefined
  /** service data entries (AD type 0x16): 16-bit service UUID as lower-case hex ('feaa') and payload */
  serviceData?: ReadonlyArray<{ uuid: string; data: Buffer }> | undefined
  /** complete or shortened local name, when advertised */
  localName?: string | undefined
  /** advertised TX power level (AD type 0x0A), dBm */
  txPower?: number | undefined
}

/** One advert as a capture line, `t` ms after the capture began. */
export function advertToLine(a: CapturableAdvert, t: number): CaptureLine {
  const line: CaptureLine = { t: Math.round(t * 10) / 10, address: a.address.toLowerCase(), rssi: a.rssi }
  if (a.manufacturerData && a.manufacturerData.length > 0) line.mfg = a.manufacturerData.toString('hex')
  if (a.serviceData && a.serviceData.length > 0) {
    line.svc = a.serviceData.map((s) => ({ uuid: s.uuid.toLowerCase(), data: s.data.toString('hex') }))
  }
  if (a.localName) line.name = a.localName
  if (a.txPower !== undefined) line.tx = a.txPower
  return line
}

/** A capture line back into an advert (without its timestamp). */
export function lineToAdvert(l: CaptureLine): CapturableAdvert {
  return {
    address: l.address.toLowerCase(),
    rssi: l.rssi,
    manufacturerData: l.mfg === undefined ? undefined : Buffer.from(l.mfg, 'hex'),
    serviceData: l.svc?.map((s) => ({ uuid: s.uuid.toLowerCase(), data: Buffer.from(s.data, 'hex') })),
    localName: l.name,
    txPower: l.tx,
  }
}

export type ParsedLine = { ok: true; line: CaptureLine } | { ok: false; why: string }

/** Parse one advert line; a bad line is described, never thrown. */
export function parseCaptureLine(text: string): ParsedLine {
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch {
    return { ok: false, why: 'not JSON' }
  }
  const r = captureLineSchema.safeParse(raw)
  if (r.success) return { ok: true, line: r.data }
  const issue = r.error.issues[0]
  return { ok: false, why: issue ? `${issue.path.join('.') || 'line'}: ${issue.message}` : 'invalid line' }
}

/** Parse the header line; null when it is not a capture header. */
export function parseCaptureHeader(text: string): CaptureHeader | null {
  try {
    const r = captureHeaderSchema.safeParse(JSON.parse(text))
    return r.success ? r.data : null
  } catch {
    return null
  }
}

/** Apple's company identifier as it appears first in manufacturer data (little-endian 0x004C). */
export const APPLE_COMPANY_ID = 0x004c
/** iBeacon manufacturer data is exactly 25 bytes: company(2) type(1) length(1) uuid(16) major(2) minor(2) tx(1). */
export const IBEACON_LENGTH = 25

/** The fields of an iBeacon frame. */
export interface IBeaconFrame {
  uuid: string
  major: number
  minor: number
  txPower: number
}

/** What manufacturer data is: an iBeacon frame, something else, or an iBeacon that is broken. */
export type IBeaconResult =
  | { kind: 'ibeacon'; frame: IBeaconFrame }
  | { kind: 'not-ibeacon' }
  | { kind: 'malformed'; why: string }

/** True when manufacturer data starts like an iBeacon: 4C 00 02 15. Cheap; no allocation. */
export function looksLikeIBeacon(manufacturerData: Buffer): boolean {
  return (
    manufacturerData.length >= 4 &&
    manufacturerData[0] === 0x4c &&
    manufacturerData[1] === 0x00 &&
    manufacturerData[2] === 0x02 &&
    manufacturerData[3] === 0x15
  )
}

/** Decode manufacturer data as an iBeacon frame. Never throws. */
export function parseIBeacon(manufacturerData: Buffer): IBeaconResult {
  if (!looksLikeIBeacon(manufacturerData)) return { kind: 'not-ibeacon' }
  if (manufacturerData.length !== IBEACON_LENGTH) {
    return {
      kind: 'malformed',
      why: `iBeacon frame is ${manufacturerData.length} bytes, expected ${IBEACON_LENGTH}`,
    }
  }
  return {
    kind: 'ibeacon',
    frame: {
      uuid: formatUuid(manufacturerData.toString('hex', 4, 20)),
      major: manufacturerData.readUInt16BE(20),
      minor: manufacturerData.readUInt16BE(22),
      txPower: manufacturerData.readInt8(24),
    },
  }
}

/** 32 hex chars as a dashed UUID. */
export function formatUuid(hex32: string): string {
  return `${hex32.slice(0, 8)}-${hex32.slice(8, 12)}-${hex32.slice(12, 16)}-${hex32.slice(16, 20)}-${hex32.slice(20)}`
}

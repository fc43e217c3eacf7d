/** A token carried in manufacturer-specific data: company id (LE), a configured prefix, then the token bytes. */
export interface ManufacturerTokenSpec {
  companyId: number
  /** the prefix bytes that must follow the company id */
  prefix: Buffer
  tokenBytes: number
}

/** What manufacturer data holds: our token, another company's data, our company with another prefix, or broken bytes. */
export type ManufacturerResult =
  | { kind: 'token'; token: string }
  | { kind: 'other-company'; companyId: number }
  | { kind: 'prefix-mismatch'; got: string }
  | { kind: 'malformed'; why: string }

/** The company id of manufacturer data (first two bytes, little-endian), or null when too short. */
export function companyIdOf(manufacturerData: Buffer): number | null {
  return manufacturerData.length >= 2 ? manufacturerData.readUInt16LE(0) : null
}

/** Decode a token under the configured company id and prefix. Never throws. */
export function parseManufacturerToken(
  manufacturerData: Buffer,
  spec: ManufacturerTokenSpec,
): ManufacturerResult {
  const company = companyIdOf(manufacturerData)
  if (company === null)
    return {
      kind: 'malformed',
      why: `manufacturer data of ${manufacturerData.length} byte(s) has no company id`,
    }
  if (company !== spec.companyId) return { kind: 'other-company', companyId: company }
  const prefixLength = spec.prefix.length
  for (let i = 0; i < prefixLength; i++) {
    if (manufacturerData[2 + i] !== spec.prefix[i]) {
      return {
        kind: 'prefix-mismatch',
        got: manufacturerData.toString('hex', 2, Math.min(manufacturerData.length, 2 + prefixLength)),
      }
    }
  }
  const need = 2 + prefixLength + spec.tokenBytes
  if (manufacturerData.length < need)
    return {
      kind: 'malformed',
      why: `token frame is ${manufacturerData.length} bytes, expected at least ${need}`,
    }
  return { kind: 'token', token: manufacturerData.toString('hex', 2 + prefixLength, need) }
}

/** Bluetooth SIG company identifiers a technician is likely to see at a venue. */
export const KNOWN_COMPANIES: Readonly<Record<number, string>> = {
  76: 'Apple',
  6: 'Microsoft',
  117: 'Samsung',
  224: 'Google',
  89: 'Nordic Semiconductor',
  1177: 'Ruuvi Innovations',
  343: 'Anhui Huami (Xiaomi/Amazfit)',
  741: 'Espressif',
  65535: 'reserved for testing',
}

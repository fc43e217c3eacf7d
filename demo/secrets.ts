import { randomBytes } from 'node:crypto'
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs'

/** What a second start needs again: kept in <dataDir>/secrets.json (0600). */
export interface Secrets {
  opsToken: string
  commandSecret: string
  mqttCloudPassword: string
  /** the demo event's organiser account's password (made at the first start that has none) */
  organiserPassword?: string
  gates: Record<string, { key?: string; mqttPassword: string }>
}

/** A new random secret. */
export const secret = (): string => randomBytes(24).toString('base64url')

/** The secrets kept in `file`, or new ones at the first start. */
export function loadSecrets(file: string): Secrets {
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as Secrets
  return { opsToken: secret(), commandSecret: secret(), mqttCloudPassword: secret(), gates: {} }
}

/** Keep the secrets in `file` (0600), replaced whole. */
export function saveSecrets(file: string, s: Secrets): void {
  writeFileSync(`${file}.tmp`, JSON.stringify(s, null, 2), { mode: 0o600 })
  renameSync(`${file}.tmp`, file)
}

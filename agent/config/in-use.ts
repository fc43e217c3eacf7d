import { accessSync, chmodSync, constants, renameSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import type { AgentConfig } from './schema.js'

/**
 * The configuration a running gate was started with, as it resolved it (defaults, file, environment
 * and flags), kept in its data directory so that gatectl checks and reads the gate as it actually
 * runs: a simulated gate is not failed for a missing Bluetooth adapter, and a gate with its own
 * decoders is decoded with them. Secrets are left out (gatectl speaks to the agent over its local
 * socket and needs none of them).
 */
export const CONFIG_IN_USE = 'config-in-use.json'

/** The configuration without its secrets: the gate key, the MQTT password and the command secret. */
export function withoutSecrets(config: AgentConfig): Record<string, unknown> {
  const { gateKey: _gateKey, ...cloud } = config.cloud
  const { password: _password, commandSecret: _commandSecret, ...mqtt } = config.mqtt
  return { ...config, cloud, mqtt }
}

/** Keep the configuration in use in the gate's data directory (replaced whole, readable by its group). */
export function writeConfigInUse(config: AgentConfig): string {
  const file = path.join(config.dataDir, CONFIG_IN_USE)
  const tmp = `${file}.tmp`
  writeFileSync(tmp, `${JSON.stringify(withoutSecrets(config), null, 2)}\n`, { mode: 0o640 })
  chmodSync(tmp, 0o640)
  renameSync(tmp, file)
  return file
}

/**
 * The configuration-in-use file of the gate whose data is in `dataDir`, if it left one this user
 * may read (one who may not falls back to the defaults, and is told what they may not do by the
 * command itself: the control socket and the database say so).
 */
export function configInUseFile(dataDir: string): string | undefined {
  const file = path.join(path.resolve(dataDir), CONFIG_IN_USE)
  try {
    accessSync(file, constants.R_OK)
    return file
  } catch {
    return undefined
  }
}

import { readFileSync } from 'node:fs'
import path from 'node:path'
import type { z } from 'zod'
import { type EnvVar, readEnv } from '../../shared/env-config.js'
import { GateError } from '../../shared/errors.js'
import { type AgentConfig, agentConfigSchema } from './schema.js'

/** Environment variables the agent reads (once, here), and where each lands in the config. */
export const ENV_MAP: readonly EnvVar[] = [
  { env: 'GATE_ID', path: ['gateId'], type: 'string' },
  { env: 'GATE_DATA_DIR', path: ['dataDir'], type: 'string' },
  { env: 'GATE_SOURCE', path: ['source', 'kind'], type: 'string' },
  { env: 'GATE_SIM_PARTICIPANTS', path: ['source', 'sim', 'participants'], type: 'int' },
  { env: 'GATE_SIM_SEED', path: ['source', 'sim', 'seed'], type: 'int' },
  { env: 'GATE_REPLAY_FILE', path: ['source', 'replay', 'file'], type: 'string' },
  { env: 'GATE_RSSI_THRESHOLD', path: ['proximity', 'enterDbm'], type: 'int' },
  { env: 'GATE_DEDUP_WINDOW_MS', path: ['dedup', 'windowMs'], type: 'int' },
  { env: 'GATE_IBEACON_UUID', path: ['decoders', 'ibeacon', 'uuid'], type: 'string' },
  { env: 'GATE_EDDYSTONE_NAMESPACE', path: ['decoders', 'eddystone', 'namespace'], type: 'string' },
  { env: 'GATE_MFG_COMPANY_ID', path: ['decoders', 'manufacturer', 'companyId'], type: 'int' },
  { env: 'GATE_CLOUD_URL', path: ['cloud', 'url'], type: 'string' },
  { env: 'GATE_KEY', path: ['cloud', 'gateKey'], type: 'string' },
  { env: 'MQTT_URL', path: ['mqtt', 'url'], type: 'string' },
  { env: 'MQTT_USERNAME', path: ['mqtt', 'username'], type: 'string' },
  { env: 'MQTT_PASSWORD', path: ['mqtt', 'password'], type: 'string' },
  { env: 'GATE_CMD_SECRET', path: ['mqtt', 'commandSecret'], type: 'string' },
  { env: 'LOG_LEVEL', path: ['log', 'level'], type: 'string' },
]

/** Where configuration comes from, lowest precedence first: defaults, file, environment, flags. */
export interface ConfigSources {
  /** path of a JSON config file (GATE_CONFIG when not given) */
  file?: string | undefined
  env?: NodeJS.ProcessEnv
  /** overrides from command-line flags, as a partial config object */
  overrides?: Record<string, unknown>
}

type Obj = Record<string, unknown>

function merge(base: Obj, over: Obj): Obj {
  const out: Obj = { ...base }
  for (const [key, value] of Object.entries(over)) {
    const current = out[key]
    if (
      value &&
      typeof value === 'object' &&
      !Array.isArray(value) &&
      current &&
      typeof current === 'object' &&
      !Array.isArray(current)
    ) {
      out[key] = merge(current as Obj, value as Obj)
    } else if (value !== undefined) {
      out[key] = value
    }
  }
  return out
}

function readFile(file: string, problems: string[]): Obj {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    problems.push(
      `config file ${file}: cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`,
    )
    return {}
  }
  try {
    const parsed: unknown = JSON.parse(text)
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      problems.push(`config file ${file}: must hold a JSON object`)
      return {}
    }
    return parsed as Obj
  } catch (err) {
    problems.push(`config file ${file}: not valid JSON (${(err as Error).message})`)
    return {}
  }
}

/**
 * Read the configuration once: defaults, then the file, then environment variables, then flags.
 * Every problem is reported at once in one GateError E_CONFIG_INVALID (context.problems lists them).
 * The result is deeply frozen.
 */
export function loadAgentConfig(sources: ConfigSources = {}): AgentConfig {
  const env = sources.env ?? {}
  const problems: string[] = []
  const file = sources.file ?? env['GATE_CONFIG']
  let merged: Obj = file ? readFile(file, problems) : {}
  const fromEnv = readEnv(ENV_MAP, env, problems)
  merged = merge(merge(merged, fromEnv), sources.overrides ?? {})
  const result = agentConfigSchema.safeParse(merged)
  if (!result.success) {
    for (const issue of result.error.issues) problems.push(describeIssue(issue))
  }
  if (problems.length > 0 || !result.success) {
    throw new GateError('E_CONFIG_INVALID', `invalid configuration:\n  - ${problems.join('\n  - ')}`, {
      context: { problems },
    })
  }
  const config = result.data
  if (config.source.kind === 'replay' && !config.source.replay.file) {
    throw new GateError(
      'E_CONFIG_INVALID',
      'invalid configuration:\n  - source.replay.file: required when source.kind is "replay" (GATE_REPLAY_FILE or --replay FILE)',
      { context: { problems: ['source.replay.file: required'] } },
    )
  }
  config.dataDir = path.resolve(config.dataDir)
  return deepFreeze(config)
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const where = issue.path.length > 0 ? issue.path.join('.') : '(root)'
  const envName = ENV_MAP.find((e) => e.path.join('.') === where)?.env
  return `${where}${envName ? ` (${envName})` : ''}: ${issue.message}`
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const child of Object.values(value)) deepFreeze(child)
    Object.freeze(value)
  }
  return value
}

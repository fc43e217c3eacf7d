import { z } from 'zod'
import { GateError } from '../shared/errors.js'
import { PARTITION_INTERVALS } from './partitions/intervals.js'

/** gate-cloud's configuration, from the environment (read once at start, every problem reported). */
export const cloudConfigSchema = z
  .object({
    /** Postgres connection string */
    databaseUrl: z.string().min(1).default('postgres://postgres@127.0.0.1:5432/postgres'),
    host: z.string().default('127.0.0.1'),
    port: z.number().int().min(0).max(65535).default(8080),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    /** bearer token for the ops query API and incidents (a secret: never logged); unset disables them */
    opsToken: z.string().min(16).optional(),
    /** pg pool size per node */
    poolMax: z.number().int().min(1).max(200).default(20),
    /** waiting longer than this for a connection answers 503 instead of hanging, ms */
    poolAcquireTimeoutMs: z.number().int().min(100).default(2_000),
    /** statements running longer are cancelled, ms */
    statementTimeoutMs: z.number().int().min(100).default(10_000),
    /** largest request body after decompression, bytes */
    maxBodyBytes: z
      .number()
      .int()
      .min(1_024)
      .default(8 * 1024 * 1024),
    /** records older than this (by the gate's clock) are rejected, days */
    maxRecordAgeDays: z.number().min(1).default(365),
    /** records further in the future than this are rejected (a broken gate clock), ms */
    maxFutureMs: z.number().int().min(0).default(3_600_000),
    /** a gate clock off by more than this raises a clock_skew incident, ms */
    maxSkewMs: z.number().int().min(0).default(120_000),
    /** records uploaded later than this after they were made raise a late_upload incident, ms */
    lateUploadMs: z.number().int().min(0).default(3_600_000),
    /** two admits of one participant at different gates within this window are a double entry, ms */
    doubleEntryWindowMs: z.number().int().min(0).default(300_000),
    partitions: z
      .object({
        interval: z.enum(PARTITION_INTERVALS as [string, ...string[]]).default('quarter'),
        premake: z.number().int().min(0).max(366).default(2),
        retentionDays: z.number().min(1).nullable().default(null),
        dropDetached: z.boolean().default(true),
        /** how often `serve` runs maintenance, ms */
        maintenanceIntervalMs: z.number().int().min(1_000).default(3_600_000),
      })
      .strict()
      .prefault({}),
  })
  .strict()
export type CloudConfig = z.infer<typeof cloudConfigSchema>

const ENV: Array<[string, string[], 'string' | 'int' | 'number' | 'bool' | 'nullable-number']> = [
  ['DATABASE_URL', ['databaseUrl'], 'string'],
  ['HOST', ['host'], 'string'],
  ['PORT', ['port'], 'int'],
  ['LOG_LEVEL', ['logLevel'], 'string'],
  ['OPS_TOKEN', ['opsToken'], 'string'],
  ['PG_POOL_MAX', ['poolMax'], 'int'],
  ['PG_ACQUIRE_TIMEOUT_MS', ['poolAcquireTimeoutMs'], 'int'],
  ['PG_STATEMENT_TIMEOUT_MS', ['statementTimeoutMs'], 'int'],
  ['MAX_BODY_BYTES', ['maxBodyBytes'], 'int'],
  ['MAX_RECORD_AGE_DAYS', ['maxRecordAgeDays'], 'number'],
  ['MAX_FUTURE_MS', ['maxFutureMs'], 'int'],
  ['MAX_SKEW_MS', ['maxSkewMs'], 'int'],
  ['LATE_UPLOAD_MS', ['lateUploadMs'], 'int'],
  ['DOUBLE_ENTRY_WINDOW_MS', ['doubleEntryWindowMs'], 'int'],
  ['PARTITION_INTERVAL', ['partitions', 'interval'], 'string'],
  ['PARTITION_PREMAKE', ['partitions', 'premake'], 'int'],
  ['PARTITION_RETENTION_DAYS', ['partitions', 'retentionDays'], 'nullable-number'],
  ['PARTITION_DROP_DETACHED', ['partitions', 'dropDetached'], 'bool'],
  ['PARTITION_MAINTENANCE_INTERVAL_MS', ['partitions', 'maintenanceIntervalMs'], 'int'],
]

/** Names of the environment variables gate-cloud reads (for the README and --help). */
export const CLOUD_ENV_VARS = ENV.map(([e]) => e)

/** Build the configuration from the environment plus overrides; every problem is reported at once. */
export function loadCloudConfig(
  env: NodeJS.ProcessEnv,
  overrides: Record<string, unknown> = {},
): CloudConfig {
  const raw: Record<string, unknown> = {}
  const problems: string[] = []
  for (const [name, path, type] of ENV) {
    const v = env[name]
    if (v === undefined || v === '') continue
    let value: unknown = v
    if (type === 'int' || type === 'number' || type === 'nullable-number') {
      if (type === 'nullable-number' && /^(none|off|never)$/i.test(v)) value = null
      else {
        value = Number(v)
        if (!Number.isFinite(value as number) || (type === 'int' && !Number.isInteger(value))) {
          problems.push(`${name}: expected a number, got "${v}"`)
          continue
        }
      }
    } else if (type === 'bool') {
      if (/^(1|true|yes|on)$/i.test(v)) value = true
      else if (/^(0|false|no|off)$/i.test(v)) value = false
      else {
        problems.push(`${name}: expected true/false, got "${v}"`)
        continue
      }
    }
    let cur = raw
    for (const k of path.slice(0, -1)) {
      if (typeof cur[k] !== 'object' || cur[k] === null) cur[k] = {}
      cur = cur[k] as Record<string, unknown>
    }
    cur[path[path.length - 1] as string] = value
  }
  for (const [k, v] of Object.entries(overrides)) if (v !== undefined) raw[k] = v
  const r = cloudConfigSchema.safeParse(raw)
  if (!r.success)
    for (const i of r.error.issues) problems.push(`${i.path.join('.') || '(root)'}: ${i.message}`)
  if (problems.length > 0 || !r.success) {
    throw new GateError('E_CONFIG_INVALID', `invalid configuration:\n  - ${problems.join('\n  - ')}`)
  }
  return Object.freeze(r.data)
}

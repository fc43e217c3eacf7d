import { z } from 'zod'

/**
 * A secret: long enough, and not the placeholder of deploy/k8s/examples/secret.example.yaml or
 * deploy/compose/example.env (an unchanged example would otherwise be a password everyone knows).
 */
const secretSchema = (min: number) =>
  z
    .string()
    .min(min)
    .refine((v) => !/CHANGE-?ME/i.test(v), {
      message: "is the example's placeholder: set a secret of your own",
    })

import { type EnvVar, readEnv } from '../shared/env-config.js'
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
    opsToken: secretSchema(16).optional(),
    /** pg pool size per node */
    poolMax: z.number().int().min(1).max(200).default(20),
    /** waiting longer than this for a connection answers 503 instead of hanging, ms */
    poolAcquireTimeoutMs: z.number().int().min(100).default(2_000),
    /** statements running longer are cancelled, ms */
    statementTimeoutMs: z.number().int().min(100).default(10_000),
    /** largest request body after decompression, bytes */
    /** requests a gate may make per minute on this node (uploads and roster pulls; a backlog drain of 1,000-record batches with 4 in flight is about 1,500); 0: no limit */
    gateRateLimitPerMin: z.number().int().min(0).default(3000),
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
    /** store batches with COPY first (false: INSERT only, for a server without COPY FROM STDIN such as PGlite) */
    ingestCopy: z.boolean().default(true),
    /** Redis for the L2 cache and the invalidation bus; unset (and no cluster): L1 alone */
    redisUrl: z.string().min(1).optional(),
    /** a Redis Cluster instead: host:port,host:port,... */
    redisClusterNodes: z
      .string()
      .regex(/^[^\s,:]+:\d+(,[^\s,:]+:\d+)*$/, 'expected host:port,host:port,...')
      .optional(),
    cache: z
      .object({
        l1MaxEntries: z.number().int().min(1).default(100_000),
        l1MaxBytes: z
          .number()
          .int()
          .min(1_024)
          .default(32 * 1024 * 1024),
        /** a Redis command not answered within this time fails over to L1 and the database, ms */
        redisTimeoutMs: z.number().int().min(10).default(200),
      })
      .strict()
      .prefault({}),
    monitor: z
      .object({
        /** a request slower than this is logged and counted, ms */
        slowRequestMs: z.number().int().min(1).default(1_000),
        /** a database query slower than this is logged and counted, ms */
        slowQueryMs: z.number().int().min(1).default(500),
        /** shed load (503 + Retry-After) when the event loop lags more than this, ms; 0: off */
        maxEventLoopDelayMs: z.number().int().min(0).default(1_000),
        /** ... or when event-loop utilisation passes this; 0: off (a busy loop that still answers in time is not overloaded) */
        maxEventLoopUtilization: z.number().min(0).max(1).default(0),
      })
      .strict()
      .prefault({}),
    /** Postgres streaming replicas for analytics reads, comma-separated URLs */
    readReplicaUrls: z.string().min(1).optional(),
    /** a replica further behind than this is not read from, ms */
    replicaMaxLagMs: z.number().int().min(0).default(5_000),
    /** reads about a gate within this time of its write through this node go to the primary, ms */
    readYourWritesMs: z.number().int().min(0).default(10_000),
    /** this node's name in alerts and the restart guard (default: the host name) */
    nodeName: z.string().min(1).max(128).optional(),
    /** the load-aware router in front of the nodes (`gate-cloud router`), shown on the dashboard */
    routerUrl: z.url({ protocol: /^https?$/ }).optional(),
    alerts: z
      .object({
        /** a JSON file of extra rules (see README) */
        rulesFile: z.string().min(1).optional(),
        /** an Alertmanager-compatible endpoint (POST /api/v2/alerts) */
        webhookUrl: z.string().url().optional(),
        /** MQTT broker for alert messages (and, later, the fleet) */
        mqttUrl: z.string().min(1).optional(),
        /** the cloud's broker account (the broker's ACL lets it read every gate and write commands; a secret) */
        mqttUsername: z.string().min(1).optional(),
        mqttPassword: secretSchema(1).optional(),
        mqttTopic: z.string().min(1).default('cloud/alerts'),
        evaluateIntervalMs: z.number().int().min(1_000).default(10_000),
        /** RESTART_SERVICE is refused before this uptime and within this interval of the last one, ms */
        restartMinUptimeMs: z.number().int().min(0).default(600_000),
        restartMinIntervalMs: z.number().int().min(0).default(1_800_000),
      })
      .strict()
      .prefault({}),
    fleet: z
      .object({
        /** a gate silent this long is stale: 3 metrics intervals plus the will delay, ms */
        silentAfterMs: z.number().int().min(1_000).default(35_000),
        maxTemperatureC: z.number().default(80),
        /** days of metrics history kept (gate_metrics, one partition per day) */
        historyRetentionDays: z.number().min(1).default(30),
        /** the HMAC secret gates verify commands with (GATE_CMD_SECRET on the gates; a secret) */
        commandSecret: secretSchema(16).optional(),
        /** shared-subscription group of the cloud nodes */
        shareGroup: z
          .string()
          .regex(/^[A-Za-z0-9_-]{1,64}$/)
          .default('gate-cloud'),
        /** false: plain subscriptions (one node; brokers without shared subscriptions, like aedes) */
        sharedSubscription: z.boolean().default(true),
      })
      .strict()
      .prefault({}),
    autoscale: z
      .object({
        /** target CPU per node, % of one core (the HPA manifest uses the same) */
        targetCpuPercent: z.number().min(1).max(100).default(70),
        min: z.number().int().min(1).default(2),
        max: z.number().int().min(1).default(10),
        /** replicas running now, in recommend mode */
        replicas: z.number().int().min(1).default(2),
        /** scale this Deployment through the Kubernetes API (in-cluster); unset: recommend only */
        kubernetesDeployment: z.string().min(1).optional(),
        intervalMs: z.number().int().min(1_000).default(30_000),
      })
      .strict()
      .refine((a) => a.min <= a.max, { message: 'AUTOSCALE_MIN must not be above AUTOSCALE_MAX' })
      .prefault({}),
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

/** Environment variables gate-cloud reads (once, at start), and where each lands in the config. */
export const CLOUD_ENV: readonly EnvVar[] = [
  { env: 'DATABASE_URL', path: ['databaseUrl'], type: 'string' },
  { env: 'HOST', path: ['host'], type: 'string' },
  { env: 'PORT', path: ['port'], type: 'int' },
  { env: 'LOG_LEVEL', path: ['logLevel'], type: 'string' },
  { env: 'OPS_TOKEN', path: ['opsToken'], type: 'string' },
  { env: 'PG_POOL_MAX', path: ['poolMax'], type: 'int' },
  { env: 'PG_ACQUIRE_TIMEOUT_MS', path: ['poolAcquireTimeoutMs'], type: 'int' },
  { env: 'PG_STATEMENT_TIMEOUT_MS', path: ['statementTimeoutMs'], type: 'int' },
  { env: 'MAX_BODY_BYTES', path: ['maxBodyBytes'], type: 'int' },
  { env: 'GATE_RATE_LIMIT_PER_MIN', path: ['gateRateLimitPerMin'], type: 'int' },
  { env: 'MAX_RECORD_AGE_DAYS', path: ['maxRecordAgeDays'], type: 'number' },
  { env: 'MAX_FUTURE_MS', path: ['maxFutureMs'], type: 'int' },
  { env: 'MAX_SKEW_MS', path: ['maxSkewMs'], type: 'int' },
  { env: 'LATE_UPLOAD_MS', path: ['lateUploadMs'], type: 'int' },
  { env: 'DOUBLE_ENTRY_WINDOW_MS', path: ['doubleEntryWindowMs'], type: 'int' },
  { env: 'INGEST_COPY', path: ['ingestCopy'], type: 'bool' },
  { env: 'REDIS_URL', path: ['redisUrl'], type: 'string' },
  { env: 'REDIS_CLUSTER_NODES', path: ['redisClusterNodes'], type: 'string' },
  { env: 'CACHE_L1_MAX_ENTRIES', path: ['cache', 'l1MaxEntries'], type: 'int' },
  { env: 'CACHE_L1_MAX_BYTES', path: ['cache', 'l1MaxBytes'], type: 'int' },
  { env: 'CACHE_REDIS_TIMEOUT_MS', path: ['cache', 'redisTimeoutMs'], type: 'int' },
  { env: 'SLOW_REQUEST_MS', path: ['monitor', 'slowRequestMs'], type: 'int' },
  { env: 'SLOW_QUERY_MS', path: ['monitor', 'slowQueryMs'], type: 'int' },
  { env: 'OVERLOAD_MAX_EVENT_LOOP_DELAY_MS', path: ['monitor', 'maxEventLoopDelayMs'], type: 'int' },
  { env: 'OVERLOAD_MAX_ELU', path: ['monitor', 'maxEventLoopUtilization'], type: 'number' },
  { env: 'READ_REPLICA_URLS', path: ['readReplicaUrls'], type: 'string' },
  { env: 'REPLICA_MAX_LAG_MS', path: ['replicaMaxLagMs'], type: 'int' },
  { env: 'READ_YOUR_WRITES_MS', path: ['readYourWritesMs'], type: 'int' },
  { env: 'NODE_NAME', path: ['nodeName'], type: 'string' },
  { env: 'ROUTER_URL', path: ['routerUrl'], type: 'string' },
  { env: 'ALERT_RULES_FILE', path: ['alerts', 'rulesFile'], type: 'string' },
  { env: 'ALERT_WEBHOOK_URL', path: ['alerts', 'webhookUrl'], type: 'string' },
  { env: 'MQTT_URL', path: ['alerts', 'mqttUrl'], type: 'string' },
  { env: 'MQTT_USERNAME', path: ['alerts', 'mqttUsername'], type: 'string' },
  { env: 'MQTT_PASSWORD', path: ['alerts', 'mqttPassword'], type: 'string' },
  { env: 'ALERT_MQTT_TOPIC', path: ['alerts', 'mqttTopic'], type: 'string' },
  { env: 'ALERT_EVALUATE_INTERVAL_MS', path: ['alerts', 'evaluateIntervalMs'], type: 'int' },
  { env: 'RESTART_MIN_UPTIME_MS', path: ['alerts', 'restartMinUptimeMs'], type: 'int' },
  { env: 'RESTART_MIN_INTERVAL_MS', path: ['alerts', 'restartMinIntervalMs'], type: 'int' },
  { env: 'FLEET_SILENT_AFTER_MS', path: ['fleet', 'silentAfterMs'], type: 'int' },
  { env: 'FLEET_MAX_TEMPERATURE_C', path: ['fleet', 'maxTemperatureC'], type: 'number' },
  { env: 'FLEET_SHARE_GROUP', path: ['fleet', 'shareGroup'], type: 'string' },
  { env: 'FLEET_SHARED_SUBSCRIPTION', path: ['fleet', 'sharedSubscription'], type: 'bool' },
  { env: 'FLEET_COMMAND_SECRET', path: ['fleet', 'commandSecret'], type: 'string' },
  { env: 'FLEET_HISTORY_RETENTION_DAYS', path: ['fleet', 'historyRetentionDays'], type: 'number' },
  { env: 'AUTOSCALE_TARGET_CPU', path: ['autoscale', 'targetCpuPercent'], type: 'number' },
  { env: 'AUTOSCALE_MIN', path: ['autoscale', 'min'], type: 'int' },
  { env: 'AUTOSCALE_MAX', path: ['autoscale', 'max'], type: 'int' },
  { env: 'AUTOSCALE_REPLICAS', path: ['autoscale', 'replicas'], type: 'int' },
  { env: 'AUTOSCALE_K8S_DEPLOYMENT', path: ['autoscale', 'kubernetesDeployment'], type: 'string' },
  { env: 'AUTOSCALE_INTERVAL_MS', path: ['autoscale', 'intervalMs'], type: 'int' },
  { env: 'PARTITION_INTERVAL', path: ['partitions', 'interval'], type: 'string' },
  { env: 'PARTITION_PREMAKE', path: ['partitions', 'premake'], type: 'int' },
  { env: 'PARTITION_RETENTION_DAYS', path: ['partitions', 'retentionDays'], type: 'nullable-number' },
  { env: 'PARTITION_DROP_DETACHED', path: ['partitions', 'dropDetached'], type: 'bool' },
  { env: 'PARTITION_MAINTENANCE_INTERVAL_MS', path: ['partitions', 'maintenanceIntervalMs'], type: 'int' },
]

/** Build the configuration from the environment plus overrides; every problem is reported at once. */
export function loadCloudConfig(
  env: NodeJS.ProcessEnv,
  overrides: Record<string, unknown> = {},
): CloudConfig {
  const problems: string[] = []
  const raw = readEnv(CLOUD_ENV, env, problems)
  for (const [k, v] of Object.entries(overrides)) if (v !== undefined) raw[k] = v
  const r = cloudConfigSchema.safeParse(raw)
  if (!r.success)
    for (const i of r.error.issues) problems.push(`${i.path.join('.') || '(root)'}: ${i.message}`)
  if (problems.length > 0 || !r.success) {
    throw new GateError('E_CONFIG_INVALID', `invalid configuration:\n  - ${problems.join('\n  - ')}`)
  }
  return Object.freeze(r.data)
}

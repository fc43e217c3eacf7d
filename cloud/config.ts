// gate-cloud's whole configuration, above 300 lines on purpose: one zod schema with every setting's
// bounds, default and description, which is its documentation (scripts/gen-reference.ts writes
// docs/reference/cloud-config.md from it), then CLOUD_ENV, the environment variable of each
// setting, in the same order. Kept in one file, the two read side by side and stay in step.
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
    databaseUrl: z
      .string()
      .min(1)
      .default('postgres://postgres@127.0.0.1:5432/postgres')
      .describe('Postgres connection string (a secret when it holds a password: never logged)'),
    host: z.string().default('127.0.0.1').describe('the address `serve` listens on'),
    port: z.number().int().min(0).max(65535).default(8080).describe('the HTTP port `serve` listens on'),
    logLevel: z
      .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
      .default('info')
      .describe('the log level (JSON lines on stdout)'),
    opsToken: secretSchema(16)
      .optional()
      .describe(
        'bearer token of the ops API: queries, incidents, fleet, perf, alerts and the dashboard (a secret: never logged); unset disables them',
      ),
    poolMax: z.number().int().min(1).max(200).default(20).describe('Postgres connections per node'),
    poolAcquireTimeoutMs: z
      .number()
      .int()
      .min(100)
      .default(2_000)
      .describe('no free connection within this time answers 503 instead of hanging, ms'),
    statementTimeoutMs: z
      .number()
      .int()
      .min(100)
      .default(10_000)
      .describe('statements running longer are cancelled, ms'),
    gateRateLimitPerMin: z
      .number()
      .int()
      .min(0)
      .default(3000)
      .describe(
        'requests a gate may make per minute on this node (uploads and roster pulls; a backlog drain of 1,000-record batches with 4 in flight is about 1,500); over it, 429 with Retry-After; 0: no limit',
      ),
    authFailuresPerMin: z
      .number()
      .int()
      .min(0)
      .default(30)
      .describe(
        'failed authentications (a missing, unknown or wrong gate key or ops token) one client address may make per minute on this node (IPv6: per /64); past it, 429 with Retry-After until the minute ends; valid keys from that address still work; 0: no limit',
      ),
    requestTimeoutMs: z
      .number()
      .int()
      .min(1_000)
      .default(60_000)
      .describe(
        "a request not received in full within this time is cut with 408, ms. A gate's largest batch (5,000 records, ~230 KB gzipped) must go within the gate's own 15 s timeout; 60 s still lets it through an uplink of ~30 kbit/s, and ends a body trickled a byte at a time",
      ),
    connectionTimeoutMs: z
      .number()
      .int()
      .min(1_000)
      .default(120_000)
      .describe(
        'a connection on which nothing moves either way for this long is closed, ms (longer than any answer takes: statements end at PG_STATEMENT_TIMEOUT_MS)',
      ),
    maxBodyBytes: z
      .number()
      .int()
      .min(1_024)
      .default(8 * 1024 * 1024)
      .describe('largest request body after decompression, bytes'),
    maxRecordAgeDays: z
      .number()
      .min(1)
      .default(365)
      .describe("records older than this (by the gate's clock) are refused, days"),
    maxFutureMs: z
      .number()
      .int()
      .min(0)
      .default(3_600_000)
      .describe('records further in the future than this are refused (a broken gate clock), ms'),
    maxSkewMs: z
      .number()
      .int()
      .min(0)
      .default(120_000)
      .describe('a gate clock off by more than this at upload raises a `clock_skew` incident, ms'),
    lateUploadMs: z
      .number()
      .int()
      .min(0)
      .default(3_600_000)
      .describe(
        "records uploaded more than this after they were made (both times on the gate's clock) raise a `late_upload` incident, ms",
      ),
    doubleEntryWindowMs: z
      .number()
      .int()
      .min(0)
      .default(300_000)
      .describe(
        'two admits of one participant at different gates within this window raise a `double_entry` incident, ms',
      ),
    ingestCopy: z
      .boolean()
      .default(true)
      .describe(
        'store batches with COPY (INSERT when a record is already stored); false: INSERT only, for a server without COPY FROM STDIN such as the embedded PGlite (which `npm start` sets)',
      ),
    redisUrl: z
      .string()
      .min(1)
      .optional()
      .describe(
        'Redis for the L2 cache, the invalidation bus and the shared fleet state (never logged); unset, and no cluster: the cache runs on L1 alone and says so in the log',
      ),
    redisClusterNodes: z
      .string()
      .regex(/^[^\s,:]+:\d+(,[^\s,:]+:\d+)*$/, 'expected host:port,host:port,...')
      .optional()
      .describe('a Redis Cluster instead: `host:port,host:port,...`'),
    cache: z
      .object({
        l1MaxEntries: z
          .number()
          .int()
          .min(1)
          .default(100_000)
          .describe('entries of the in-process cache (L1) per node'),
        l1MaxBytes: z
          .number()
          .int()
          .min(1_024)
          .default(32 * 1024 * 1024)
          .describe('bytes of the in-process cache (L1) per node, counted as the JSON size of the values'),
        redisTimeoutMs: z
          .number()
          .int()
          .min(10)
          .default(200)
          .describe('a Redis command not answered within this time fails over to L1 and Postgres, ms'),
      })
      .strict()
      .prefault({})
      .describe('the two-tier cache'),
    monitor: z
      .object({
        slowRequestMs: z
          .number()
          .int()
          .min(1)
          .default(1_000)
          .describe('a request slower than this is logged and counted, ms'),
        slowQueryMs: z
          .number()
          .int()
          .min(1)
          .default(500)
          .describe('a database query slower than this is logged and counted, ms'),
        maxEventLoopDelayMs: z
          .number()
          .int()
          .min(0)
          .default(1_000)
          .describe(
            'shed load (503 `E_OVERLOADED` with Retry-After) when the event loop lags more than this, ms; 0: off',
          ),
        maxEventLoopUtilization: z
          .number()
          .min(0)
          .max(1)
          .default(0)
          .describe(
            'shed load also when event-loop utilisation (0 to 1) passes this; 0: off (a busy loop that still answers in time is not overloaded, and start-up work would trip it)',
          ),
      })
      .strict()
      .prefault({})
      .describe('the performance monitor and load shedding'),
    readReplicaUrls: z
      .string()
      .min(1)
      .optional()
      .describe('Postgres streaming replicas for analytics reads, comma-separated URLs (never logged)'),
    replicaMaxLagMs: z
      .number()
      .int()
      .min(0)
      .default(5_000)
      .describe("a replica further behind the primary's WAL than this is not read from, ms"),
    readYourWritesMs: z
      .number()
      .int()
      .min(0)
      .default(10_000)
      .describe('reads about a gate within this time of its upload through this node go to the primary, ms'),
    nodeName: z
      .string()
      .min(1)
      .max(128)
      .optional()
      .describe("this node's name in alerts, load reports and the restart guard (default: the host name)"),
    routerUrl: z
      .url({ protocol: /^https?$/ })
      .optional()
      .describe(
        'the load-aware router in front of the nodes (`gate-cloud router`), whose view the dashboard shows',
      ),
    alerts: z
      .object({
        rulesFile: z
          .string()
          .min(1)
          .optional()
          .describe(
            'a JSON file of extra alert rules (a rule of the same name replaces a built-in one; a bad file stops the start)',
          ),
        webhookUrl: z
          .string()
          .url()
          .optional()
          .describe("an Alertmanager-compatible endpoint: alerts are POSTed in Alertmanager's API v2 format"),
        mqttUrl: z
          .string()
          .min(1)
          .optional()
          .describe(
            'the MQTT broker: the fleet monitor runs, and alerts are published there, when it is set',
          ),
        mqttUsername: z
          .string()
          .min(1)
          .optional()
          .describe(
            "the cloud's broker account (the broker's ACL lets it read every gate and write commands)",
          ),
        mqttPassword: secretSchema(1).optional().describe("the broker account's password (a secret)"),
        mqttTopic: z
          .string()
          .min(1)
          .default('cloud/alerts')
          .describe('the topic alerts are published on (QoS 1)'),
        evaluateIntervalMs: z
          .number()
          .int()
          .min(1_000)
          .default(10_000)
          .describe('how often the alert rules are evaluated, ms'),
        restartMinUptimeMs: z
          .number()
          .int()
          .min(0)
          .default(600_000)
          .describe('the RESTART_SERVICE action is refused before this uptime, ms'),
        restartMinIntervalMs: z
          .number()
          .int()
          .min(0)
          .default(1_800_000)
          .describe(
            "the RESTART_SERVICE action is refused within this time of this node's last self-restart, ms",
          ),
      })
      .strict()
      .prefault({})
      .describe('alerts and the MQTT connection'),
    fleet: z
      .object({
        silentAfterMs: z
          .number()
          .int()
          .min(1_000)
          .default(35_000)
          .describe('a gate that announced no keep-alive and is silent this long is `stale`, ms'),
        maxTemperatureC: z
          .number()
          .default(80)
          .describe('a gate reporting a higher temperature raises `fleet.high_temperature`, °C'),
        historyRetentionDays: z
          .number()
          .min(1)
          .default(30)
          .describe('days of gate metrics history kept (`gate_metrics`, one partition per day)'),
        commandSecret: secretSchema(16)
          .optional()
          .describe(
            "the HMAC secret commands to gates are signed with (the gates' `GATE_CMD_SECRET`; a secret); unset: commands are off",
          ),
        shareGroup: z
          .string()
          .regex(/^[A-Za-z0-9_-]{1,64}$/)
          .default('gate-cloud')
          .describe(
            "the cloud nodes' shared-subscription group: the nodes of one group split the fleet's messages",
          ),
        sharedSubscription: z
          .boolean()
          .default(true)
          .describe(
            'false: plain subscriptions (one node; brokers without shared subscriptions, such as aedes)',
          ),
        alertBurst: z
          .number()
          .int()
          .min(1)
          .default(10)
          .describe(
            'alerts of one kind one gate may raise at once; past them, a flooding gate (broken or forged) is held to `alertsPerHour`',
          ),
        alertsPerHour: z
          .number()
          .positive()
          .default(30)
          .describe(
            'alerts of one kind one gate may raise per hour after its burst; the rest are suppressed',
          ),
      })
      .strict()
      .prefault({})
      .describe('the fleet monitor (needs `MQTT_URL`)'),
    autoscale: z
      .object({
        targetCpuPercent: z
          .number()
          .min(1)
          .max(100)
          .default(70)
          .describe('target CPU per node, % of one core (the HPA manifest uses the same)'),
        min: z.number().int().min(1).default(2).describe('fewest replicas'),
        max: z.number().int().min(1).default(10).describe('most replicas (not below the minimum)'),
        replicas: z
          .number()
          .int()
          .min(1)
          .default(2)
          .describe('replicas running now, in recommend mode (without `AUTOSCALE_K8S_DEPLOYMENT`)'),
        kubernetesDeployment: z
          .string()
          .min(1)
          .optional()
          .describe('scale this Deployment through the Kubernetes API (in-cluster); unset: recommend only'),
        intervalMs: z
          .number()
          .int()
          .min(1_000)
          .default(30_000)
          .describe('how often the autoscaler decides, ms'),
      })
      .strict()
      .refine((a) => a.min <= a.max, { message: 'AUTOSCALE_MIN must not be above AUTOSCALE_MAX' })
      .prefault({})
      .describe('the autoscaler (the Kubernetes HPA algorithm)'),
    partitions: z
      .object({
        interval: z
          .enum(PARTITION_INTERVALS as [string, ...string[]])
          .default('quarter')
          .describe('one partition of `attendance_records` per this interval (UTC; weeks start on Monday)'),
        premake: z
          .number()
          .int()
          .min(0)
          .max(366)
          .default(2)
          .describe('partitions made ahead of the current one'),
        retentionDays: z
          .number()
          .min(1)
          .nullable()
          .default(null)
          .describe(
            'partitions that ended more than this many days ago are detached (and dropped); none: kept for ever',
          ),
        dropDetached: z
          .boolean()
          .default(true)
          .describe('drop the partitions retention detaches; false: detach only'),
        maintenanceIntervalMs: z
          .number()
          .int()
          .min(1_000)
          .default(3_600_000)
          .describe('how often `serve` maintains the partitions, ms'),
      })
      .strict()
      .prefault({})
      .describe('the partitions of the check-ins'),
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
  { env: 'AUTH_FAILURES_PER_MIN', path: ['authFailuresPerMin'], type: 'int' },
  { env: 'HTTP_REQUEST_TIMEOUT_MS', path: ['requestTimeoutMs'], type: 'int' },
  { env: 'HTTP_CONNECTION_TIMEOUT_MS', path: ['connectionTimeoutMs'], type: 'int' },
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
  { env: 'FLEET_ALERT_BURST', path: ['fleet', 'alertBurst'], type: 'int' },
  { env: 'FLEET_ALERTS_PER_HOUR', path: ['fleet', 'alertsPerHour'], type: 'number' },
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

import type { FastifyInstance } from 'fastify'
import type pg from 'pg'
import type { Logger } from 'pino'
import { errorMessage } from '../shared/errors.js'
import { Shutdown } from '../shared/shutdown.js'
import { watchSupervisor } from '../shared/supervisor.js'
import { appendAudit } from './audit/trail.js'
import { connectRedis, redisSettings } from './cache/redis.js'
import { createCache } from './cache/tiered-cache.js'
import { warmCache } from './cache/warm.js'
import type { CloudConfig } from './config.js'
import { migrateUp } from './db/migrate.js'
import { connectClient, createPool } from './db/pool.js'
import { readRouterFor } from './db/replicas.js'
import { EXIT } from './exit-codes.js'
import { createFleetMonitor } from './fleet/create.js'
import { buildApp } from './http/app.js'
import { createPerfMonitor, type PerfMonitor } from './monitor/perf.js'
import { type Recovery, startRecovery } from './monitor/recovery.js'
import { createRegistry } from './monitor/registry.js'
import { PlanAdvisor } from './monitor/suggestions.js'
import { eraseExpired } from './participants/privacy.js'
import { maintainAllPartitions } from './partitions/policies.js'

/**
 * How long the whole stop may take: what has not stopped by then (a request stuck on a database
 * that does not answer, a socket left open) does not keep the process; it exits, and systemd or
 * Kubernetes starts it again. Each step has a deadline of its own within it.
 */
const STOP_DEADLINE_MS = 10_000
/** a step's deadline unless it has its own, ms */
const STEP_DEADLINE_MS = 1_000

/**
 * `gate-cloud serve`, from start to stop. The schema is brought up to date and the partitions
 * made; then the parts start in order, each joining the shutdown as it starts: the pool, the
 * performance monitor, Redis, the cache, the read replicas, the fleet monitor, the HTTP app,
 * partition maintenance, and once listening, alerts and the autoscaler. On SIGTERM, SIGINT, the
 * supervisor gone, or a recovery action's restart, they stop in reverse order, each step on its
 * own: one that fails or overruns its deadline does not keep the later ones (the pool last) from
 * stopping. Resolves with the exit code.
 */
export async function serve(config: CloudConfig, log: Logger): Promise<number> {
  if (!(await prepareDatabase(config, log))) return EXIT.database
  const shutdown = new Shutdown()
  const started = await startParts(config, log, shutdown).catch(async (err: unknown) => {
    await shutdown.stop({ log, timeoutMs: STEP_DEADLINE_MS })
    throw err
  })
  try {
    await started.app.listen({ host: config.host, port: config.port })
  } catch (err) {
    await shutdown.stop({ log, timeoutMs: STEP_DEADLINE_MS })
    throw err
  }
  return new Promise<number>((resolve) => {
    let exitCode: number = EXIT.ok
    let stopping = false
    const stop = (signal: string) => {
      if (stopping) return
      stopping = true
      log.info({ signal }, 'stopping')
      const deadline = setTimeout(() => {
        log.error('shutdown did not finish within 10 s; exiting')
        process.exit(EXIT.failure)
      }, STOP_DEADLINE_MS)
      deadline.unref()
      void shutdown.stop({ log, timeoutMs: STEP_DEADLINE_MS }).then(() => {
        clearTimeout(deadline)
        log.info('stopped')
        resolve(exitCode)
      })
    }
    startRecovery({
      config,
      pool: started.pool,
      perf: started.perf,
      advisor: new PlanAdvisor(started.pool),
      registry: started.registry,
      log,
      // RESTART_SERVICE: drain and close like SIGTERM, then exit non-zero for the supervisor to restart
      requestRestart: (reason) => {
        log.warn({ reason }, 'restarting the service (recovery action)')
        exitCode = EXIT.restart
        stop('RESTART_SERVICE')
      },
    })
      .then((r) => {
        started.setRecovery(r)
        shutdown.started('alerts and autoscaler', () => r.stop())
        if (stopping) void r.stop() // a stop that came first did not know it
      })
      .catch((err) => log.error({ err: errorMessage(err) }, 'alerts and autoscaler not started'))
    process.once('SIGTERM', () => stop('SIGTERM'))
    process.once('SIGINT', () => stop('SIGINT'))
    watchSupervisor(stop)
  })
}

/** Migrate the schema and make the partitions ahead; false when the database cannot be reached. */
async function prepareDatabase(config: CloudConfig, log: Logger): Promise<boolean> {
  const client = await connectClient(config.databaseUrl).catch((err) => {
    log.fatal({ err: errorMessage(err) }, 'cannot connect to the database')
    return null
  })
  if (!client) return false
  try {
    const m = await migrateUp(client, log)
    if (m.applied.length) log.info({ applied: m.applied }, 'migrations applied')
    await maintainAllPartitions(client, config, log)
  } finally {
    await client.end()
  }
  return true
}

/** Start every part before listening, in order; each joins `shutdown` as it starts. */
async function startParts(config: CloudConfig, log: Logger, shutdown: Shutdown) {
  const pool = createPool(config, log)
  shutdown.started('database pool', () => pool.end())
  const registry = createRegistry()
  const perf: PerfMonitor = createPerfMonitor(config, log, registry)
  perf.start()
  shutdown.started('performance monitor', () => perf.stop())
  const redis = connectRedis(redisSettings(config), log)
  if (redis) shutdown.started('redis', () => redis.close(), 500)
  const cache = createCache(config, { redis, log: log.child({ component: 'cache' }), registry, perf })
  await cache.start()
  shutdown.started('cache', () => cache.stop(), 500)
  const reads = readRouterFor(config, pool, log)
  if (reads) {
    await reads.start()
    shutdown.started('read replicas', () => reads.stop(), 500)
  }
  let recovery: Recovery | null = null
  const fleet = createFleetMonitor(config, {
    pool,
    redis,
    registry,
    log,
    onAlert: (a) => {
      log.warn({ fleetAlert: a }, a.summary)
      void recovery?.engine.raise({ rule: `fleet.${a.kind}`, severity: a.severity, summary: a.summary })
    },
  })
  if (fleet) {
    await fleet.start()
    shutdown.started('fleet monitor', () => fleet.stop(), 1_500)
  }
  const app: FastifyInstance = await buildApp({
    config,
    pool,
    log,
    redis,
    cache,
    registry,
    perf,
    ...(reads ? { reads } : {}),
    ...(fleet ? { fleet } : {}),
    alertsStatus: () => ({
      alerts: recovery
        ? { firing: recovery.engine.firing(), recent: recovery.engine.recent.slice(-20) }
        : null,
      autoscaler: recovery
        ? { mode: recovery.autoscaler.mode, last: recovery.autoscaler.lastDecision }
        : null,
    }),
  })
  // stops accepting, then finishes the requests in flight
  shutdown.started('http', () => app.close(), 5_000)
  warmCache(cache, pool, log, config.cache.l1MaxEntries).catch((err) =>
    log.warn({ err: errorMessage(err) }, 'cache warm-up failed'),
  )
  const maintenance = setInterval(() => {
    maintainPartitionsNow(config, log).catch((err) =>
      log.error({ err: errorMessage(err) }, 'partition maintenance failed'),
    )
    // personal data past its event's retention, erased on the same schedule
    eraseExpiredNow(pool, log).catch((err) =>
      log.error({ err: errorMessage(err) }, 'erasing personal data past its retention failed'),
    )
  }, config.partitions.maintenanceIntervalMs)
  maintenance.unref()
  shutdown.started('partition maintenance', () => clearInterval(maintenance))
  return {
    app,
    pool,
    perf,
    registry,
    /** alerts and the autoscaler, once started: the fleet's alerts go to them */
    setRecovery: (r: Recovery) => {
      recovery = r
    },
  }
}

/** Erase what has outlived its event's retention, and say so in the log and the audit trail. */
async function eraseExpiredNow(pool: pg.Pool, log: Logger): Promise<void> {
  for (const { eventId, erased } of await eraseExpired(pool)) {
    log.info({ eventId, erased }, 'personal data past its retention erased')
    await appendAudit(pool, {
      actor: 'retention',
      accountId: null,
      role: 'system',
      action: 'retention.erase',
      target: null,
      eventId,
      sourceIp: null,
      outcome: 'done',
      detail: { participants: erased },
    })
  }
}

/** One partition maintenance on a connection of its own (the pool serves requests). */
async function maintainPartitionsNow(config: CloudConfig, log: Logger): Promise<void> {
  const client = await connectClient(config.databaseUrl, 'gate-cloud-partitions')
  try {
    await maintainAllPartitions(client, config, log)
  } finally {
    await client.end()
  }
}

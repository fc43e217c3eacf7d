import Fastify, { type FastifyInstance } from 'fastify'
import type pg from 'pg'
import type { Logger } from 'pino'
import type { Registry } from 'prom-client'
import type { RedisPair } from '../cache/redis.js'
import type { TieredCache } from '../cache/tiered-cache.js'
import type { CloudConfig } from '../config.js'
import type { ReadRouter } from '../db/replicas.js'
import type { FleetMonitor } from '../fleet/monitor.js'
import type { PerfMonitor } from '../monitor/perf.js'
import { errorHandler } from './errors.js'
import { authFailuresPlugin } from './plugins/app/auth-failures.js'
import { cachePlugin } from './plugins/app/cache.js'
import { changeListenersPlugin } from './plugins/app/change-listeners.js'
import { configPlugin } from './plugins/app/config.js'
import { gateAuthPlugin } from './plugins/app/gate-auth.js'
import { gzipBodiesPlugin } from './plugins/app/gzip-bodies.js'
import { nodeLoadPlugin } from './plugins/app/node-load.js'
import { peopleAuthPlugin } from './plugins/app/people-auth.js'
import { perfPlugin } from './plugins/app/perf.js'
import { requestMetricsPlugin } from './plugins/app/request-metrics.js'
import { rosterIndexPlugin } from './plugins/app/roster-index.js'
import { pgPlugin } from './plugins/external/pg.js'
import { rateLimitPlugin } from './plugins/external/rate-limit.js'
import { redisPlugin } from './plugins/external/redis.js'
import { underPressurePlugin } from './plugins/external/under-pressure.js'
import { requestLogging } from './request-log.js'
import { accessRoutes } from './routes/access.js'
import { accountRoutes } from './routes/accounts.js'
import { checkoutRoutes } from './routes/checkout.js'
import { consoleRoutes } from './routes/console.js'
import { dashboardRoutes } from './routes/dashboard.js'
import { fleetRoutes } from './routes/fleet.js'
import { healthRoutes } from './routes/health.js'
import { incidentRoutes } from './routes/incidents.js'
import { metricsRoutes } from './routes/metrics.js'
import { type AlertsStatus, perfRoutes } from './routes/perf.js'
import { queryRoutes } from './routes/query.js'
import { rosterRoutes } from './routes/roster.js'
import { syncRoutes } from './routes/sync.js'

/**
 * What the HTTP app is built from. A client given here is the caller's to stop; one the app makes
 * for itself is stopped when the app closes.
 */
export interface AppDeps {
  config: CloudConfig
  log: Logger
  /** the primary's pool (made from the configuration when not given) */
  pool?: pg.Pool
  /** the server clock, ms (injectable for tests) */
  now?: () => number
  /** how long a checked gate key is trusted before it is checked again, ms (revocation delay) */
  authCacheMs?: number
  /** the cache's Redis connections (none when not given: the app's own cache is L1 alone) */
  redis?: RedisPair | null
  /** the two-tier cache (made and started here when not given) */
  cache?: TieredCache
  /** where metrics go (a fresh registry with the process metrics when not given) */
  registry?: Registry
  /** the performance monitor (a new one, started here, when not given) */
  perf?: PerfMonitor
  /** the fleet over MQTT (MQTT_URL) */
  fleet?: FleetMonitor
  /** analytics reads on Postgres replicas (READ_REPLICA_URLS) */
  reads?: ReadRouter
  /** alerts firing, recent alert events and the autoscaler's last decision (the server sets it) */
  alertsStatus?: AlertsStatus
}

/**
 * The cloud HTTP API as a Fastify instance (not listening): the clients as plugins (Postgres,
 * Redis, the monitor, the cache, the change listeners, gate and ops authentication), then one
 * plugin per route group: health, gate sync, roster, query API, fleet, monitor, metrics, dashboard.
 */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const { config, log } = deps
  const app = Fastify({
    // request lines with query strings redacted (a key or token sent as ?key= / ?token=)
    ...requestLogging(log),
    bodyLimit: config.maxBodyBytes,
    return503OnClosing: true,
    // a request (headers and body) must arrive within requestTimeoutMs (408 otherwise: a body trickled
    // a byte at a time does not hold a connection for minutes), checked every few seconds
    requestTimeout: config.requestTimeoutMs,
    connectionTimeout: config.connectionTimeoutMs,
    http: {
      headersTimeout: Math.min(60_000, config.requestTimeoutMs),
      connectionsCheckingInterval: Math.min(5_000, Math.max(250, config.requestTimeoutMs / 4)),
    },
  })
  app.setErrorHandler(errorHandler)
  const fleet = deps.fleet ?? null

  // the clients, each stopped on close when it was made here (in reverse order of registration)
  await app.register(configPlugin, { config })
  await app.register(pgPlugin, { log, pool: deps.pool, reads: deps.reads })
  await app.register(perfPlugin, { log, registry: deps.registry, perf: deps.perf })
  await app.register(requestMetricsPlugin)
  await app.register(nodeLoadPlugin)
  await app.register(underPressurePlugin)
  await app.register(redisPlugin, { redis: deps.redis ?? null })
  await app.register(cachePlugin, { log, cache: deps.cache })
  await app.register(rosterIndexPlugin, { log })
  await app.register(gzipBodiesPlugin)
  await app.register(authFailuresPlugin)
  await app.register(gateAuthPlugin, { authCacheMs: deps.authCacheMs })
  await app.register(peopleAuthPlugin)
  await app.register(changeListenersPlugin, { log })
  await app.register(rateLimitPlugin)

  // the routes
  await app.register(healthRoutes)
  await app.register(metricsRoutes)
  await app.register(syncRoutes, { now: deps.now ?? Date.now })
  await app.register(rosterRoutes)
  await app.register(accessRoutes)
  await app.register(queryRoutes)
  await app.register(fleetRoutes, { fleet })
  await app.register(perfRoutes, { alertsStatus: deps.alertsStatus })
  await app.register(dashboardRoutes, { fleet, alertsStatus: deps.alertsStatus })
  await app.register(consoleRoutes)
  await app.register(incidentRoutes)
  await app.register(accountRoutes)
  await app.register(checkoutRoutes, { fleet })
  return app
}

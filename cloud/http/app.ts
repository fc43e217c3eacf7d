import os from 'node:os'
import { createGunzip } from 'node:zlib'
import rateLimit from '@fastify/rate-limit'
import underPressure from '@fastify/under-pressure'
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify'
import type pg from 'pg'
import type { Logger } from 'pino'
import { Counter, type Registry } from 'prom-client'
import { z } from 'zod'
import { GateError } from '../../shared/errors.js'
import { formatLoadHeader, type NodeLoad } from '../../shared/load-balancer.js'
import type { RosterDelta } from '../../shared/sync.js'
import { ChangeListener } from '../cache/change-listener.js'
import { CACHE_KEYS, CACHE_TTL_MS } from '../cache/keys.js'
import { ROSTER_TAG } from '../cache/tags.js'
import { createCache, type TieredCache } from '../cache/tiered-cache.js'
import type { CloudConfig } from '../config.js'
import { ping } from '../db/pool.js'
import type { ReadRouter } from '../db/replicas.js'
import type { FleetMonitor } from '../fleet/monitor.js'
import { postgresHistoryReader } from '../fleet/stores.js'
import { GateAuthenticator, type GateIdentity } from '../gates/store.js'
import { openIncidents } from '../incidents/queries.js'
import { createIngestCounters } from '../ingest/counters.js'
import { ingestBatch } from '../ingest/ingest.js'
import { RosterIndex } from '../ingest/roster-index.js'
import { createPerfMonitor, type PerfMonitor } from '../monitor/perf.js'
import { PlanAdvisor } from '../monitor/suggestions.js'
import { DEFAULT_ROSTER_LIMIT, rosterDelta } from '../roster/delta.js'
import { AuthFailureLimiter } from './auth-failures.js'
import { dashboardRoutes } from './dashboard-routes.js'
import { errorHandler } from './errors.js'
import { fleetRoutes } from './fleet-routes.js'
import { authHooks } from './gate-auth.js'
import { createRegistry, httpMetrics } from './metrics.js'
import { perfRoutes } from './perf-routes.js'
import { queryRoutes } from './query-routes.js'
import { requestLogging } from './request-log.js'
import { isStream } from './streams.js'

/** What the HTTP app is built from. */
export interface AppDeps {
  config: CloudConfig
  pool: pg.Pool
  log: Logger
  /** the server clock, ms (injectable for tests) */
  now?: () => number
  /** how long a checked gate key is trusted before it is checked again, ms (revocation delay) */
  authCacheMs?: number
  /** the two-tier cache (L1 alone when not given) */
  cache?: TieredCache
  /** where metrics go (a fresh registry with the process metrics when not given) */
  registry?: Registry
  /** the performance monitor (a new one, started here, when not given) */
  perf?: PerfMonitor
  /** the fleet over MQTT (MQTT_URL) */
  fleet?: FleetMonitor
  /** analytics reads on Postgres replicas (READ_REPLICA_URLS) */
  reads?: ReadRouter
  /** alerts firing, recent alert events and the autoscaler's last decision (serve sets it) */
  alertsStatus?: () => Record<string, unknown>
}

const RosterQuery = z.object({
  since: z.coerce.number().int().min(0).default(0),
  limit: z.coerce.number().int().min(1).max(10_000).default(DEFAULT_ROSTER_LIMIT),
})

/** The cloud HTTP API as a Fastify instance (not listening): health, gate sync, roster, query API. */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const { config, pool } = deps
  const now = deps.now ?? Date.now
  const app = Fastify({
    // request lines with query strings redacted (a key or token sent as ?key= / ?token=)
    ...requestLogging(deps.log),
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
  const auth = new GateAuthenticator(pool, deps.authCacheMs ?? 30_000)
  // keys and tokens are checked on request, before the body is read (gate-auth.ts)
  const authenticate = authHooks({
    auth,
    opsToken: config.opsToken,
    limiter: config.authFailuresPerMin > 0 ? new AuthFailureLimiter(config.authFailuresPerMin) : null,
  })
  app.setErrorHandler(errorHandler)
  const registry = deps.registry ?? createRegistry()
  httpMetrics(app, registry)
  const ownPerf = !deps.perf
  const perf = deps.perf ?? createPerfMonitor(config, deps.log, registry)
  if (ownPerf) perf.start()
  // this node's load: GET /v1/load (the router polls it) and a header on the gates' answers (gates
  // with several cloud URLs choose by it)
  let inFlight = 0
  const nodeName = config.nodeName ?? os.hostname()
  const load = (): NodeLoad => {
    const s = perf.latest()
    return {
      node: nodeName,
      ts: Date.now(),
      inFlight,
      elu: Math.min(1, Math.max(0, s?.elu ?? 0)),
      cpuPercent: Math.max(0, s?.cpuPercent ?? 0),
      dbConnections: Math.max(0, pool.totalCount - pool.idleCount),
      dbWaiting: pool.waitingCount,
    }
  }
  app.addHook('onRequest', async (req, reply) => {
    if (isStream(req)) return // open as long as a dashboard tab: neither load nor a request to time
    inFlight++
    // 'close' comes after every response, and also when the client leaves first (no onResponse then)
    reply.raw.once('close', () => {
      inFlight--
      if (!reply.raw.writableFinished)
        perf.recordRequest(req.method, req.routeOptions.url ?? 'unmatched', 499, reply.elapsedTime, {
          reqId: req.id,
        })
    })
  })
  app.addHook('onSend', async (req, reply, payload) => {
    if (req.url.startsWith('/v1/sync/') || req.url.startsWith('/v1/roster'))
      reply.header('X-Gate-Cloud-Load', formatLoadHeader(load()))
    return payload
  })
  app.addHook('onResponse', async (req, reply) => {
    if (isStream(req)) return
    perf.recordRequest(req.method, req.routeOptions.url ?? 'unmatched', reply.statusCode, reply.elapsedTime, {
      reqId: req.id,
    })
  })
  // overload: shed with 503 + Retry-After rather than queue without bound
  const shed = new Counter({
    name: 'http_shed_requests_total',
    help: 'Requests answered 503 because the node was overloaded, by reason',
    labelNames: ['reason'],
    registers: [registry],
  })
  if (config.monitor.maxEventLoopDelayMs > 0 || config.monitor.maxEventLoopUtilization > 0) {
    await app.register(underPressure, {
      maxEventLoopDelay: config.monitor.maxEventLoopDelayMs,
      maxEventLoopUtilization: config.monitor.maxEventLoopUtilization,
      retryAfter: 5,
      sampleInterval: 500,
      pressureHandler: (req, reply, type, value) => {
        shed.inc({ reason: type })
        req.log.warn({ reason: type, value }, 'overloaded: request shed')
        reply
          .status(503)
          .header('Retry-After', '5')
          .send({
            error: { code: 'E_OVERLOADED', message: `the service is overloaded (${type}); retry later` },
          })
      },
    })
  }
  const ownCache = !deps.cache
  const cache = deps.cache ?? createCache(config, { redis: null, log: deps.log, registry, perf })
  if (ownCache) await cache.start()
  // any change to participants (import, API, plain SQL) drops the cached roster and token look-ups,
  // and is read into the roster index (the ingest's event check)
  const rosterIndex = new RosterIndex(pool, deps.log)
  const listener = new ChangeListener(
    config.databaseUrl,
    'participants_changed',
    () => {
      cache.invalidateTags(ROSTER_TAG).catch((err) => deps.log.warn({ err }, 'roster invalidation failed'))
      void rosterIndex.refresh()
    },
    deps.log,
  )
  await listener.start()
  await rosterIndex.refresh()
  app.addHook('onClose', async () => {
    await listener.stop()
    if (ownCache) await cache.stop()
    if (ownPerf) perf.stop()
  })

  // gzip request bodies (a gate's batch compresses ~5x); the body limit applies after decompression
  app.addHook('preParsing', async (req, _reply, payload) => {
    const enc = req.headers['content-encoding']
    if (!enc || enc === 'identity') return payload
    if (enc !== 'gzip')
      throw Object.assign(new Error(`unsupported content-encoding ${enc}`), { statusCode: 415 })
    const gunzip = createGunzip()
    payload.on('error', (e) => gunzip.destroy(e))
    gunzip.on('error', () => {})
    // Fastify compares Content-Length with the bytes received on the wire, which it reads from here
    const out = gunzip as typeof gunzip & { receivedEncodedLength: number }
    out.receivedEncodedLength = 0
    payload.on('data', (chunk: Buffer) => {
      out.receivedEncodedLength += chunk.length
    })
    return payload.pipe(out)
  })

  // a revoked or rotated key stops working on every node at once, not when its cache entry expires
  const keysListener = new ChangeListener(
    config.databaseUrl,
    'gate_keys_changed',
    () => auth.clear(),
    deps.log,
  )
  await keysListener.start()
  app.addHook('onClose', async () => keysListener.stop())

  app.get('/healthz', async () => ({ status: 'ok' }))
  app.get('/v1/load', async () => load())
  app.get('/readyz', async (_req, reply) => {
    try {
      await ping(pool)
      return { status: 'ready' }
    } catch {
      return reply.status(503).header('Retry-After', '5').send({ status: 'database unavailable' })
    }
  })

  // the gate routes: the key is checked first, then the gate's rate (per gate, not per address: a
  // venue's gates share one NAT address); over it, 429 with Retry-After, which the syncer honours.
  // Both on request, so neither a stranger nor a gate over its rate has its body read.
  app.decorateRequest('gate', null)
  const gateRoute = {
    onRequest: authenticate.gate,
    config: {
      rateLimit:
        config.gateRateLimitPerMin > 0
          ? {
              max: config.gateRateLimitPerMin,
              timeWindow: 60_000,
              keyGenerator: (req: FastifyRequest) => `gate:${req.gate?.gateId}`,
            }
          : (false as const),
    },
  }
  await app.register(rateLimit, { global: false, hook: 'onRequest' })

  const ingestCounters = createIngestCounters(registry, () => rosterIndex.size)
  app.post('/v1/sync/checkins', gateRoute, async (req, reply) => {
    const { gateId, eventId } = req.gate as GateIdentity
    const result = await perf.time('ingest.batch', () =>
      ingestBatch(pool, gateId, req.body, now(), config, {
        eventId,
        roster: rosterIndex,
        counters: ingestCounters,
      }),
    )
    deps.reads?.noteWrite(gateId)
    if (result.stored.length === 0 && result.rejected.length > 0) return reply.status(422).send(result)
    return result
  })

  app.get('/v1/roster', gateRoute, async (req, reply) => {
    const { eventId } = req.gate as GateIdentity
    const q = RosterQuery.safeParse(req.query)
    if (!q.success)
      throw new GateError(
        'E_INPUT',
        q.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '),
      )
    const { since, limit } = q.data
    const delta = (await cache.getOrLoad(
      CACHE_KEYS.roster(eventId, since, limit),
      () => perf.time('roster.delta', () => rosterDelta(pool, eventId, since, limit)),
      { ttlMs: CACHE_TTL_MS.roster, tags: [ROSTER_TAG] },
    )) as RosterDelta
    const etag = `"roster-${delta.cursor}"`
    reply.header('ETag', etag).header('Cache-Control', 'no-cache')
    if (delta.changes.length === 0 && req.headers['if-none-match'] === etag) return reply.status(304).send()
    return delta
  })

  const opsAuth = authenticate.ops
  await app.register(queryRoutes, {
    pool,
    opsAuth,
    cache,
    perf,
    ...(deps.reads ? { reads: deps.reads } : {}),
  })
  await app.register(fleetRoutes, {
    fleet: deps.fleet ?? null,
    opsAuth,
    commandSecret: config.fleet.commandSecret,
  })
  await app.register(perfRoutes, {
    perf,
    advisor: new PlanAdvisor(pool),
    slowQueryMs: config.monitor.slowQueryMs,
    opsAuth,
    extra: () => ({
      cacheLayers: { circuit: cache.circuitState, l1Entries: cache.l1Size },
      replicas: deps.reads ? { status: deps.reads.status(), primaryReads: deps.reads.primaryReads } : null,
      ...(deps.alertsStatus?.() ?? {}),
    }),
  })
  // the ops dashboard: the page, the charts' history and the live stream
  // open incidents: asked of Postgres at most every 5 s, however many dashboards are open
  const incidents = sharedFor(5_000, () => perf.time('dashboard.incidents', () => openIncidents(pool)))
  // the router's view of the nodes (ROUTER_URL), for the dashboard: fetched at most every 5 s
  const routerUrl = config.routerUrl
  const routerStatus = routerUrl
    ? sharedFor(5_000, () =>
        fetch(new URL('/router/status', routerUrl), { signal: AbortSignal.timeout(1_000) })
          .then(
            (r): Promise<unknown> =>
              r.ok ? r.json() : Promise.resolve({ error: `router answered ${r.status}` }),
          )
          .catch((err: Error) => ({ error: `router unreachable: ${err.message}` })),
      )
    : () => Promise.resolve(null)
  await app.register(dashboardRoutes, {
    fleet: deps.fleet ?? null,
    history: deps.fleet ? postgresHistoryReader(pool) : null,
    opsAuth,
    overview: async () => {
      const snap = perf.snapshot()
      const byCount = [...snap.routes].sort((a, b) => b.count - a.count).slice(0, 8)
      const byP99 = [...snap.db].sort((a, b) => b.p99Ms - a.p99Ms).slice(0, 8)
      return {
        generatedAt: snap.generatedAt,
        windowSeconds: snap.windowSeconds,
        node: load(),
        requests: snap.requests,
        routes: byCount,
        db: snap.dbOverall,
        queries: byP99,
        pool: { total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount },
        cache: { ...snap.cache, circuit: cache.circuitState, l1Entries: cache.l1Size },
        system: snap.system,
        replicas: deps.reads ? { status: deps.reads.status(), primaryReads: deps.reads.primaryReads } : null,
        fleetMessages: deps.fleet?.stats ?? null,
        router: await routerStatus(),
        ...(deps.alertsStatus?.() ?? {}),
        incidents: await incidents().catch((err: Error) => ({ error: err.message })),
      }
    },
  })
  return app
}

/**
 * `load`'s answer shared by every caller for `ms` after it was asked (one query however many
 * dashboards poll); a failed answer is not kept, so the next caller asks again.
 */
function sharedFor<T>(ms: number, load: () => Promise<T>): () => Promise<T> {
  let last: { at: number; value: Promise<T> } | null = null
  return () => {
    if (!last || Date.now() - last.at > ms) {
      const entry = { at: Date.now(), value: load() }
      entry.value.catch(() => {
        if (last === entry) last = null
      })
      last = entry
    }
    return last.value
  }
}

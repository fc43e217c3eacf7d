import { createRequire } from 'node:module'
import path from 'node:path'
import type { FastifyInstance } from 'fastify'
import { z } from 'zod'
import { GateError } from '../../../shared/errors.js'
import type { FleetMonitor, GateFleetState } from '../../fleet/monitor.js'
import { postgresHistoryReader } from '../../fleet/stores.js'
import { parseInput } from '../input.js'
import { requireAccess } from '../plugins/app/people-auth.js'
import { servePage } from '../static-page.js'
import { cloudOverview } from './dashboard-overview.js'
import type { AlertsStatus } from './perf.js'

/** One gate as the dashboard's table shows it (a small subset of the fleet state, sent often). */
export interface GateRow {
  id: string
  state: GateFleetState['state']
  reason: string | null
  lastSeenAt: number | null
  version: string | null
  session: number | null
  seqGaps: number
  advertsPerS: number | null
  pending: number | null
  oldestPendingS: number | null
  temperatureC: number | null
  cpuPercent: number | null
  lastSyncS: number | null
  adapter: string | null
  lastEvent: string | null
}

/** A gate's row of the dashboard's table, from its fleet state. */
export function gateRow(g: GateFleetState): GateRow {
  const m = g.metrics
  return {
    id: g.gateId,
    state: g.state,
    reason: g.reason,
    lastSeenAt: g.lastSeenAt,
    version: g.version,
    session: g.session,
    seqGaps: g.seqGaps,
    advertsPerS: m?.adverts_per_s ?? null,
    pending: m?.buffer_pending ?? null,
    oldestPendingS: m?.buffer_oldest_pending_age_s ?? null,
    temperatureC: m?.temperature_c ?? null,
    cpuPercent: m?.cpu_percent ?? null,
    lastSyncS: m?.last_sync_age_s ?? null,
    adapter: m?.adapter_state ?? null,
    lastEvent: g.lastEvent?.kind ?? null,
  }
}

/** Options of the dashboard's routes. */
export interface DashboardOptions {
  /** the fleet over MQTT (MQTT_URL); null: no gates, and no metrics history */
  fleet: FleetMonitor | null
  /** alerts firing and the autoscaler's last decision, for the overview */
  alertsStatus?: AlertsStatus
  /** how often changed gates are sent, ms */
  gatesEveryMs?: number
  /** how often the cloud overview is sent, ms */
  overviewEveryMs?: number
  /** how often the whole fleet is sent again (other nodes' shares, from the shared store), ms */
  fullEveryMs?: number
}

const HistoryQuery = z.object({
  minutes: z.coerce
    .number()
    .int()
    .min(1)
    .max(24 * 60)
    .default(60),
})

/**
 * The ops dashboard: a static page (no secrets in it; it asks for the ops token and keeps it in the
 * tab's sessionStorage), a gate's history for the charts, and a live stream of Server-Sent Events:
 * the whole fleet at connect, then the gates that changed (coalesced, once a second), the cloud's
 * overview every few seconds, and the whole fleet again now and then (the shares other nodes hear).
 * The stream is read with fetch so that the token travels in the Authorization header, never in a
 * URL that a proxy or a log would keep.
 */
export async function dashboardRoutes(app: FastifyInstance, opts: DashboardOptions): Promise<void> {
  // the page, and uPlot (its charts) from its package
  const uplot = path.dirname(createRequire(import.meta.url).resolve('uplot/package.json'))
  servePage(app, 'dashboard', [
    ['/dashboard/uplot.js', path.join(uplot, 'dist', 'uPlot.iife.min.js')],
    ['/dashboard/uplot.css', path.join(uplot, 'dist', 'uPlot.min.css')],
  ])
  // a gate's metrics history (gate_metrics), kept only with the fleet monitor
  const history = opts.fleet ? postgresHistoryReader(app.pool) : null
  // the cloud side: performance, cache, database, routing, autoscaler, alerts and incidents
  const overview = cloudOverview(app, opts)
  const streams = new Set<() => void>()
  app.addHook('preClose', async () => {
    for (const end of [...streams]) end()
  })

  await app.register(async (api) => {
    requireAccess(api, 'fleet-read')

    api.get('/v1/fleet/:gateId/history', async (req) => {
      const { gateId } = req.params as { gateId: string }
      const { minutes } = parseInput(HistoryQuery, req.query)
      if (!history)
        throw new GateError('E_NOT_FOUND', 'the metrics history is off: set MQTT_URL on the service')
      return history(gateId, minutes)
    })

    api.get('/v1/dashboard/stream', { config: { stream: true } }, async (req, reply) => {
      reply.hijack()
      const res = reply.raw
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      })
      let blocked = false
      const send = (event: string, data: unknown): void => {
        if (res.writableEnded || res.destroyed) return
        if (!res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`)) blocked = true
      }
      res.on('drain', () => {
        blocked = false
      })
      const dirty = new Map<string, GateFleetState>()
      const unwatch = opts.fleet?.watch((g) => dirty.set(g.gateId, g)) ?? (() => {})
      const sendFleet = async () => {
        const gates = opts.fleet ? await opts.fleet.fleet() : []
        send('fleet', { enabled: opts.fleet !== null, gates: gates.map(gateRow) })
      }
      const sendOverview = async () => {
        try {
          send('overview', await overview())
        } catch (err) {
          send('overview', { error: (err as Error).message })
        }
      }
      // a slow reader skips ticks (the dirty set keeps the latest of each gate), never buffers without end
      const gatesTimer = setInterval(() => {
        if (blocked || dirty.size === 0) return
        const rows = [...dirty.values()].map(gateRow)
        dirty.clear()
        send('gates', rows)
      }, opts.gatesEveryMs ?? 1_000)
      const overviewTimer = setInterval(() => {
        if (!blocked) void sendOverview()
      }, opts.overviewEveryMs ?? 5_000)
      const fullTimer = setInterval(() => {
        if (!blocked) void sendFleet().catch(() => {})
      }, opts.fullEveryMs ?? 30_000)
      const end = () => {
        clearInterval(gatesTimer)
        clearInterval(overviewTimer)
        clearInterval(fullTimer)
        unwatch()
        streams.delete(end)
        if (!res.writableEnded) res.end()
      }
      streams.add(end)
      req.raw.on('close', end)
      res.on('error', end)
      await sendFleet().catch((err) => send('error', { message: (err as Error).message }))
      await sendOverview()
    })
  })
}

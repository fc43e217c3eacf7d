import underPressure from '@fastify/under-pressure'
import fp from 'fastify-plugin'
import { Counter } from 'prom-client'

/**
 * Load shedding: when the event loop lags (or is busy) past its limit, requests are answered 503
 * with Retry-After rather than queued without bound; the gates' syncer honours it. Off when both
 * limits are 0.
 */
export const underPressurePlugin = fp(
  async (app) => {
    const { maxEventLoopDelayMs, maxEventLoopUtilization } = app.config.monitor
    const shed = new Counter({
      name: 'http_shed_requests_total',
      help: 'Requests answered 503 because the node was overloaded, by reason',
      labelNames: ['reason'],
      registers: [app.registry],
    })
    if (maxEventLoopDelayMs <= 0 && maxEventLoopUtilization <= 0) return
    await app.register(underPressure, {
      maxEventLoopDelay: maxEventLoopDelayMs,
      maxEventLoopUtilization,
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
  },
  { name: 'under-pressure', dependencies: ['config', 'perf'] },
)

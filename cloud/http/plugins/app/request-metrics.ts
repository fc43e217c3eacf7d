import fp from 'fastify-plugin'
import { Histogram } from 'prom-client'
import { isStream } from '../../streams.js'

/**
 * Request duration by method, route (the route pattern, never the raw URL: ids and tokens would make
 * unbounded label sets) and status, for Prometheus (GET /metrics).
 */
export const requestMetricsPlugin = fp(
  async (app) => {
    const duration = new Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP request duration by method, route and status',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [app.registry],
    })
    // one label child per method, route and status, resolved once (not a label object per request)
    const children = new Map<string, { observe(v: number): void }>()
    app.addHook('onResponse', async (req, reply) => {
      if (isStream(req)) return // a stream's duration is how long a tab stayed open
      const route = req.routeOptions.url ?? 'unmatched'
      const key = `${req.method} ${route} ${reply.statusCode}`
      let h = children.get(key)
      if (!h) {
        h = duration.labels(req.method, route, String(reply.statusCode))
        children.set(key, h)
      }
      h.observe(reply.elapsedTime / 1000)
    })
  },
  { name: 'request-metrics', dependencies: ['perf'] },
)

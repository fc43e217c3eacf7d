import type { FastifyInstance } from 'fastify'

/** GET /metrics: this node's metrics in the Prometheus text format. */
export async function metricsRoutes(app: FastifyInstance): Promise<void> {
  app.get('/metrics', async (_req, reply) => {
    reply.header('content-type', app.registry.contentType)
    return app.registry.metrics()
  })
}

import type { FastifyInstance } from 'fastify'
import { ping } from '../../db/pool.js'

/**
 * Liveness (/healthz: the process answers), readiness (/readyz: and so does the database; 503 with
 * Retry-After otherwise) and this node's load (/v1/load, which the router polls).
 */
export async function healthRoutes(app: FastifyInstance): Promise<void> {
  app.get('/healthz', async () => ({ status: 'ok' }))
  app.get('/v1/load', async () => app.nodeLoad())
  app.get('/readyz', async (_req, reply) => {
    try {
      await ping(app.pool)
      return { status: 'ready' }
    } catch {
      return reply.status(503).header('Retry-After', '5').send({ status: 'database unavailable' })
    }
  })
}

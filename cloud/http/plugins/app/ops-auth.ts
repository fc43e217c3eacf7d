import { timingSafeEqual } from 'node:crypto'
import type { FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { GateError } from '../../../../shared/errors.js'
import { bearer } from '../../bearer.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** an onRequest hook: the request must carry the ops token (401 or 429 otherwise) */
    authenticateOps(req: FastifyRequest): Promise<void>
  }
}

/**
 * The ops-token check of the query API, the fleet, the monitor and the dashboard's data, run on
 * request like the gate-key check, compared in constant time. Without OPS_TOKEN those routes are off.
 */
export const opsAuthPlugin = fp(
  async (app) => {
    const opsToken = Buffer.from(app.config.opsToken ?? '')
    app.decorate('authenticateOps', async function authenticateOps(req: FastifyRequest) {
      if (opsToken.length === 0)
        throw new GateError('E_AUTH', 'the query API is disabled: set OPS_TOKEN on the service')
      const t = Buffer.from(bearer(req) ?? '')
      if (t.length !== opsToken.length || !timingSafeEqual(t, opsToken))
        app.refuseAuthentication(req, 'missing or wrong ops token')
    })
  },
  { name: 'ops-auth', dependencies: ['config', 'auth-failures'] },
)

import type { FastifyInstance, FastifyRequest, RouteShorthandOptions } from 'fastify'
import fp from 'fastify-plugin'
import { GateAuthenticator, type GateIdentity } from '../../../gates/store.js'
import { bearer } from '../../bearer.js'
import { gateRateLimit } from '../external/rate-limit.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** the authenticated gate on the gate routes */
    gate: GateIdentity | null
  }
  interface FastifyInstance {
    /** the gate keys this node trusts, checked against the database and cached */
    gateKeys: GateAuthenticator
    /** an onRequest hook: the request's gate key decides `req.gate` (401 or 429 otherwise) */
    authenticateGate(req: FastifyRequest): Promise<void>
  }
}

/** Options of the gate-key check. */
export interface GateAuthOptions {
  /** how long a checked gate key is trusted before it is checked again, ms (revocation delay) */
  authCacheMs?: number
}

/**
 * The gate-key check, run on request: before the body is received, decompressed or parsed, so a
 * caller without a valid key costs the node a header and a map look-up (no gunzip, no JSON, and
 * no query for a made-up key: see GateAuthenticator). The error handler closes the connection of
 * a refused request whose body was not read.
 */
export const gateAuthPlugin = fp<GateAuthOptions>(
  async (app, opts) => {
    const keys = new GateAuthenticator(app.pool, opts.authCacheMs ?? 30_000)
    app.decorate('gateKeys', keys)
    app.decorateRequest('gate', null)
    app.decorate('authenticateGate', async function authenticateGate(req: FastifyRequest) {
      const key = bearer(req)
      if (!key) return app.refuseAuthentication(req, 'missing gate key (Authorization: Bearer gk_...)')
      const id = await keys.authenticate(key)
      if (!id) return app.refuseAuthentication(req, 'unknown, revoked or expired gate key')
      req.gate = id
    })
  },
  { name: 'gate-auth', dependencies: ['pg', 'auth-failures'] },
)

/**
 * The options of a gate route: the key is checked first, then the gate's rate (per gate, not per
 * address: a venue's gates share one NAT address); over it, 429 with Retry-After, which the syncer
 * honours. Both on request, so neither a stranger nor a gate over its rate has its body read.
 */
export function gateRouteOptions(app: FastifyInstance): RouteShorthandOptions {
  return {
    onRequest: app.authenticateGate,
    config: { rateLimit: gateRateLimit(app.config.gateRateLimitPerMin) },
  }
}

import { timingSafeEqual } from 'node:crypto'
import type { FastifyRequest } from 'fastify'
import { GateError } from '../../shared/errors.js'
import type { GateAuthenticator, GateIdentity } from '../gates/store.js'
import type { AuthFailureLimiter } from './auth-failures.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** the authenticated gate on the gate routes */
    gate: GateIdentity | null
  }
}

/** The bearer token of a request, or null. */
export function bearer(req: FastifyRequest): string | null {
  const h = req.headers.authorization
  if (!h) return null
  const m = /^Bearer\s+(\S+)$/i.exec(h)
  return m?.[1] ?? null
}

/** An onRequest hook that authenticates a request (throws 401, or 429 past the failure limit). */
export type AuthHook = (req: FastifyRequest) => Promise<void>

/**
 * The gate-key and ops-token checks, run as onRequest hooks: before the body is received,
 * decompressed or parsed, so a caller without a valid key costs the node a header and a map
 * look-up (no gunzip, no JSON, and no query for a made-up key: see GateAuthenticator). Each
 * failure counts against the caller's address; past the limit the answer is 429 with Retry-After.
 * The error handler closes the connection of a refused request whose body was not read.
 */
export function authHooks(o: {
  auth: GateAuthenticator
  opsToken: string | undefined
  limiter: AuthFailureLimiter | null
}): { gate: AuthHook; ops: AuthHook } {
  const refuse = (req: FastifyRequest, message: string): never => {
    const retryAfterS = o.limiter?.fail(req.ip) ?? 0
    if (retryAfterS > 0)
      throw new GateError(
        'E_RATE_LIMITED',
        `too many failed authentications from this address; retry in ${retryAfterS} s`,
        { context: { retryAfterS } },
      )
    throw new GateError('E_AUTH', message)
  }
  const opsToken = Buffer.from(o.opsToken ?? '')
  return {
    gate: async (req) => {
      const key = bearer(req)
      if (!key) return refuse(req, 'missing gate key (Authorization: Bearer gk_...)')
      const id = await o.auth.authenticate(key)
      if (!id) return refuse(req, 'unknown, revoked or expired gate key')
      req.gate = id
    },
    ops: async (req) => {
      if (opsToken.length === 0)
        throw new GateError('E_AUTH', 'the query API is disabled: set OPS_TOKEN on the service')
      const t = Buffer.from(bearer(req) ?? '')
      if (t.length !== opsToken.length || !timingSafeEqual(t, opsToken))
        refuse(req, 'missing or wrong ops token')
    },
  }
}

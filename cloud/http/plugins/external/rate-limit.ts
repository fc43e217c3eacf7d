import rateLimit, { type RateLimitOptions } from '@fastify/rate-limit'
import type { FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'

/**
 * Rate limits per route, counted on request (before the body is read); a route opts in with
 * `config.rateLimit`. Nothing is limited globally.
 */
export const rateLimitPlugin = fp(
  async (app) => {
    await app.register(rateLimit, { global: false, hook: 'onRequest' })
  },
  { name: 'rate-limit' },
)

/**
 * A gate route's limit: `perMin` requests a minute per gate (the gate its key named, so it must run
 * after the key check); false at 0, no limit.
 */
export function gateRateLimit(perMin: number): RateLimitOptions | false {
  if (perMin <= 0) return false
  return {
    max: perMin,
    timeWindow: 60_000,
    keyGenerator: (req: FastifyRequest) => `gate:${req.gate?.gateId}`,
  }
}

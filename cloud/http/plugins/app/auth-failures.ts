import { isIPv6 } from 'node:net'
import type { FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { LRUCache } from 'lru-cache'
import { GateError } from '../../../../shared/errors.js'

/** How many addresses the limiter remembers: the least recently failing ones are forgotten first. */
const MAX_ADDRESSES = 10_000

/**
 * The address failures are counted by: an IPv4 address as it is, an IPv6 one by its /64 (one
 * host is given a whole /64 and could otherwise fail from a new address every time).
 */
export function addressKey(ip: string): string {
  const v4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip)
  if (v4?.[1]) return v4[1]
  if (!isIPv6(ip)) return ip
  const [head = '', tail = ''] = ip.split('::')
  const left = head ? head.split(':') : []
  const right = tail ? tail.split(':') : []
  const groups = ip.includes('::')
    ? [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right]
    : left
  return `${groups
    .slice(0, 4)
    .map((g) => g.toLowerCase().replace(/^0+(?=.)/, ''))
    .join(':')}::/64`
}

/**
 * Failed authentications (missing, unknown or wrong gate keys and ops tokens) per client address in
 * a fixed window; past `maxPerWindow` the address is told to wait (429 with Retry-After) until its
 * window ends. Bounded memory: at most MAX_ADDRESSES are remembered. Successes are not counted, so
 * the gates of a venue behind one NAT address keep working while something there fails.
 */
export class AuthFailureLimiter {
  private readonly failures: LRUCache<string, { count: number; resetAt: number }>

  constructor(
    private readonly maxPerWindow: number,
    private readonly windowMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {
    this.failures = new LRUCache({ max: MAX_ADDRESSES })
  }

  /** Count one failure from `ip`: the seconds it must wait when it is over its budget, else 0. */
  fail(ip: string): number {
    const key = addressKey(ip)
    const t = this.now()
    let f = this.failures.get(key)
    if (!f || f.resetAt <= t) {
      f = { count: 0, resetAt: t + this.windowMs }
      this.failures.set(key, f)
    }
    f.count++
    return f.count > this.maxPerWindow ? Math.max(1, Math.ceil((f.resetAt - t) / 1000)) : 0
  }

  /** Addresses remembered now (for tests and metrics). */
  get size(): number {
    return this.failures.size
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * Refuse a request's credentials: 401 with `message`, or 429 with Retry-After once its address
     * is past AUTH_FAILURES_PER_MIN. Every failure counts against the address, gate keys and ops
     * tokens alike.
     */
    refuseAuthentication(req: FastifyRequest, message: string): never
  }
}

/** The failed-authentication limit shared by the gate-key and ops-token checks (none at 0). */
export const authFailuresPlugin = fp(
  async (app) => {
    const perMin = app.config.authFailuresPerMin
    const limiter = perMin > 0 ? new AuthFailureLimiter(perMin) : null
    app.decorate('refuseAuthentication', (req: FastifyRequest, message: string): never => {
      const retryAfterS = limiter?.fail(req.ip) ?? 0
      if (retryAfterS > 0)
        throw new GateError(
          'E_RATE_LIMITED',
          `too many failed authentications from this address; retry in ${retryAfterS} s`,
          { context: { retryAfterS } },
        )
      throw new GateError('E_AUTH', message)
    })
  },
  { name: 'auth-failures', dependencies: ['config'] },
)

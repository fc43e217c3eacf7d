import fp from 'fastify-plugin'
import type { RedisPair } from '../../../cache/redis.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** the cache's Redis connections; null: the cache runs on L1 alone */
    redis: RedisPair | null
  }
}

/**
 * Redis, as the caller connected it. The app never opens Redis itself: the server's connection is
 * shared with the fleet monitor, so the server closes it once both have stopped. Without one the
 * app caches in process.
 */
export const redisPlugin = fp<{ redis?: RedisPair | null }>(
  async (app, opts) => {
    app.decorate('redis', opts.redis ?? null)
  },
  { name: 'redis' },
)

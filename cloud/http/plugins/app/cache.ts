import fp from 'fastify-plugin'
import type { Logger } from 'pino'
import { createCache, type TieredCache } from '../../../cache/tiered-cache.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** the two-tier cache in front of Postgres: token look-ups, roster deltas, counts */
    cache: TieredCache
  }
}

/** Options of the cache plugin. */
export interface CachePluginOptions {
  log: Logger
  /** the cache, stopped by whoever made it; when absent one is made on the app's Redis (L1 alone without) */
  cache?: TieredCache
}

/** The two-tier cache; one made here is started here and stopped when the app closes. */
export const cachePlugin = fp<CachePluginOptions>(
  async (app, opts) => {
    if (opts.cache) {
      app.decorate('cache', opts.cache)
      return
    }
    const cache = createCache(app.config, {
      redis: app.redis,
      log: opts.log,
      registry: app.registry,
      perf: app.perf,
    })
    await cache.start()
    app.decorate('cache', cache)
    app.addHook('onClose', async () => cache.stop())
  },
  { name: 'cache', dependencies: ['config', 'redis', 'perf'] },
)

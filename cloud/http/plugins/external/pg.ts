import fp from 'fastify-plugin'
import type pg from 'pg'
import type { Logger } from 'pino'
import { createPool } from '../../../db/pool.js'
import type { ReadRouter } from '../../../db/replicas.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** the primary's pool: writes, token look-ups and roster deltas */
    pool: pg.Pool
    /** analytics reads on Postgres replicas (READ_REPLICA_URLS); null: the primary serves them */
    reads: ReadRouter | null
  }
}

/** Options of the Postgres plugin. */
export interface PgOptions {
  log: Logger
  /** the pool to use, ended by whoever made it; one is made from the configuration when absent */
  pool?: pg.Pool
  /** the read router, started and stopped by whoever made it */
  reads?: ReadRouter
}

/** Postgres: the pool (a pool this plugin made is ended when the app closes) and the read router. */
export const pgPlugin = fp<PgOptions>(
  async (app, opts) => {
    const pool = opts.pool ?? createPool(app.config, opts.log)
    app.decorate('pool', pool)
    app.decorate('reads', opts.reads ?? null)
    if (!opts.pool) app.addHook('onClose', async () => pool.end())
  },
  { name: 'pg', dependencies: ['config'] },
)

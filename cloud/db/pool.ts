import pg from 'pg'
import type { Logger } from 'pino'
import type { CloudConfig } from '../config.js'

/**
 * The service's connection pool. Acquiring a connection gives up after poolAcquireTimeoutMs and
 * statements are cancelled after statementTimeoutMs, so a down or saturated Postgres turns into a
 * 503 with Retry-After rather than a hanging request.
 */
export function createPool(config: CloudConfig, log?: Logger, applicationName = 'gate-cloud'): pg.Pool {
  const pool = new pg.Pool({
    connectionString: config.databaseUrl,
    max: config.poolMax,
    connectionTimeoutMillis: config.poolAcquireTimeoutMs,
    idleTimeoutMillis: 30_000,
    statement_timeout: config.statementTimeoutMs,
    // the server enforces statement_timeout only while it answers: a Postgres (or a network) that
    // stops answering mid-query fails the query here, a second later, instead of hanging it
    query_timeout: config.statementTimeoutMs + 1_000,
    keepAlive: true,
    application_name: applicationName,
  })
  // an idle client losing its connection must not crash the process; the next query reconnects
  pool.on('error', (err) => log?.warn({ err: err.message }, 'idle database connection lost'))
  return pool
}

/** A connected client for one-off work (migrations, partition maintenance, CLI commands). */
export async function connectClient(databaseUrl: string, applicationName = 'gate-cloud'): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: databaseUrl, application_name: applicationName })
  await client.connect()
  return client
}

/** The primary pool or the read router: anything that runs a parameterised query. */
export interface Queryable {
  query<R extends pg.QueryResultRow>(text: string, values: unknown[]): Promise<pg.QueryResult<R>>
}

/** Whether the database answers a trivial query (throws when it does not). */
export async function ping(db: Queryable): Promise<void> {
  await db.query('SELECT 1', [])
}

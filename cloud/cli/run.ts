import type pg from 'pg'
import { errorMessage, GateError } from '../../shared/errors.js'
import { type CloudConfig, loadCloudConfig } from '../config.js'
import { connectClient, createPool } from '../db/pool.js'
import { EXIT } from '../exit-codes.js'

/** The settings from the environment, checked (E_CONFIG_INVALID names every problem). */
export function loadConfig(): CloudConfig {
  return loadCloudConfig(process.env)
}

/** "postgres" on 127.0.0.1:5432: which database a URL names, without its credentials. */
export function whichDatabase(url: string): string {
  try {
    const u = new URL(url)
    const name = decodeURIComponent(u.pathname.replace(/^\//, '')) || u.username || 'postgres'
    const host = u.searchParams.get('host') ?? (u.hostname ? `${u.hostname}:${u.port || 5432}` : 'localhost')
    return `"${name}" on ${host}`
  } catch {
    return 'named by DATABASE_URL'
  }
}

/**
 * A failure as one line that says what to do: a missing table is a database that is not the
 * cloud's (or was never migrated), so it names the database and both fixes.
 */
function describeFailure(err: unknown, databaseUrl: string | undefined): string {
  const pgErr = err as { code?: unknown; message?: unknown }
  if (pgErr.code === '42P01' && databaseUrl !== undefined) {
    const table = /relation "([^"]+)"/.exec(String(pgErr.message))?.[1] ?? 'the cloud'
    return `the database ${whichDatabase(databaseUrl)} has no ${table} table: it is not the cloud's database, or its schema was never made. Point DATABASE_URL at the cloud's database (\`npm start\` prints the demo's), or run \`gate-cloud migrate\` on this one.`
  }
  return errorMessage(err)
}

/** Run a command body with a connected client and turn failures into one clear line and an exit code. */
export function withClient(fn: (client: pg.Client, c: CloudConfig) => Promise<number | undefined>) {
  return async (): Promise<void> => {
    let client: pg.Client | null = null
    let databaseUrl: string | undefined
    try {
      const c = loadConfig()
      databaseUrl = c.databaseUrl
      try {
        client = await connectClient(c.databaseUrl, 'gate-cloud-cli')
      } catch (err) {
        console.error(
          `gate-cloud: cannot connect to the database ${whichDatabase(c.databaseUrl)} (DATABASE_URL): ${errorMessage(err)}`,
        )
        process.exitCode = EXIT.database
        return
      }
      process.exitCode = (await fn(client, c)) ?? EXIT.ok
    } catch (err) {
      console.error(`gate-cloud: ${describeFailure(err, databaseUrl)}`)
      const code = err instanceof GateError ? err.code : ''
      process.exitCode =
        code === 'E_NOT_FOUND'
          ? EXIT.notFound
          : code === 'E_INPUT' || code === 'E_CONFIG_INVALID'
            ? EXIT.usage
            : EXIT.failure
    } finally {
      await client?.end().catch(() => {})
    }
  }
}

/** The same with a small pool: the gate store uses a pool for its transactions. */
export function withPool(fn: (pool: pg.Pool, c: CloudConfig) => Promise<number | undefined>) {
  return withClient(async (_client, c) => {
    const pool = createPool({ ...c, poolMax: 2 })
    try {
      return await fn(pool, c)
    } finally {
      await pool.end()
    }
  })
}

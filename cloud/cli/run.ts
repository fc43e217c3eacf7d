import type pg from 'pg'
import { errorMessage, GateError } from '../../shared/errors.js'
import { type CloudConfig, loadCloudConfig } from '../config.js'
import { connectClient, createPool } from '../db/pool.js'
import { EXIT } from '../exit-codes.js'

/** The settings from the environment, checked (E_CONFIG_INVALID names every problem). */
export function loadConfig(): CloudConfig {
  return loadCloudConfig(process.env)
}

/** Run a command body with a connected client and turn failures into one clear line and an exit code. */
export function withClient(fn: (client: pg.Client, c: CloudConfig) => Promise<number | undefined>) {
  return async (): Promise<void> => {
    let client: pg.Client | null = null
    try {
      const c = loadConfig()
      try {
        client = await connectClient(c.databaseUrl, 'gate-cloud-cli')
      } catch (err) {
        console.error(`gate-cloud: cannot connect to the database (DATABASE_URL): ${errorMessage(err)}`)
        process.exitCode = EXIT.database
        return
      }
      process.exitCode = (await fn(client, c)) ?? EXIT.ok
    } catch (err) {
      console.error(`gate-cloud: ${errorMessage(err)}`)
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

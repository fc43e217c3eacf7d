import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { runner } from 'node-pg-migrate'
import type pg from 'pg'
import type { Logger } from 'pino'

/** The SQL migrations shipped with the code (next to this file in a checkout, or beside dist/ when built). */
export function migrationsDir(): string {
  const candidates = [
    new URL('./migrations', import.meta.url),
    new URL('../../../cloud/db/migrations', import.meta.url),
  ]
  for (const c of candidates) {
    const p = fileURLToPath(c)
    if (existsSync(p)) return p
  }
  throw new Error('cannot find cloud/db/migrations')
}

/** What a migration run did. */
export interface MigrateResult {
  applied: string[]
}

/**
 * Bring the schema up to date with node-pg-migrate: plain SQL files, applied in order, each run in
 * one transaction (Postgres DDL is transactional), guarded by node-pg-migrate's advisory lock so two
 * nodes starting at once do not race. Re-running is a no-op.
 */
export async function migrateUp(client: pg.Client, log?: Logger): Promise<MigrateResult> {
  const ran = await runner({
    dbClient: client,
    dir: migrationsDir(),
    direction: 'up',
    migrationsTable: 'pgmigrations',
    singleTransaction: true,
    checkOrder: true,
    verbose: false,
    log: (msg: string) => log?.debug({ migrate: msg }, 'migration'),
  })
  return { applied: ran.map((m) => m.name) }
}

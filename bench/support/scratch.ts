import pg from 'pg'
import { migrateUp } from '../../cloud/db/migrate.js'
import { scratchDatabase } from '../harness.js'

/**
 * A scratch database of its own for one run (harness.ts) with the cloud's schema migrated in, and a
 * client connected to it (the caller ends it). `drop` drops the database, with FORCE.
 */
export async function migratedScratch(
  prefix: string,
): Promise<{ url: string; sql: pg.Client; drop: () => Promise<void> }> {
  const scratch = await scratchDatabase(prefix)
  const sql = new pg.Client({ connectionString: scratch.url })
  sql.on('error', () => {}) // the database is dropped at the end with FORCE
  try {
    await sql.connect()
    await migrateUp(sql)
  } catch (err) {
    await scratch.drop()
    throw err
  }
  return { url: scratch.url, sql, drop: scratch.drop }
}

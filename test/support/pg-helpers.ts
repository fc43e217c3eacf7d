import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { migrateUp } from '../../cloud/db/migrate.js'

/** The server the tests use (trust auth on this machine; TEST_DATABASE_URL elsewhere). */
export const ADMIN_URL = process.env['TEST_DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres'

/** A database of its own for one test file, migrated, dropped by `drop()`. */
export async function tempDatabase(
  opts: { migrate?: boolean } = {},
): Promise<{ url: string; name: string; drop: () => Promise<void> }> {
  const name = `gc_test_${randomBytes(5).toString('hex')}`
  const admin = new pg.Client({ connectionString: ADMIN_URL })
  await admin.connect()
  try {
    await admin.query(`CREATE DATABASE ${name}`)
  } finally {
    await admin.end()
  }
  const u = new URL(ADMIN_URL)
  u.pathname = `/${name}`
  const url = u.toString()
  if (opts.migrate !== false) {
    const c = new pg.Client({ connectionString: url })
    await c.connect()
    try {
      await migrateUp(c)
    } finally {
      await c.end()
    }
  }
  return {
    url,
    name,
    drop: async () => {
      const a = new pg.Client({ connectionString: ADMIN_URL })
      await a.connect()
      try {
        await a.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
      } finally {
        await a.end()
      }
    },
  }
}

/** A connected client, ended by the caller. */
export async function connect(url: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url })
  await c.connect()
  return c
}

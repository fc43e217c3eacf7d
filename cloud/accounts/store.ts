import { z } from 'zod'
import { GateError } from '../../shared/errors.js'
import type { Queryable } from '../db/pool.js'
import { hashPassword, MIN_PASSWORD_LENGTH } from './passwords.js'
import { ROLES, type Role } from './principal.js'

/** An account as the API shows it (never its password hash). */
export interface Account {
  id: string
  login: string
  displayName: string
  role: Role
  events: string[]
  createdAt: string
  createdBy: string
  disabledAt: string | null
}

const eventId = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/)

/** A new account: its login, name, role, password and (for an organiser) the events they run. */
export const NewAccount = z
  .object({
    login: z
      .string()
      .trim()
      .toLowerCase()
      .regex(/^[a-z0-9][a-z0-9._@-]{1,63}$/, 'a login: 2 to 64 of a-z 0-9 . _ @ -'),
    displayName: z.string().trim().min(1).max(200),
    role: z.enum(ROLES),
    password: z
      .string()
      .min(MIN_PASSWORD_LENGTH, `a password of ${MIN_PASSWORD_LENGTH} characters or more`)
      .max(1024),
    events: z.array(eventId).max(1000).default([]),
  })
  .strict()
  .refine((a) => a.role !== 'organiser' || a.events.length > 0, {
    message: 'an organiser runs at least one event: give events',
    path: ['events'],
  })
export type NewAccount = z.infer<typeof NewAccount>

const ACCOUNT_SQL = `
SELECT a.id, a.login, a.display_name AS "displayName", a.role, a.created_at AS "createdAt",
       a.created_by AS "createdBy", a.disabled_at AS "disabledAt",
       coalesce(array_agg(e.event_id ORDER BY e.event_id) FILTER (WHERE e.event_id IS NOT NULL), '{}') AS events
  FROM accounts a LEFT JOIN account_events e ON e.account_id = a.id`

type Row = Omit<Account, 'createdAt' | 'disabledAt'> & { createdAt: Date; disabledAt: Date | null }
const shown = (r: Row): Account => ({
  ...r,
  createdAt: r.createdAt.toISOString(),
  disabledAt: r.disabledAt?.toISOString() ?? null,
})

/** Create an account (409 when the login is taken, 404 for an event that does not exist). */
export async function createAccount(db: Queryable, a: NewAccount, createdBy: string): Promise<Account> {
  const hash = await hashPassword(a.password)
  if (a.events.length > 0) {
    const known = await db.query<{ id: string }>('SELECT id FROM events WHERE id = ANY($1::text[])', [
      a.events,
    ])
    const missing = a.events.filter((e) => !known.rows.some((k) => k.id === e))
    if (missing.length > 0) throw new GateError('E_NOT_FOUND', `no event ${missing.join(', ')}`)
  }
  try {
    // one statement: the account and its events, or neither
    const r = await db.query<{ id: string }>(
      `WITH a AS (
         INSERT INTO accounts (login, display_name, role, password_hash, created_by)
         VALUES ($1, $2, $3, $4, $5) RETURNING id
       ), e AS (
         INSERT INTO account_events (account_id, event_id) SELECT a.id, unnest($6::text[]) FROM a
       )
       SELECT id FROM a`,
      [a.login, a.displayName, a.role, hash, createdBy, a.role === 'organiser' ? a.events : []],
    )
    return await accountById(db, r.rows[0]?.id as string)
  } catch (err) {
    if ((err as { code?: string }).code === '23505')
      throw new GateError('E_CONFLICT', `the login ${a.login} is taken`)
    throw err
  }
}

/** One account by id (404 when there is none). */
export async function accountById(db: Queryable, id: string): Promise<Account> {
  const r = await db.query<Row>(`${ACCOUNT_SQL} WHERE a.id = $1 GROUP BY a.id`, [id])
  const row = r.rows[0]
  if (!row) throw new GateError('E_NOT_FOUND', `no account ${id}`)
  return shown(row)
}

/** Every account, by login. */
export async function listAccounts(db: Queryable): Promise<Account[]> {
  const r = await db.query<Row>(`${ACCOUNT_SQL} GROUP BY a.id ORDER BY a.login`, [])
  return r.rows.map(shown)
}

/** What a log-in needs: the account's id, hash and whether it may log in. */
export async function loginRecord(
  db: Queryable,
  login: string,
): Promise<{ id: string; passwordHash: string; disabled: boolean } | null> {
  const r = await db.query<{ id: string; passwordHash: string; disabled: boolean }>(
    `SELECT id, password_hash AS "passwordHash", disabled_at IS NOT NULL AS disabled FROM accounts WHERE login = $1`,
    [login.trim().toLowerCase()],
  )
  return r.rows[0] ?? null
}

/** Disable an account: it can no longer log in, and its sessions and tokens stop working at once. */
export async function disableAccount(db: Queryable, id: string): Promise<Account> {
  const r = await db.query(
    `WITH d AS (UPDATE accounts SET disabled_at = coalesce(disabled_at, now()) WHERE id = $1 RETURNING id)
     DELETE FROM account_credentials WHERE account_id IN (SELECT id FROM d)`,
    [id],
  )
  void r
  return accountById(db, id)
}

/** Whether an ops account that may log in exists (then the shared ops token no longer works). */
export async function opsAccountExists(db: Queryable): Promise<boolean> {
  const r = await db.query<{ x: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM accounts WHERE role = 'ops' AND disabled_at IS NULL) AS x`,
    [],
  )
  return r.rows[0]?.x === true
}

import { createHash, randomBytes } from 'node:crypto'
import type { Queryable } from '../db/pool.js'
import type { Principal, Role } from './principal.js'

/** How long a console session lasts without use, ms: a shift at the doors, and a margin. */
export const SESSION_IDLE_MS = 12 * 3600_000
/** How often a credential's last use is written back, ms (not at every request). */
const TOUCH_EVERY_MS = 60_000

/** What is kept of a secret: its SHA-256 (the secret is 32 random bytes: no need for a slow hash). */
const digest = (secret: string) => createHash('sha256').update(secret).digest()

/** The prefixes say what a leaked secret is (secret scanners match on them). */
const PREFIX = { session: 'gcs_', token: 'gct_' } as const

/**
 * Issue a session (for a browser's cookie, ending after SESSION_IDLE_MS without use) or a personal
 * API token (until revoked) for an account. The secret is returned once and never kept.
 */
export async function issueCredential(
  db: Queryable,
  accountId: string,
  kind: 'session' | 'token',
  from: string,
  label: string | null = null,
): Promise<{ secret: string; expiresAt: string | null }> {
  const secret = PREFIX[kind] + randomBytes(32).toString('base64url')
  const r = await db.query<{ expires_at: Date | null }>(
    `INSERT INTO account_credentials (secret_hash, account_id, kind, label, expires_at, last_used_at, created_from)
     VALUES ($1, $2, $3, $4, CASE WHEN $3 = 'session' THEN now() + make_interval(secs => $5::float8 / 1000) END, now(), $6)
     RETURNING expires_at`,
    [digest(secret), accountId, kind, label, SESSION_IDLE_MS, from],
  )
  return { secret, expiresAt: r.rows[0]?.expires_at?.toISOString() ?? null }
}

/**
 * Who holds `secret` (a session's or a token's), or null: unknown, expired, the wrong kind, or its
 * account disabled. A session in use is extended (at most once a minute).
 */
export async function principalOf(
  db: Queryable,
  secret: string,
  kind: 'session' | 'token',
): Promise<Principal | null> {
  if (!secret.startsWith(PREFIX[kind])) return null
  const hash = digest(secret)
  const r = await db.query<{
    id: string
    login: string
    role: Role
    events: string[]
    stale: boolean
  }>(
    `SELECT a.id, a.login, a.role,
            coalesce((SELECT array_agg(event_id ORDER BY event_id) FROM account_events WHERE account_id = a.id), '{}') AS events,
            c.last_used_at < now() - make_interval(secs => $3::float8 / 1000) AS stale
       FROM account_credentials c JOIN accounts a ON a.id = c.account_id
      WHERE c.secret_hash = $1 AND c.kind = $2 AND a.disabled_at IS NULL
        AND (c.expires_at IS NULL OR c.expires_at > now())`,
    [hash, kind, TOUCH_EVERY_MS],
  )
  const row = r.rows[0]
  if (!row) return null
  if (row.stale)
    await db.query(
      `UPDATE account_credentials SET last_used_at = now(),
              expires_at = CASE WHEN kind = 'session' THEN now() + make_interval(secs => $2::float8 / 1000) END
        WHERE secret_hash = $1`,
      [hash, SESSION_IDLE_MS],
    )
  return {
    actor: row.login,
    accountId: row.id,
    role: row.role,
    // ops and technicians are not limited to events (technicians see no event's personal data)
    events: row.role === 'organiser' ? row.events : 'all',
    via: kind,
  }
}

/** End a session or revoke a token (nothing when it is unknown). */
export async function revokeCredential(db: Queryable, secret: string): Promise<void> {
  await db.query('DELETE FROM account_credentials WHERE secret_hash = $1', [digest(secret)])
}

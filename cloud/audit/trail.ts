import type { Queryable } from '../db/pool.js'

/** One action taken in the console or the API, as the audit trail keeps it. */
export interface AuditEntry {
  /** the login, or "ops token" */
  actor: string
  accountId: string | null
  role: string
  /** what was done, dotted: `badge.revoke`, `export.csv`, `session.login`, `incident.resolve` */
  action: string
  /** what it was done to (a participant, an incident, an account), when it has one */
  target: string | null
  eventId: string | null
  /** the client's address as the server saw it */
  sourceIp: string | null
  outcome: 'done' | 'refused' | 'failed'
  /** what else says what happened (never a secret, never a password) */
  detail?: Record<string, unknown>
}

/** Append an entry (the table refuses updates and deletes). */
export async function appendAudit(db: Queryable, e: AuditEntry): Promise<void> {
  await db.query(
    `INSERT INTO audit_trail (actor, account_id, role, action, target, event_id, source_ip, outcome, detail)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
    [
      e.actor,
      e.accountId,
      e.role,
      e.action,
      e.target,
      e.eventId,
      e.sourceIp,
      e.outcome,
      JSON.stringify(e.detail ?? {}),
    ],
  )
}

export interface AuditFilter {
  /** only these events' entries (an organiser's); null: every entry */
  events: readonly string[] | null
  eventId: string | null
  actor: string | null
  action: string | null
  /** entries before this id (paging, newest first) */
  beforeId: number | null
  limit: number
}

/** Entries newest first, filtered; `next` is the id to page from (null at the end). */
export async function listAudit(
  db: Queryable,
  f: AuditFilter,
): Promise<{ entries: Array<AuditEntry & { id: number; at: string }>; next: number | null }> {
  const r = await db.query<AuditEntry & { id: string; at: Date }>(
    `SELECT id, at, actor, account_id AS "accountId", role, action, target, event_id AS "eventId",
            source_ip AS "sourceIp", outcome, detail
       FROM audit_trail
      WHERE ($1::text[] IS NULL OR event_id = ANY($1::text[]))
        AND ($2::text IS NULL OR event_id = $2)
        AND ($3::text IS NULL OR actor = $3)
        AND ($4::text IS NULL OR action = $4 OR action LIKE $4 || '.%')
        AND ($5::bigint IS NULL OR id < $5)
      ORDER BY id DESC LIMIT $6`,
    [f.events, f.eventId, f.actor, f.action, f.beforeId, f.limit],
  )
  const entries = r.rows.map((x) => ({ ...x, id: Number(x.id), at: x.at.toISOString() }))
  const last = entries.at(-1)
  return { entries, next: entries.length === f.limit && last ? last.id : null }
}

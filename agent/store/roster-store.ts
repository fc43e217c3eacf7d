import type { ParticipantStatus, RosterEntry } from '../../shared/roster.js'
import type { Clock } from '../clock.js'
import { type Db, getMeta, setMeta } from './db.js'

/** A roster row as the validator needs it. */
export interface RosterRow {
  token: string
  participantId: string
  status: ParticipantStatus
  name: string | null
  /** ticket category, for the access rules */
  category: string | null
  /** tags, for the access rules (JSON array text in SQLite) */
  tags: string[]
  updatedAt: number
  version: number
}

/** A roster change pulled from the cloud (category and tags: with the access fields). */
export interface RosterChange {
  token: string
  participantId: string
  status: ParticipantStatus
  category?: string | null | undefined
  tags?: readonly string[] | undefined
}

/** Outcome of an import. */
export interface ImportResult {
  inserted: number
  updated: number
  unchanged: number
  removed: number
  version: number
}

/** The roster table: token -> participant and status. Every change bumps the roster version. */
export class RosterStore {
  private readonly lookupStmt
  private readonly listeners = new Set<(tokens: string[] | null) => void>()

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
  ) {
    this.lookupStmt = db.prepare(
      `SELECT token, participant_id AS participantId, status, name, category, tags, updated_at AS updatedAt, version
         FROM roster WHERE token = ?`,
    )
  }

  /** The row for a token, or undefined. */
  lookup(token: string): RosterRow | undefined {
    const row = this.lookupStmt.get(token) as (Omit<RosterRow, 'tags'> & { tags: string }) | undefined
    return row === undefined ? undefined : { ...row, tags: parseTags(row.tags) }
  }

  /** The roster version (0 when no roster was ever loaded). Recorded in every check-in it decided. */
  version(): number {
    return Number(getMeta(this.db, 'roster_version') ?? 0)
  }

  /** Counts by status. */
  counts(): Record<ParticipantStatus, number> {
    const out: Record<ParticipantStatus, number> = { active: 0, revoked: 0, inactive: 0 }
    for (const row of this.db
      .prepare('SELECT status, count(*) AS count FROM roster GROUP BY status')
      .all() as Array<{
      status: ParticipantStatus
      count: number
    }>) {
      out[row.status] = row.count
    }
    return out
  }

  /**
   * Insert or update entries in one transaction. With `replace`, tokens absent from `entries` are deleted
   * (a full roster file); otherwise the file adds to and updates the roster.
   */
  importEntries(entries: readonly RosterEntry[], opts: { replace?: boolean } = {}): ImportResult {
    const now = this.clock.now()
    const changed: string[] = []
    const result = this.db
      .transaction(() => {
        const version = this.version() + 1
        const get = this.db.prepare(
          'SELECT participant_id, status, name, category, tags FROM roster WHERE token = ?',
        )
        const upsert = this.db.prepare(
          `INSERT INTO roster (token, participant_id, status, name, category, tags, updated_at, version)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (token) DO UPDATE SET participant_id = excluded.participant_id, status = excluded.status,
           name = excluded.name, category = excluded.category, tags = excluded.tags,
           updated_at = excluded.updated_at, version = excluded.version`,
        )
        let inserted = 0
        let updated = 0
        let unchanged = 0
        for (const entry of entries) {
          const cur = get.get(entry.token) as
            | {
                participant_id: string
                status: string
                name: string | null
                category: string | null
                tags: string
              }
            | undefined
          const name = entry.name ?? null
          const category = entry.category ?? null
          const tags = JSON.stringify(entry.tags ?? [])
          if (
            cur &&
            cur.participant_id === entry.participantId &&
            cur.status === entry.status &&
            cur.name === name &&
            cur.category === category &&
            cur.tags === tags
          ) {
            unchanged++
            continue
          }
          upsert.run(entry.token, entry.participantId, entry.status, name, category, tags, now, version)
          changed.push(entry.token)
          if (cur) updated++
          else inserted++
        }
        let removed = 0
        if (opts.replace) {
          this.db.exec('CREATE TEMP TABLE IF NOT EXISTS keep_tokens (token TEXT PRIMARY KEY)')
          this.db.exec('DELETE FROM keep_tokens')
          const keep = this.db.prepare('INSERT OR IGNORE INTO keep_tokens (token) VALUES (?)')
          for (const entry of entries) keep.run(entry.token)
          const gone = this.db
            .prepare('SELECT token FROM roster WHERE token NOT IN (SELECT token FROM keep_tokens)')
            .pluck()
            .all() as string[]
          this.db.prepare('DELETE FROM roster WHERE token NOT IN (SELECT token FROM keep_tokens)').run()
          this.db.exec('DELETE FROM keep_tokens')
          removed = gone.length
          changed.push(...gone)
        }
        if (changed.length > 0) setMeta(this.db, 'roster_version', String(version))
        return { inserted, updated, unchanged, removed, version: changed.length > 0 ? version : version - 1 }
      })
      .immediate()
    if (changed.length > 0) this.notify(changed)
    return result
  }

  /** The cloud roster cursor: the last change this gate applied (0 = none). */
  cloudCursor(): number {
    return Number(getMeta(this.db, 'roster_cursor') ?? 0)
  }

  /**
   * Apply roster changes pulled from the cloud, and the new cursor, in one transaction. A participant
   * holds one token: when a change gives them a new token, their old one is removed. Listeners (the
   * L1 cache) hear exactly the tokens that changed.
   */
  applyDelta(changes: readonly RosterChange[], cursor: number): { changed: number; version: number } {
    const now = this.clock.now()
    const changed: string[] = []
    const version = this.db
      .transaction(() => {
        const version = this.version() + 1
        const others = this.db
          .prepare("SELECT token FROM roster WHERE participant_id = ? AND token <> ? AND status <> 'revoked'")
          .pluck()
        // a participant's badge replaced (a lost one): the old token stays, revoked, so that whoever
        // finds the badge is denied as `revoked`, not as an unknown badge
        const retire = this.db.prepare(
          "UPDATE roster SET status = 'revoked', updated_at = ?, version = ? WHERE token = ? AND status <> 'revoked'",
        )
        const get = this.db.prepare(
          'SELECT participant_id, status, category, tags FROM roster WHERE token = ?',
        )
        const upsert = this.db.prepare(
          `INSERT INTO roster (token, participant_id, status, name, category, tags, updated_at, version)
           VALUES (?, ?, ?, NULL, ?, ?, ?, ?)
           ON CONFLICT (token) DO UPDATE SET participant_id = excluded.participant_id, status = excluded.status,
             category = excluded.category, tags = excluded.tags, updated_at = excluded.updated_at,
             version = excluded.version`,
        )
        for (const change of changes) {
          for (const old of others.all(change.participantId, change.token) as string[]) {
            if (retire.run(now, version, old).changes > 0) changed.push(old)
          }
          const cur = get.get(change.token) as
            | { participant_id: string; status: string; category: string | null; tags: string }
            | undefined
          const category = change.category ?? null
          const tags = JSON.stringify(change.tags ?? [])
          if (
            cur &&
            cur.participant_id === change.participantId &&
            cur.status === change.status &&
            cur.category === category &&
            cur.tags === tags
          )
            continue
          // a badge reissued: the cloud lets a revoked or inactive participant keep the token an
          // active one now holds; a change to the former must not take the token from the latter
          if (
            cur &&
            cur.participant_id !== change.participantId &&
            cur.status === 'active' &&
            change.status !== 'active'
          )
            continue
          upsert.run(change.token, change.participantId, change.status, category, tags, now, version)
          changed.push(change.token)
        }
        setMeta(this.db, 'roster_cursor', String(cursor))
        if (changed.length > 0) setMeta(this.db, 'roster_version', String(version))
        return changed.length > 0 ? version : version - 1
      })
      .immediate()
    if (changed.length > 0) this.notify(changed)
    return { changed: changed.length, version }
  }

  /** Be told when tokens change (null = everything may have changed, e.g. another process imported). */
  onChange(fn: (tokens: string[] | null) => void): () => void {
    this.listeners.add(fn)
    return () => this.listeners.delete(fn)
  }

  /** Tell listeners the roster changed outside this process (gatectl import while the daemon runs). */
  notifyExternalChange(): void {
    this.notify(null)
  }

  private notify(tokens: string[] | null): void {
    for (const fn of this.listeners) fn(tokens)
  }
}

/** Tags as stored (a JSON array of strings); anything else is no tags. */
function parseTags(text: string): string[] {
  try {
    const v = JSON.parse(text) as unknown
    return Array.isArray(v) ? v.filter((t): t is string => typeof t === 'string') : []
  } catch {
    return []
  }
}

import type { Logger } from 'pino'
import { type AccessPolicy, parsePolicy } from '../../shared/access/policy.js'
import { type Db, getMeta, setMeta } from '../store/db.js'

/**
 * The event's access policy as the gate last pulled it, kept in its SQLite file (meta
 * `access_policy`) so that the gate decides by it offline and after a restart. None: the gate
 * admits every active participant of its roster, as it does without the access model.
 */
export class PolicyStore {
  private readonly listeners = new Set<(policy: AccessPolicy | null) => void>()

  constructor(
    private readonly db: Db,
    readonly log: Logger,
  ) {}

  /** The stored policy; a stored one that no longer passes the schema is reported and not used. */
  get(): AccessPolicy | null {
    const text = getMeta(this.db, 'access_policy')
    if (text === undefined) return null
    let parsed: ReturnType<typeof parsePolicy>
    try {
      parsed = parsePolicy(JSON.parse(text))
    } catch (err) {
      parsed = { ok: false, problems: [String(err)] }
    }
    if (parsed.ok) return parsed.policy
    this.log.error(
      { problems: parsed.problems },
      'the stored access policy is unreadable; deciding without it',
    )
    return null
  }

  version(): number {
    return this.get()?.version ?? 0
  }

  /** Keep `policy` (already checked against the schema) and tell the listeners. */
  set(policy: AccessPolicy | null): void {
    if (policy === null) this.db.prepare("DELETE FROM meta WHERE key = 'access_policy'").run()
    else setMeta(this.db, 'access_policy', JSON.stringify(policy))
    for (const fn of this.listeners) fn(policy)
  }

  onChange(fn: (policy: AccessPolicy | null) => void): () => void {
    this.listeners.add(fn)
    return () => this.listeners.delete(fn)
  }
}

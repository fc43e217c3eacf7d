import { LRUCache } from 'lru-cache'
import type { ParticipantStatus } from '../../shared/roster.js'
import type { Clock } from '../clock.js'
import type { RosterStore } from '../store/roster-store.js'
import type { Decision, DenyReason } from './types.js'

/** A roster decision. */
export interface Verdict {
  decision: Decision
  reason: DenyReason | null
  participantId: string | null
  rosterVersion: number
  /** the holder's ticket category and tags (for the access rules), when the roster has them */
  category?: string | null
  tags?: readonly string[]
}

interface Cached {
  participantId: string | null
  status: ParticipantStatus | 'unknown'
  category: string | null
  tags: readonly string[]
}

const UNKNOWN: Cached = Object.freeze({ participantId: null, status: 'unknown', category: null, tags: [] })

/**
 * Validation: an L1 LRU (bounded by entries) over the SQLite roster. Unknown tokens are cached
 * negatively for a short time, so a foreign token broadcast ten times a second costs one query.
 * A roster change clears the affected entries.
 */
export class Validator {
  private readonly l1: LRUCache<string, Cached>
  private rosterVersion: number
  hits = 0
  misses = 0

  constructor(
    private readonly roster: RosterStore,
    opts: { maxEntries: number; negativeTtlMs: number; clock: Clock },
  ) {
    this.negativeTtlMs = opts.negativeTtlMs
    this.l1 = new LRUCache<string, Cached>({
      max: opts.maxEntries,
      // TTLs on the agent's monotonic clock; ttlResolution 0 so a fake clock is honoured exactly
      perf: { now: () => opts.clock.mono() },
      ttlResolution: 0,
    })
    this.rosterVersion = roster.version()
    roster.onChange((tokens) => this.invalidate(tokens))
  }

  private readonly negativeTtlMs: number

  /** The current roster version (decisions record it). */
  version(): number {
    return this.rosterVersion
  }

  /** Who holds `token` by the roster, or null (an "already checked in" record names them). */
  participantOf(token: string): string | null {
    return this.validate(token).participantId
  }

  /** Admit or deny a token by the roster. */
  validate(token: string): Verdict {
    let cached = this.l1.get(token)
    if (cached !== undefined) {
      this.hits++
    } else {
      this.misses++
      const row = this.roster.lookup(token)
      if (row) {
        cached = {
          participantId: row.participantId,
          status: row.status,
          category: row.category,
          tags: row.tags,
        }
        this.l1.set(token, cached)
      } else {
        cached = UNKNOWN
        if (this.negativeTtlMs > 0) this.l1.set(token, UNKNOWN, { ttl: this.negativeTtlMs })
      }
    }
    const version = this.rosterVersion
    switch (cached.status) {
      case 'active':
        return {
          decision: 'admit',
          reason: null,
          participantId: cached.participantId,
          rosterVersion: version,
          category: cached.category,
          tags: cached.tags,
        }
      case 'unknown':
        return { decision: 'deny', reason: 'unknown', participantId: null, rosterVersion: version }
      default:
        return {
          decision: 'deny',
          reason: cached.status,
          participantId: cached.participantId,
          rosterVersion: version,
        }
    }
  }

  /** Drop cached entries for these tokens (null: all of them) and re-read the roster version. */
  invalidate(tokens: readonly string[] | null): void {
    if (tokens === null) this.l1.clear()
    else for (const token of tokens) this.l1.delete(token)
    this.rosterVersion = this.roster.version()
  }

  /** L1 hit rate since start (0..1), or null before the first look-up. */
  hitRate(): number | null {
    const lookups = this.hits + this.misses
    return lookups === 0 ? null : this.hits / lookups
  }

  size(): number {
    return this.l1.size
  }
}

/**
 * One entry, the same in both layers. Its fields are short because they are stored, as JSON, with
 * every entry in Redis, where nodes of two versions meet during a rollout: renamed, an older
 * node would take every newer entry for garbage.
 */
export interface Entry {
  /** the value; `null` is a cached "does not exist" (negative caching) */
  v: unknown
  /**
   * when it stops being fresh (logical expiry), ms since the epoch; it is kept `graceMs` longer so
   * that it can be served when the source fails (fail-safe)
   */
  exp: number
  /** the version of each of its tags when it was written: a tag invalidation bumps the version */
  tv?: Record<string, number>
}

/** How one key is cached. */
export interface EntryOptions {
  /** freshness, ms (L1 caps it at `l1MaxTtlMs`) */
  ttlMs?: number
  /** freshness of a cached "not found", ms */
  negativeTtlMs?: number
  /** tags: invalidating a tag drops every entry written with it, on every node */
  tags?: readonly string[]
}

/** The size L1 counts for a value against its byte bound: its JSON length, roughly. */
export function sizeOf(value: unknown): number {
  if (value === null || value === undefined) return 8
  if (typeof value === 'string') return value.length + 8
  try {
    return Math.max(8, JSON.stringify(value)?.length ?? 8)
  } catch {
    return 1024
  }
}

/** An entry read from L2, or null when it is not one this code wrote. */
export function parseEntry(raw: string): Entry | null {
  try {
    const entry = JSON.parse(raw) as Entry
    return entry && typeof entry === 'object' && typeof entry.exp === 'number' && 'v' in entry ? entry : null
  } catch {
    return null
  }
}

/**
 * One entry, the same in both layers. `v` is the value; `null` is a cached "does not exist"
 * (negative caching). `exp` is when it stops being fresh (logical expiry, ms since epoch); it is
 * kept `grace` ms longer so that it can be served when the source fails (fail-safe). `tv` holds
 * the version of each of its tags when it was written: a tag invalidation bumps the version.
 */
export interface Entry {
  v: unknown
  exp: number
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
export function sizeOf(v: unknown): number {
  if (v === null || v === undefined) return 8
  if (typeof v === 'string') return v.length + 8
  try {
    return Math.max(8, JSON.stringify(v)?.length ?? 8)
  } catch {
    return 1024
  }
}

/** An entry read from L2, or null when it is not one this code wrote. */
export function parseEntry(raw: string): Entry | null {
  try {
    const e = JSON.parse(raw) as Entry
    return e && typeof e === 'object' && typeof e.exp === 'number' && 'v' in e ? e : null
  } catch {
    return null
  }
}

import { randomBytes } from 'node:crypto'
import type pg from 'pg'
import type { Logger } from 'pino'

/** Most participants one node indexes (16 bytes each); past it the rest are checked in Postgres. */
const MAX_ENTRIES = 8_000_000
/** participants read per query while loading */
const PAGE = 50_000

// every change to participants takes the next roster_seq, in commit order (the participants_take_turn
// trigger): reading "after the cursor" never skips a change
const LOAD_SQL = `
SELECT coalesce(event_id, '') AS e, id AS p, token AS t, roster_seq::text AS s
  FROM participants WHERE roster_seq > $1 ORDER BY roster_seq LIMIT ${PAGE}`

/**
 * The (event, participant, badge) triples of the cloud's roster, on each node, hashed to 64 bits
 * in an open-addressing table: the event check's fast path, so that the usual record (a participant
 * of the gate's event with its badge) costs Postgres nothing. A primary-key probe per record cost
 * Postgres 3-4 ms of CPU per 1,000 records with 16 uploads at once, a fifth more than storing them;
 * a look-up here costs 0.1-0.3 µs (100,000 to 4,000,000 participants, 16 bytes each).
 *
 * It only says yes. A triple once on the roster stays in it until the node restarts (a participant
 * moved or deleted since, or given another badge: the gate may have decided before it heard, and
 * the database check accepts those too, but for an old badge now held in another event); a triple it does not hold (a participant imported a moment
 * ago, an unknown one, another event's) is checked in Postgres. The hash is keyed with a secret of
 * the process, so that a gate cannot make up a record whose hash matches a triple of the roster.
 */
export class RosterIndex {
  private hi = new Uint32Array(1 << 12)
  private lo = new Uint32Array(1 << 12)
  private count = 0
  private cursor = 0
  private full = false
  private loading: Promise<void> | null = null
  private again = false
  // the hash's key: a secret of this process
  private readonly s1: number
  private readonly s2: number
  // the last hash, as two 32-bit halves (no array per call)
  private h1 = 0
  private h2 = 0

  constructor(
    private readonly pool: pg.Pool,
    private readonly log?: Logger,
  ) {
    const key = randomBytes(8)
    this.s1 = key.readUInt32LE(0) ^ 0xdeadbeef
    this.s2 = key.readUInt32LE(4) ^ 0x41c6ce57
  }

  /** Triples indexed. */
  get size(): number {
    return this.count
  }

  /** Was `participantId` with `token` on the roster of event `eventId` (null: no event)? */
  has(eventId: string | null, participantId: string, token: string): boolean {
    this.hash(eventId ?? '', participantId, token)
    const mask = this.hi.length - 1
    for (let i = this.h1 & mask; ; i = (i + 1) & mask) {
      const a = this.hi[i] as number
      const b = this.lo[i] as number
      if (a === 0 && b === 0) return false
      if (a === this.h1 && b === this.h2) return true
    }
  }

  /**
   * Read the roster's changes since the last read (at start, and on each participants_changed). Calls
   * while one runs make it read once more at its end, so a change is never left unread.
   */
  refresh(): Promise<void> {
    if (this.loading) {
      this.again = true
      return this.loading
    }
    const run = async () => {
      do {
        this.again = false
        for (;;) {
          const r = await this.pool.query<{ e: string; p: string; t: string; s: string }>(LOAD_SQL, [
            this.cursor,
          ])
          for (const row of r.rows) this.add(row.e, row.p, row.t)
          const last = r.rows[r.rows.length - 1]
          if (last) this.cursor = Number(last.s)
          if (r.rows.length < PAGE) break
        }
      } while (this.again)
    }
    this.loading = run()
      .catch((err: Error) =>
        this.log?.warn({ err: err.message }, 'roster index: reading participants failed'),
      )
      .finally(() => {
        this.loading = null
      })
    return this.loading
  }

  private add(e: string, p: string, t: string): void {
    if (this.full) return
    if (this.count >= MAX_ENTRIES) {
      this.full = true
      this.log?.warn(
        { entries: this.count },
        'roster index full: further participants are checked in Postgres',
      )
      return
    }
    if ((this.count + 1) * 2 > this.hi.length) this.grow()
    this.hash(e, p, t)
    if (this.insert(this.h1, this.h2)) this.count++
  }

  private insert(a: number, b: number): boolean {
    const mask = this.hi.length - 1
    for (let i = a & mask; ; i = (i + 1) & mask) {
      const x = this.hi[i] as number
      const y = this.lo[i] as number
      if (x === 0 && y === 0) {
        this.hi[i] = a
        this.lo[i] = b
        return true
      }
      if (x === a && y === b) return false
    }
  }

  private grow(): void {
    const { hi, lo } = this
    this.hi = new Uint32Array(hi.length * 2)
    this.lo = new Uint32Array(lo.length * 2)
    for (let i = 0; i < hi.length; i++) {
      const a = hi[i] as number
      const b = lo[i] as number
      if (a !== 0 || b !== 0) this.insert(a, b)
    }
  }

  /** A keyed 64-bit hash of the triple into h1, h2 (the parts apart as by a NUL, which stored text never holds). */
  private hash(e: string, p: string, t: string): void {
    let h1 = this.s1
    let h2 = this.s2
    for (let i = 0; i < e.length; i++) {
      const c = e.charCodeAt(i)
      h1 = Math.imul(h1 ^ c, 2654435761)
      h2 = Math.imul(h2 ^ c, 1597334677)
    }
    h1 = Math.imul(h1, 2654435761)
    h2 = Math.imul(h2 ^ 0x9e3779b9, 1597334677)
    for (let i = 0; i < p.length; i++) {
      const c = p.charCodeAt(i)
      h1 = Math.imul(h1 ^ c, 2654435761)
      h2 = Math.imul(h2 ^ c, 1597334677)
    }
    h1 = Math.imul(h1, 2654435761)
    h2 = Math.imul(h2 ^ 0x9e3779b9, 1597334677)
    for (let i = 0; i < t.length; i++) {
      const c = t.charCodeAt(i)
      h1 = Math.imul(h1 ^ c, 2654435761)
      h2 = Math.imul(h2 ^ c, 1597334677)
    }
    const a = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909)
    const b = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(a ^ (a >>> 13), 3266489909)
    this.h1 = a >>> 0
    // (0, 0) marks an empty slot
    this.h2 = a === 0 && b === 0 ? 1 : b >>> 0
  }
}

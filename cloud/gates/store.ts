import { LRUCache } from 'lru-cache'
import type pg from 'pg'
import { GateError } from '../../shared/errors.js'
import { ensureEvent } from '../participants/import.js'
import { generateKey, parseKey, secretMatches } from './keys.js'

export const GATE_ID_RE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/

function checkGateId(id: string): void {
  if (!GATE_ID_RE.test(id))
    throw new GateError('E_INPUT', `gate id "${id}": letters, digits, '-' and '_' only, at most 64`)
  // the broker account of that name is the cloud's, which reads every gate and commands them
  if (id === 'gate-cloud') throw new GateError('E_INPUT', 'gate id "gate-cloud" is reserved for the cloud')
}

/** Register a gate and issue its first key (printed once by the CLI). Fails if the gate exists. */
export async function addGate(
  db: pg.Pool,
  gateId: string,
  opts: { name?: string; eventId?: string } = {},
): Promise<string> {
  checkGateId(gateId)
  const k = generateKey()
  const client = await db.connect()
  try {
    await client.query('BEGIN')
    if (opts.eventId) await ensureEvent(client, opts.eventId)
    const r = await client.query(
      'INSERT INTO gates (id, name, event_id) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING',
      [gateId, opts.name ?? null, opts.eventId ?? null],
    )
    if (r.rowCount === 0)
      throw new GateError(
        'E_INPUT',
        `gate ${gateId} already exists; use \`gate-cloud gates rotate ${gateId}\` for a new key`,
      )
    await client.query('INSERT INTO gate_keys (key_id, gate_id, secret_sha256) VALUES ($1, $2, $3)', [
      k.keyId,
      gateId,
      k.secretSha256,
    ])
    await client.query('COMMIT')
    return k.key
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {})
    throw err
  } finally {
    client.release()
  }
}

/**
 * Issue a new key for a gate. The old keys keep working for `graceS` seconds (0 = revoked now), so a
 * gate in the field can be given its new key without a gap.
 */
export async function rotateKey(db: pg.Pool, gateId: string, graceS: number): Promise<string> {
  checkGateId(gateId)
  const exists = await db.query('SELECT 1 FROM gates WHERE id = $1', [gateId])
  if (exists.rowCount === 0) throw new GateError('E_NOT_FOUND', `no gate ${gateId}`)
  const k = generateKey()
  await db.query(
    `WITH old AS (UPDATE gate_keys SET expires_at = now() + make_interval(secs => $3)
                   WHERE gate_id = $2 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now() + make_interval(secs => $3)))
     INSERT INTO gate_keys (key_id, gate_id, secret_sha256) VALUES ($1, $2, $4)`,
    [k.keyId, gateId, graceS, k.secretSha256],
  )
  return k.key
}

/** Revoke every key of a gate now. Returns how many keys were revoked. */
export async function revokeGate(db: pg.Pool, gateId: string): Promise<number> {
  const r = await db.query(
    'UPDATE gate_keys SET revoked_at = now() WHERE gate_id = $1 AND revoked_at IS NULL',
    [gateId],
  )
  const exists = await db.query('SELECT 1 FROM gates WHERE id = $1', [gateId])
  if (exists.rowCount === 0) throw new GateError('E_NOT_FOUND', `no gate ${gateId}`)
  return r.rowCount ?? 0
}

export interface GateRow {
  id: string
  name: string | null
  activeKeys: number
  lastSeenAt: Date | null
  lastSkewMs: number | null
}

export async function listGates(db: pg.Pool): Promise<GateRow[]> {
  const r = await db.query<{
    id: string
    name: string | null
    active_keys: string
    last_seen_at: Date | null
    last_skew_ms: string | null
  }>(
    `SELECT g.id, g.name, g.last_seen_at, g.last_skew_ms,
            count(k.key_id) FILTER (WHERE k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())) AS active_keys
       FROM gates g LEFT JOIN gate_keys k ON k.gate_id = g.id GROUP BY g.id ORDER BY g.id`,
  )
  return r.rows.map((x) => ({
    id: x.id,
    name: x.name,
    activeKeys: Number(x.active_keys),
    lastSeenAt: x.last_seen_at,
    lastSkewMs: x.last_skew_ms === null ? null : Number(x.last_skew_ms),
  }))
}

/** The events the registered gates belong to (null: gates without an event). */
export async function gateEventIds(db: pg.Pool): Promise<Array<string | null>> {
  const r = await db.query<{ event_id: string | null }>('SELECT DISTINCT event_id FROM gates')
  return r.rows.map((x) => x.event_id)
}

/** Who a valid key belongs to. */
export interface GateIdentity {
  gateId: string
  /** the gate's event (its roster is that event's participants); null: no event */
  eventId: string | null
}

/** Loads of the key-id list asked for by keys not on it: a burst of this many, then one a second. */
const UNKNOWN_RELOAD_BURST = 5
const UNKNOWN_RELOAD_PER_S = 1

/**
 * Finds which gate a presented key belongs to. Valid keys are cached briefly so a busy gate does not
 * cost a query per batch (a revoked key stops working within `ttlMs`, at once where NOTIFY reaches
 * the node). A key is looked up only when its key id is one of the active keys, whose list is kept
 * in memory: a made-up key, however well formed, costs no query and takes no cache entry of a
 * real gate's. Wrong secrets of real key ids are remembered in a cache of their own for the same reason.
 */
export class GateAuthenticator {
  private readonly valid: LRUCache<string, GateIdentity>
  private readonly denied: LRUCache<string, true>
  /** the key ids of the active keys, and when they were read */
  private known: { ids: Set<string>; at: number } | null = null
  private loading: Promise<Set<string>> | null = null
  /** a token bucket for the loads that a key id not on the list asks for */
  private reloads = { tokens: UNKNOWN_RELOAD_BURST, at: 0 }
  /** bumped by clear(): a look-up that started before a clear does not cache its answer */
  private generation = 0

  constructor(
    private readonly db: pg.Pool,
    private readonly ttlMs = 30_000,
    private readonly now: () => number = Date.now,
  ) {
    this.valid = new LRUCache({ max: 10_000, ttl: ttlMs })
    this.denied = new LRUCache({ max: 10_000, ttl: ttlMs })
  }

  /** The gate (and its event) for a bearer key, or null when the key is unknown, wrong, revoked or expired. */
  async authenticate(key: string): Promise<GateIdentity | null> {
    const hit = this.valid.get(key)
    if (hit) return hit
    if (this.denied.has(key)) return null
    const p = parseKey(key)
    if (!p) return null
    const generation = this.generation
    if (!(await this.isActiveKeyId(p.keyId))) return null
    const r = await this.db.query<{
      gate_id: string
      event_id: string | null
      secret_sha256: Buffer
      ok: boolean
      /** ms until a rotated key's grace ends (null: no end) */
      expires_in_ms: number | null
    }>(
      `SELECT k.gate_id, g.event_id, k.secret_sha256,
              (k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())) AS ok,
              (extract(epoch FROM k.expires_at - now()) * 1000)::float8 AS expires_in_ms
         FROM gate_keys k JOIN gates g ON g.id = k.gate_id WHERE k.key_id = $1`,
      [p.keyId],
    )
    const row = r.rows[0]
    const id =
      row?.ok && secretMatches(p.secret, row.secret_sha256)
        ? { gateId: row.gate_id, eventId: row.event_id }
        : null
    // a key revoked while this look-up ran: the answer may predate it, so it is not kept
    if (generation !== this.generation) return id
    if (!id) {
      this.denied.set(key, true)
      return null
    }
    // a rotated key is trusted from the cache only until its grace ends, not for the whole TTL
    const ttl = row?.expires_in_ms != null ? Math.min(this.ttlMs, Math.max(1, row.expires_in_ms)) : this.ttlMs
    this.valid.set(key, id, { ttl })
    return id
  }

  /**
   * Whether a key id is one of the active keys. One not on the list read last may be a key made
   * since (on a server whose NOTIFY does not reach this node), so the list is read again, but only
   * as the token bucket allows: a flood of made-up keys costs about one query a second, not one each.
   */
  private async isActiveKeyId(keyId: string): Promise<boolean> {
    const known = this.known
    if (!known || this.now() - known.at >= this.ttlMs) return (await this.loadKeyIds()).has(keyId)
    if (known.ids.has(keyId)) return true
    if (!this.takeReload()) return false
    return (await this.loadKeyIds()).has(keyId)
  }

  /** Read the active key ids; callers at the same time share one query. */
  private loadKeyIds(): Promise<Set<string>> {
    if (this.loading) return this.loading
    const generation = this.generation
    const loading = this.db
      .query<{ key_id: string }>(
        'SELECT key_id FROM gate_keys WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())',
      )
      .then((r) => {
        const ids = new Set(r.rows.map((x) => x.key_id))
        if (generation === this.generation) this.known = { ids, at: this.now() }
        return ids
      })
      .finally(() => {
        if (this.loading === loading) this.loading = null
      })
    this.loading = loading
    return loading
  }

  private takeReload(): boolean {
    const t = this.now()
    const b = this.reloads
    b.tokens = Math.min(UNKNOWN_RELOAD_BURST, b.tokens + ((t - b.at) / 1000) * UNKNOWN_RELOAD_PER_S)
    b.at = t
    if (b.tokens < 1) return false
    b.tokens -= 1
    return true
  }

  /** Forget every checked key (a key or a gate changed somewhere: LISTEN gate_keys_changed). */
  clear(): void {
    this.generation++
    this.valid.clear()
    this.denied.clear()
    this.known = null
    this.loading = null
  }
}

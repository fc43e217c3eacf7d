import type pg from 'pg'
import { z } from 'zod'
import { AccessEngine } from '../../shared/access/engine.js'
import { type Allotment, rebalance } from '../../shared/access/escrow.js'
import { type GateTally, occupancy } from '../../shared/access/occupancy.js'
import type { AccessPolicy } from '../../shared/access/policy.js'
import type { Queryable } from '../db/pool.js'
import { currentPolicy } from './policies.js'

/** A gate's report: its tallies by zone (POST /v1/sync/occupancy). */
export const tallyReportSchema = z
  .object({
    tallies: z.record(
      z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/),
      z
        .object({
          period: z
            .string()
            .regex(/^(\d{4}-\d{2}-\d{2})?$/, "a local date, YYYY-MM-DD, or '' for a zone never reset"),
          entries: z.number().int().nonnegative().max(1e12),
          exits: z.number().int().nonnegative().max(1e12),
          annulled: z.number().int().nonnegative().max(1e12),
        })
        .strict(),
    ),
  })
  .strict()
  .refine((r) => Object.keys(r.tallies).length <= 500, 'at most 500 zones')

/** What the cloud answers a gate's report: its allotments, and the zones' occupancy as merged now. */
export interface TallyAnswer {
  policyVersion: number
  allotments: Record<string, Allotment>
  occupancy: Record<string, number>
}

// the merge of a PN-counter share: a later period replaces, the same period takes the larger
// figures, an earlier one changes nothing (shared/access/occupancy.ts, mergeTally)
const MERGE_SQL = `
INSERT INTO zone_tallies AS t (event_id, zone, gate_id, period, entries, exits, annulled)
SELECT $1, u.zone, $2, u.period, u.entries, u.exits, u.annulled
  FROM unnest($3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::bigint[]) AS u(zone, period, entries, exits, annulled)
ON CONFLICT (event_id, zone, gate_id) DO UPDATE SET
  period = GREATEST(t.period, EXCLUDED.period),
  entries = CASE WHEN EXCLUDED.period > t.period THEN EXCLUDED.entries
                 WHEN EXCLUDED.period = t.period THEN GREATEST(t.entries, EXCLUDED.entries) ELSE t.entries END,
  exits = CASE WHEN EXCLUDED.period > t.period THEN EXCLUDED.exits
               WHEN EXCLUDED.period = t.period THEN GREATEST(t.exits, EXCLUDED.exits) ELSE t.exits END,
  annulled = CASE WHEN EXCLUDED.period > t.period THEN EXCLUDED.annulled
                  WHEN EXCLUDED.period = t.period THEN GREATEST(t.annulled, EXCLUDED.annulled) ELSE t.annulled END,
  updated_at = now()`

type TallyRow = { gate_id: string; period: string; entries: string; exits: string; annulled: string }

function tallyOf(r: TallyRow): GateTally {
  return {
    period: r.period,
    entries: Number(r.entries),
    exits: Number(r.exits),
    annulled: Number(r.annulled),
  }
}

/**
 * Merge gate `gateId`'s report into its event's tallies and, for each zone with a capacity that
 * the gate lets people into, rebalance the entry gates' allotments (shared/access/escrow.ts); one
 * transaction, the zone's writers taking turns. Zones the policy does not know are ignored.
 */
export async function reportTallies(
  pool: pg.Pool,
  eventId: string,
  gateId: string,
  report: z.infer<typeof tallyReportSchema>,
  now: number,
): Promise<TallyAnswer> {
  const policy = await currentPolicy(pool, eventId)
  const answer: TallyAnswer = { policyVersion: policy?.version ?? 0, allotments: {}, occupancy: {} }
  if (policy === null) return answer
  const engine = new AccessEngine(policy)
  const known = Object.entries(report.tallies).filter(([zone]) => engine.zone(zone) !== undefined)
  const client = await pool.connect()
  try {
    await client.query('BEGIN')
    if (known.length > 0)
      await client.query(MERGE_SQL, [
        eventId,
        gateId,
        known.map(([z]) => z),
        known.map(([, t]) => t.period),
        known.map(([, t]) => t.entries),
        known.map(([, t]) => t.exits),
        known.map(([, t]) => t.annulled),
      ])
    for (const zone of policy.zones) {
      const entryGates = policy.lanes.filter((l) => l.to === zone.id).map((l) => l.gate)
      if (zone.capacity === undefined || !entryGates.includes(gateId)) continue
      await client.query("SELECT pg_advisory_xact_lock(hashtext('zone_allotments'), hashtext($1))", [
        `${eventId}/${zone.id}`,
      ])
      const period = engine.period(zone.id, now)
      const tallies = await zoneTallies(client, eventId, zone.id)
      const held = await client.query<{ gate_id: string; period: string; lim: string }>(
        'SELECT gate_id, period, lim FROM zone_allotments WHERE event_id = $1 AND zone = $2',
        [eventId, zone.id],
      )
      const before: Record<string, Allotment> = {}
      for (const r of held.rows) before[r.gate_id] = { period: r.period, limit: Number(r.lim) }
      const after = rebalance({ capacity: zone.capacity, period, tallies, allotments: before, entryGates })
      const changed = Object.entries(after).filter(
        ([g, a]) => before[g]?.period !== a.period || before[g]?.limit !== a.limit,
      )
      if (changed.length > 0)
        await client.query(
          `INSERT INTO zone_allotments AS a (event_id, zone, gate_id, period, lim)
           SELECT $1, $2, u.gate, $3, u.lim FROM unnest($4::text[], $5::bigint[]) AS u(gate, lim)
           ON CONFLICT (event_id, zone, gate_id) DO UPDATE SET period = EXCLUDED.period, lim = EXCLUDED.lim, updated_at = now()`,
          [eventId, zone.id, period, changed.map(([g]) => g), changed.map(([, a]) => a.limit)],
        )
      const mine = after[gateId]
      if (mine) answer.allotments[zone.id] = mine
    }
    await client.query('COMMIT')
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {})
    throw err
  } finally {
    client.release()
  }
  // the policy already read: every gate reports about once a second
  for (const z of (await zoneOccupancy(pool, eventId, now, policy)) ?? [])
    answer.occupancy[z.zone] = z.occupancy
  return answer
}

async function zoneTallies(db: Queryable, eventId: string, zone: string): Promise<Record<string, GateTally>> {
  const r = await db.query<TallyRow>(
    'SELECT gate_id, period, entries, exits, annulled FROM zone_tallies WHERE event_id = $1 AND zone = $2',
    [eventId, zone],
  )
  const out: Record<string, GateTally> = {}
  for (const row of r.rows) out[row.gate_id] = tallyOf(row)
  return out
}

/** One zone's live figures: people inside, its capacity, and each gate's counts and allotment. */
export interface ZoneOccupancy {
  zone: string
  name: string
  period: string
  occupancy: number
  capacity: number | null
  gates: Array<GateTally & { gateId: string; limit: number | null }>
}

/** The live occupancy of every zone of an event's policy (null: the event has no policy). */
export async function zoneOccupancy(
  db: Queryable,
  eventId: string,
  now: number,
  inForce?: AccessPolicy,
): Promise<ZoneOccupancy[] | null> {
  const policy = inForce ?? (await currentPolicy(db, eventId))
  if (policy === null) return null
  const engine = new AccessEngine(policy)
  const tallies = await db.query<TallyRow & { zone: string }>(
    'SELECT zone, gate_id, period, entries, exits, annulled FROM zone_tallies WHERE event_id = $1',
    [eventId],
  )
  const limits = await db.query<{ zone: string; gate_id: string; period: string; lim: string }>(
    'SELECT zone, gate_id, period, lim FROM zone_allotments WHERE event_id = $1',
    [eventId],
  )
  return policy.zones.map((zone) => {
    const period = engine.period(zone.id, now)
    const byGate: Record<string, GateTally> = {}
    for (const r of tallies.rows) if (r.zone === zone.id) byGate[r.gate_id] = tallyOf(r)
    return {
      zone: zone.id,
      name: zone.name,
      period,
      occupancy: occupancy({ [zone.id]: byGate }, zone.id, period),
      capacity: zone.capacity ?? null,
      gates: Object.entries(byGate)
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([gateId, t]) => {
          const l = limits.rows.find((x) => x.zone === zone.id && x.gate_id === gateId && x.period === period)
          return { gateId, ...t, limit: l ? Number(l.lim) : null }
        }),
    }
  })
}

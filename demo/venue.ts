import type pg from 'pg'
import { currentPolicy, putPolicy } from '../cloud/access/policies.js'
import type { RosterEntry } from '../shared/roster.js'

/** The demo's event: its gates and participants belong to it, and it has an access policy. */
export const DEMO_EVENT = 'demo'
/** The demo event's organiser's login (the password is kept with the demo's secrets). */
export const DEMO_ORGANISER = 'organiser'

/** Every tenth participant holds a VIP ticket; the rest standard ones. */
export function withCategories(entries: readonly RosterEntry[]): RosterEntry[] {
  return entries.map((e, i) => ({ ...e, category: i % 10 === 0 ? 'vip' : 'standard' }))
}

/**
 * The demo venue's access policy: one hall with a capacity of half the crowd, the doors entrances
 * to it and the last one its exit (with two doors or more), so that the console shows a zone
 * filling, people leaving, and entries turned away once it is full. Stored once: a later start
 * keeps the version in force.
 */
export async function ensureDemoPolicy(
  pool: pg.Pool,
  gateIds: readonly string[],
  participants: number,
): Promise<{ capacity: number; exit: string | null }> {
  const exit = gateIds.length >= 2 ? (gateIds[gateIds.length - 1] as string) : null
  const capacity = Math.max(1, Math.floor(participants / 2))
  const current = await currentPolicy(pool, DEMO_EVENT)
  if (current === null)
    await putPolicy(pool, DEMO_EVENT, {
      timeZone: 'UTC',
      zones: [{ id: 'hall', name: 'Main hall', capacity, whenFull: 'deny', checkoutAt: '04:00' }],
      lanes: gateIds.map((gate) => (gate === exit ? { gate, from: 'hall' } : { gate, to: 'hall' })),
      rules: [{ id: 'tickets', name: 'Conference tickets', zone: 'hall', categories: ['vip', 'standard'] }],
    })
  const zone = (current ?? (await currentPolicy(pool, DEMO_EVENT)))?.zones.find((z) => z.id === 'hall')
  return { capacity: zone?.capacity ?? capacity, exit }
}

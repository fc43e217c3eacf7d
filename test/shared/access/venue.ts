import type { History } from '../../../shared/access/engine.js'
import { type AccessPolicy, parsePolicy } from '../../../shared/access/policy.js'

/**
 * The worked example of the docs (docs/access-model.md): a conference venue in Berlin with a hall
 * anyone with a ticket enters, a VIP lounge inside the hall open from 18:00 for VIP tickets and
 * speakers, and a workshop room entered once per day by those who booked it.
 */
export const VENUE_JSON = {
  version: 3,
  timeZone: 'Europe/Berlin',
  zones: [
    { id: 'hall', name: 'Main hall', capacity: 2000, checkoutAt: '04:00' },
    { id: 'vip', name: 'VIP lounge', capacity: 120 },
    { id: 'workshop', name: 'Workshop room', capacity: 40, whenFull: 'warn' },
  ],
  lanes: [
    { gate: 'north-in', to: 'hall' },
    { gate: 'south-in', to: 'hall' },
    { gate: 'south-out', from: 'hall' },
    { gate: 'vip-door', from: 'hall', to: 'vip' },
    { gate: 'vip-out', from: 'vip', to: 'hall' },
    { gate: 'workshop-door', from: 'hall', to: 'workshop' },
  ],
  rules: [
    { id: 'hall-all', name: 'Conference tickets', zone: 'hall', antiPassback: true },
    {
      id: 'vip-evening',
      name: 'VIP guests',
      zone: 'vip',
      categories: ['vip'],
      tags: ['speaker'],
      from: '18:00',
      until: '02:00',
      antiPassback: true,
    },
    {
      id: 'workshop-booked',
      name: 'Workshop bookings',
      zone: 'workshop',
      tags: ['workshop'],
      dates: ['2026-12-05', '2026-12-06'],
      entriesPerDay: 1,
    },
  ],
}

export function venue(): AccessPolicy {
  const r = parsePolicy(VENUE_JSON)
  if (!r.ok) throw new Error(r.problems.join('; '))
  return r.policy
}

/** 2026-12-05 at hh:mm in Berlin (UTC+1 in December), as ms since the epoch. */
export function berlin(hhmm: string, day = '2026-12-05'): number {
  return Date.parse(`${day}T${hhmm}:00+01:00`)
}

/** A participant's past as plain data: inside which zones, entries by zone and by zone and day. */
export class PlainHistory implements History {
  readonly in = new Set<string>()
  readonly total = new Map<string, number>()
  readonly daily = new Map<string, number>()

  inside(zone: string): boolean {
    return this.in.has(zone)
  }
  entriesOn(zone: string, day: string): number {
    return this.daily.get(`${zone}/${day}`) ?? 0
  }
  entries(zone: string): number {
    return this.total.get(zone) ?? 0
  }

  /** What an admit changes: in the zone entered, out of the zone left, one entry more. */
  apply(v: { enters: string | null; leaves: string | null }, day: string): void {
    if (v.leaves !== null) this.in.delete(v.leaves)
    if (v.enters !== null) {
      this.in.add(v.enters)
      this.total.set(v.enters, this.entries(v.enters) + 1)
      this.daily.set(`${v.enters}/${day}`, this.entriesOn(v.enters, day) + 1)
    }
  }
}

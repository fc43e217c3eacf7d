import { type Allotment, placesLeft } from '../../shared/access/escrow.js'
import type { GateTally } from '../../shared/access/occupancy.js'
import { type Db, getMeta, setMeta } from '../store/db.js'

/**
 * This gate's share of each zone's occupancy, and the allotments the cloud handed it.
 *
 * The tallies (entries, exits, annulled, per zone and period) are counted from the gate's own
 * admits as they become durable and rebuilt from its SQLite file at start, so they are as durable as
 * the decisions. The allotments are kept in the file's meta table: after a restart offline the
 * gate still admits only what it was allotted. Places left in a zone with a capacity are the
 * allotment less this gate's counted entries (shared/access/escrow.ts); a gate never given one
 * has none, and applies the zone's full policy.
 */
export class TallyBook {
  private readonly tallies = new Map<string, GateTally>()
  private allotments: Record<string, Allotment>
  /** bumped by every count: the occupancy sync sends when it moved */
  changes = 0

  constructor(private readonly db: Db) {
    this.allotments = readAllotments(getMeta(db, 'access_allotments'))
  }

  /** One entry into `zone` in `period`. */
  entered(zone: string, period: string): void {
    this.tally(zone, period).entries++
    this.changes++
  }

  /** One exit from `zone` in `period`. */
  left(zone: string, period: string): void {
    this.tally(zone, period).exits++
    this.changes++
  }

  /** One entry into `zone` annulled (the person never went through): its place is free again. */
  annul(zone: string, period: string): void {
    this.tally(zone, period).annulled++
    this.changes++
  }

  /** The tallies to report, by zone. */
  report(): Record<string, GateTally> {
    return Object.fromEntries([...this.tallies].map(([zone, t]) => [zone, { ...t }]))
  }

  /** Keep the allotments the cloud answered (only for the zones it answered about). */
  allot(allotments: Record<string, Allotment>): void {
    const next = { ...this.allotments, ...allotments }
    if (JSON.stringify(next) === JSON.stringify(this.allotments)) return
    this.allotments = next
    setMeta(this.db, 'access_allotments', JSON.stringify(next))
  }

  /** Places this gate may still fill in `zone` in `period`. */
  placesLeft(zone: string, period: string): number {
    return placesLeft(this.allotments[zone], this.tallies.get(zone), period)
  }

  /** The zones the cloud allotted this gate places in. */
  allottedZones(): string[] {
    return Object.keys(this.allotments)
  }

  allotment(zone: string): Allotment | undefined {
    return this.allotments[zone]
  }

  /** The zone's tally in `period`: a later period starts from zero (the nightly checkout). */
  private tally(zone: string, period: string): GateTally {
    const t = this.tallies.get(zone)
    if (t !== undefined && t.period >= period) return t
    const fresh = { period, entries: 0, exits: 0, annulled: 0 }
    this.tallies.set(zone, fresh)
    return fresh
  }
}

function readAllotments(text: string | undefined): Record<string, Allotment> {
  if (text === undefined) return {}
  try {
    const v = JSON.parse(text) as Record<string, Allotment>
    return typeof v === 'object' && v !== null ? v : {}
  } catch {
    return {}
  }
}

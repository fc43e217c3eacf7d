import type { History } from '../../shared/access/engine.js'

/** One participant's past in one zone. */
interface ZonePast {
  /** the zone's period of their last entry, if they have not left since; null: not inside */
  insideSince: string | null
  total: number
  /** entries by local day (YYYY-MM-DD) */
  byDay: Map<string, number>
}

/** A passage as the gate recorded it: who, into and out of which zone, in which period, on which local day. */
export interface Passage {
  participantId: string
  zoneIn: string | null
  zoneOut: string | null
  /** the period of the zone entered (AccessEngine.period) */
  period: string
  /** the local day of the entry */
  day: string
}

/**
 * What this gate knows of each participant's movements between zones: the history the access rules
 * are evaluated against. Kept in memory, fed with every admit as it is made durable, and rebuilt at
 * start from the decisions in the gate's SQLite file.
 */
export class ZoneLedger {
  private readonly people = new Map<string, Map<string, ZonePast>>()

  /** Record a passage (an admit that entered or left a zone). */
  record(p: Passage): void {
    let zones = this.people.get(p.participantId)
    if (zones === undefined) {
      zones = new Map()
      this.people.set(p.participantId, zones)
    }
    if (p.zoneOut !== null) {
      const out = zones.get(p.zoneOut)
      if (out) out.insideSince = null
    }
    if (p.zoneIn !== null) {
      let past = zones.get(p.zoneIn)
      if (past === undefined) {
        past = { insideSince: null, total: 0, byDay: new Map() }
        zones.set(p.zoneIn, past)
      }
      past.insideSince = p.period
      past.total++
      past.byDay.set(p.day, (past.byDay.get(p.day) ?? 0) + 1)
    }
  }

  /**
   * One participant's history for the engine; `period(zone)` gives each zone's current period
   * (an entry of an earlier period was undone by the nightly checkout).
   */
  history(participantId: string, period: (zone: string) => string): History {
    const zones = this.people.get(participantId)
    return {
      inside: (zone) => {
        const since = zones?.get(zone)?.insideSince ?? null
        return since !== null && since === period(zone)
      },
      entries: (zone) => zones?.get(zone)?.total ?? 0,
      entriesOn: (zone, day) => zones?.get(zone)?.byDay.get(day) ?? 0,
    }
  }

  /** Participants with a recorded passage. */
  size(): number {
    return this.people.size
  }
}

import type { History } from '../../shared/access/engine.js'

/**
 * One participant's past in one zone. Small on purpose: a gate holds one per participant and zone
 * it has seen (100,000 participants must fit in the agent's memory budget), so only the current
 * local day's entries are kept, which is the only day the rules ask about.
 */
class ZonePast {
  /** the zone's period of their last entry, if they have not left since; null: not inside */
  insideSince: string | null = null
  total = 0
  /** the local day (YYYY-MM-DD) of `dayEntries` */
  day = ''
  dayEntries = 0
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

/** The key of one participant in one zone (NUL cannot occur in either id). */
const keyOf = (participantId: string, zone: string) => `${participantId}\u0000${zone}`

/**
 * What this gate knows of each participant's movements between zones: the history the access rules
 * are evaluated against. Kept in memory, fed with every admit as it is made durable, and rebuilt at
 * start from the decisions in the gate's SQLite file.
 */
export class ZoneLedger {
  private readonly pasts = new Map<string, ZonePast>()

  /** Record a passage (an admit that entered or left a zone). */
  record(p: Passage): void {
    if (p.zoneOut !== null) {
      const out = this.pasts.get(keyOf(p.participantId, p.zoneOut))
      if (out) out.insideSince = null
    }
    if (p.zoneIn !== null) {
      const key = keyOf(p.participantId, p.zoneIn)
      let past = this.pasts.get(key)
      if (past === undefined) {
        past = new ZonePast()
        this.pasts.set(key, past)
      }
      past.insideSince = p.period
      past.total++
      if (past.day === p.day) past.dayEntries++
      else {
        past.day = p.day
        past.dayEntries = 1
      }
    }
  }

  /**
   * Undo a passage that did not happen (an admit annulled: the person never went through): not
   * inside the zone it entered, that entry not counted; back inside the zone it left, in
   * `periodOut` (that zone's current period).
   */
  undo(p: Passage, periodOut: string): void {
    if (p.zoneIn !== null) {
      const past = this.pasts.get(keyOf(p.participantId, p.zoneIn))
      if (past) {
        past.insideSince = null
        past.total = Math.max(0, past.total - 1)
        if (past.day === p.day) past.dayEntries = Math.max(0, past.dayEntries - 1)
      }
    }
    if (p.zoneOut !== null) {
      const out = this.pasts.get(keyOf(p.participantId, p.zoneOut))
      if (out) out.insideSince = periodOut
    }
  }

  /**
   * One participant's history for the engine; `period(zone)` gives each zone's current period
   * (an entry of an earlier period was undone by the nightly checkout).
   */
  history(participantId: string, period: (zone: string) => string): History {
    const past = (zone: string) => this.pasts.get(keyOf(participantId, zone))
    return {
      inside: (zone) => {
        const since = past(zone)?.insideSince ?? null
        return since !== null && since === period(zone)
      },
      entries: (zone) => past(zone)?.total ?? 0,
      entriesOn: (zone, day) => {
        const p = past(zone)
        return p !== undefined && p.day === day ? p.dayEntries : 0
      },
    }
  }

  /** Participants and zones with a recorded passage. */
  size(): number {
    return this.pasts.size
  }
}

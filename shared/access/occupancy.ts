/**
 * Live occupancy of a zone from its gates' own counts, merged the same whatever the order and
 * however often a count is resent.
 *
 * Each gate counts, per zone and per period (the zone's time between two nightly checkouts, see
 * AccessEngine.period), the entries it let in, the exits it let out and the entries it annulled
 * (an admit whose passage was never confirmed). The three only grow, so a gate's tally is a
 * PN-counter's share: two reports of it merge by taking the larger of each figure, a resent or
 * reordered report changes nothing, and the zone's occupancy is the sum over its gates. A gate
 * never subtracts: an annulled entry is counted apart, not taken back.
 */

/** One gate's counts for one zone in one period. */
export interface GateTally {
  /** the zone's period ('' for a zone never reset): a later period replaces an earlier one */
  period: string
  entries: number
  exits: number
  annulled: number
}

/** Tallies by zone, then by gate. */
export type Tallies = Record<string, Record<string, GateTally>>

/** The merge of two reports of one gate's tally: the later period, or the larger of each figure. */
export function mergeTally(a: GateTally, b: GateTally): GateTally {
  if (a.period !== b.period) return a.period > b.period ? a : b
  return {
    period: a.period,
    entries: Math.max(a.entries, b.entries),
    exits: Math.max(a.exits, b.exits),
    annulled: Math.max(a.annulled, b.annulled),
  }
}

/** `into` with `report` merged in (changed in place, and returned). */
export function mergeTallies(into: Tallies, report: Tallies): Tallies {
  for (const [zone, gates] of Object.entries(report)) {
    const known = into[zone] ?? {}
    into[zone] = known
    for (const [gate, tally] of Object.entries(gates)) {
      const had = known[gate]
      known[gate] = had === undefined ? { ...tally } : mergeTally(had, tally)
    }
  }
  return into
}

/**
 * People in `zone` in `period`, by its gates' tallies: entries less annulled less exits, never
 * below zero (exits of people who came in before the counting began, or before the checkout).
 * Gates still on an earlier period count nothing.
 */
export function occupancy(tallies: Tallies, zone: string, period: string): number {
  let n = 0
  for (const t of Object.values(tallies[zone] ?? {}))
    if (t.period === period) n += t.entries - t.annulled - t.exits
  return Math.max(0, n)
}

/** Entries that count (not annulled) of one zone in one period, all gates together. */
export function entriesCounted(tallies: Tallies, zone: string, period: string): number {
  let n = 0
  for (const t of Object.values(tallies[zone] ?? {})) if (t.period === period) n += t.entries - t.annulled
  return n
}

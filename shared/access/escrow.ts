import type { GateTally } from './occupancy.js'

/**
 * Capacity that holds while gates cannot reach the cloud: escrow.
 *
 * The cloud hands each gate that lets people into a capacity-limited zone an allotment: a limit on
 * that gate's counted entries (entries less annulled) in the zone's current period. A gate admits
 * only while its own counted entries are below its limit, which it can check offline; when it has
 * none left it applies the zone's full policy. The cloud raises limits out of the places it knows
 * are free and never lowers one (a gate out of reach may be using it), so:
 *
 *   people inside <= sum of the gates' limits - exits the cloud has heard of <= capacity
 *
 * whatever the partitions: the worst case over capacity is zero. The price is places held by a gate
 * that is cut off (its unused allotment waits for it); `maxOutstanding` bounds how many one gate
 * may hold.
 */

/** A gate's allotment in one zone and period: it may admit while its counted entries are below `limit`. */
export interface Allotment {
  period: string
  limit: number
}

/** Counted entries of one gate's tally in `period` (0 if the tally is of another period). */
function counted(t: GateTally | undefined, period: string): number {
  return t !== undefined && t.period === period ? t.entries - t.annulled : 0
}

/** Places gate `gate` may still fill by its own allotment and tally (0 without an allotment for the period). */
export function placesLeft(
  allotment: Allotment | undefined,
  own: GateTally | undefined,
  period: string,
): number {
  if (allotment === undefined || allotment.period !== period) return 0
  return Math.max(0, allotment.limit - counted(own, period))
}

export interface RebalanceInput {
  capacity: number
  period: string
  /** the zone's tallies as merged at the cloud, by gate (entry and exit gates alike) */
  tallies: Record<string, GateTally>
  /** allotments issued so far, by gate */
  allotments: Record<string, Allotment>
  /** the gates that let people into the zone, which get allotments */
  entryGates: readonly string[]
  /** the most unused places one gate may hold (places stranded at a gate cut off); default: no bound */
  maxOutstanding?: number
}

/**
 * New allotments for the entry gates: every limit stays or grows, and the sum of the limits less
 * the exits heard of stays within the capacity. Free places go to the gates holding the fewest
 * unused ones first, so that each has about the same room.
 */
export function rebalance(o: RebalanceInput): Record<string, Allotment> {
  const { period } = o
  let exits = 0
  for (const t of Object.values(o.tallies)) if (t.period === period) exits += t.exits
  // a limit of another period is no limit: the checkout started the count again
  const limit = (g: string) => {
    const a = o.allotments[g]
    return a !== undefined && a.period === period ? a.limit : 0
  }
  // what each gate holds: its limit, or its counted entries if more (admitted beyond: warned, or by hand)
  const held = new Map<string, number>()
  let committed = 0
  for (const g of new Set([...o.entryGates, ...Object.keys(o.allotments)])) {
    const h = Math.max(limit(g), counted(o.tallies[g], period))
    held.set(g, h)
    committed += h
  }
  let free = o.capacity + exits - committed
  const out: Record<string, Allotment> = {}
  const room = o.entryGates.map((g) => ({ g, unused: (held.get(g) ?? 0) - counted(o.tallies[g], period) }))
  room.sort((a, b) => a.unused - b.unused || (a.g < b.g ? -1 : 1))
  const cap = o.maxOutstanding ?? Number.POSITIVE_INFINITY
  // water-filling: raise the lowest rooms to a common level, as far as the free places go
  if (free > 0 && room.length > 0) {
    const total = room.reduce((s, r) => s + r.unused, 0) + free
    const level = Math.min(cap, Math.floor(total / room.length))
    for (const r of room) {
      const give = Math.max(0, Math.min(level - r.unused, free))
      r.unused += give
      free -= give
    }
    // what the division left over, one place each, lowest room first
    for (const r of room) {
      if (free <= 0) break
      if (r.unused < cap) {
        r.unused++
        free--
      }
    }
  }
  for (const r of room) out[r.g] = { period, limit: r.unused + counted(o.tallies[r.g], period) }
  return out
}

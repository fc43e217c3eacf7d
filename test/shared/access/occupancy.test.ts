import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { type Allotment, placesLeft, rebalance } from '../../../shared/access/escrow.js'
import {
  entriesCounted,
  type GateTally,
  mergeTallies,
  occupancy,
  type Tallies,
} from '../../../shared/access/occupancy.js'

/** One thing a gate saw: someone in, someone out, or an admit annulled (never went through). */
type Passage = { gate: string; kind: 'entry' | 'exit' | 'annul' }

/** A gate's own tally after the first `n` of its passages (what it reports at that point). */
function tallyAfter(passages: Passage[], gate: string, n: number, period = ''): GateTally {
  const t: GateTally = { period, entries: 0, exits: 0, annulled: 0 }
  for (const p of passages.filter((x) => x.gate === gate).slice(0, n)) {
    if (p.kind === 'entry') t.entries++
    else if (p.kind === 'exit') t.exits++
    else t.annulled++
  }
  return t
}

const GATES = ['a', 'b', 'c']
const passages = fc.array(
  fc.record({ gate: fc.constantFrom(...GATES), kind: fc.constantFrom('entry', 'exit', 'annul') }),
  { maxLength: 80, size: 'max' },
) as fc.Arbitrary<Passage[]>

/** Every report each gate could have made along the way, as { zone: { gate: tally } }. */
function reports(ps: Passage[]): Tallies[] {
  const out: Tallies[] = []
  for (const g of GATES) {
    const mine = ps.filter((p) => p.gate === g).length
    for (let n = 0; n <= mine; n++) out.push({ hall: { [g]: tallyAfter(ps, g, n) } })
  }
  return out
}

describe('occupancy merged from the gates', () => {
  it('is the same whatever the order of the reports and however often one is resent', () => {
    fc.assert(
      fc.property(passages, fc.integer({ min: 0, max: 1000 }), fc.nat(5), (ps, seed, resends) => {
        const rs = reports(ps)
        const shuffled =
          fc.sample(fc.shuffledSubarray(rs, { minLength: rs.length }), { seed, numRuns: 1 })[0] ?? rs
        const again = shuffled.concat(shuffled.slice(0, resends))
        const inOrder = rs.reduce((acc, r) => mergeTallies(acc, r), {} as Tallies)
        const anyOrder = again.reduce((acc, r) => mergeTallies(acc, r), {} as Tallies)
        expect(anyOrder).toEqual(inOrder)
        expect(occupancy(anyOrder, 'hall', '')).toBe(occupancy(inOrder, 'hall', ''))
      }),
    )
  })

  it('is never negative, and counts neither annulled entries nor exits', () => {
    fc.assert(
      fc.property(passages, (ps) => {
        const merged = reports(ps).reduce((acc, r) => mergeTallies(acc, r), {} as Tallies)
        const n = (k: Passage['kind']) => ps.filter((p) => p.kind === k).length
        expect(occupancy(merged, 'hall', '')).toBe(Math.max(0, n('entry') - n('annul') - n('exit')))
        expect(occupancy(merged, 'hall', '')).toBeGreaterThanOrEqual(0)
        expect(entriesCounted(merged, 'hall', '')).toBe(n('entry') - n('annul'))
      }),
    )
  })

  it('a later period replaces an earlier one: the nightly checkout empties the zone', () => {
    const merged = mergeTallies(
      { hall: { a: { period: '2026-12-05', entries: 900, exits: 100, annulled: 2 } } },
      { hall: { a: { period: '2026-12-06', entries: 3, exits: 0, annulled: 0 } } },
    )
    expect(occupancy(merged, 'hall', '2026-12-06')).toBe(3)
    // a late report of the day before changes nothing
    mergeTallies(merged, { hall: { a: { period: '2026-12-05', entries: 950, exits: 100, annulled: 2 } } })
    expect(merged['hall']?.['a']?.entries).toBe(3)
  })
})

/**
 * Escrow under partitions: three entry gates and one exit gate, a capacity, and a cloud that each
 * gate reaches only while it is not cut off. Gates admit by their own allotment, offline too; the
 * cloud rebalances whenever it hears from a gate. Whatever the sequence, the people inside never
 * exceed the capacity, and once everyone is back the cloud's count is exact.
 */
describe('capacity held by escrow while gates are cut off', () => {
  type Step =
    | { t: 'arrive'; gate: number }
    | { t: 'leave' }
    | { t: 'annul'; gate: number }
    | { t: 'confirm'; gate: number }
    | { t: 'sync'; gate: number }
    | { t: 'cut'; gate: number }
    | { t: 'heal'; gate: number }
  const entryGate = fc.integer({ min: 0, max: 2 })
  const step: fc.Arbitrary<Step> = fc.oneof(
    { weight: 6, arbitrary: entryGate.map((gate) => ({ t: 'arrive' as const, gate })) },
    { weight: 3, arbitrary: fc.constant({ t: 'leave' as const }) },
    { weight: 1, arbitrary: entryGate.map((gate) => ({ t: 'annul' as const, gate })) },
    { weight: 3, arbitrary: entryGate.map((gate) => ({ t: 'confirm' as const, gate })) },
    { weight: 4, arbitrary: fc.integer({ min: 0, max: 3 }).map((gate) => ({ t: 'sync' as const, gate })) },
    { weight: 1, arbitrary: fc.integer({ min: 0, max: 3 }).map((gate) => ({ t: 'cut' as const, gate })) },
    { weight: 1, arbitrary: fc.integer({ min: 0, max: 3 }).map((gate) => ({ t: 'heal' as const, gate })) },
  )

  it('never lets more people in than the capacity, and loses or doubles no entry', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 30 }),
        fc.array(step, { maxLength: 300, size: 'max' }),
        fc.option(fc.integer({ min: 1, max: 10 }), { nil: undefined }),
        (capacity, steps, maxOutstanding) => {
          const names = ['in-1', 'in-2', 'in-3', 'out-1']
          const entryGates = names.slice(0, 3)
          // each gate's own tally and the allotment it last received; the cloud's merged view
          const own: GateTally[] = names.map(() => ({ period: '', entries: 0, exits: 0, annulled: 0 }))
          const held: (Allotment | undefined)[] = names.map(() => undefined)
          const online = names.map(() => true)
          const cloud: Tallies = {}
          let issued: Record<string, Allotment> = {}
          let inside = 0
          // admits not yet confirmed at each gate (an annul takes one back)
          const pending = [0, 0, 0]
          const sync = (g: number) => {
            if (!online[g]) return
            mergeTallies(cloud, { hall: { [names[g] as string]: { ...(own[g] as GateTally) } } })
            issued = {
              ...issued,
              ...rebalance({
                capacity,
                period: '',
                tallies: cloud['hall'] ?? {},
                allotments: issued,
                entryGates,
                ...(maxOutstanding === undefined ? {} : { maxOutstanding }),
              }),
            }
            held[g] = issued[names[g] as string]
          }
          for (const s of steps) {
            if (s.t === 'arrive') {
              if (placesLeft(held[s.gate], own[s.gate], '') > 0) {
                ;(own[s.gate] as GateTally).entries++
                inside++
                pending[s.gate] = (pending[s.gate] ?? 0) + 1
              }
            } else if (s.t === 'annul') {
              // an admit whose person never went through: not inside after all
              if ((pending[s.gate] ?? 0) > 0) {
                pending[s.gate] = (pending[s.gate] ?? 0) - 1
                ;(own[s.gate] as GateTally).annulled++
                inside--
              }
            } else if (s.t === 'confirm') {
              // the person went through: from now on they can only leave by an exit
              if ((pending[s.gate] ?? 0) > 0) pending[s.gate] = (pending[s.gate] ?? 0) - 1
            } else if (s.t === 'leave') {
              // only someone who went through can leave
              if (inside - pending.reduce((a, b) => a + b, 0) > 0) {
                ;(own[3] as GateTally).exits++
                inside--
              }
            } else if (s.t === 'sync') sync(s.gate)
            else if (s.t === 'cut') online[s.gate] = false
            else online[s.gate] = true
            expect(inside).toBeLessThanOrEqual(capacity)
          }
          // everyone back and heard: the cloud counts exactly who is inside
          for (let g = 0; g < names.length; g++) {
            online[g] = true
            sync(g)
          }
          expect(occupancy(cloud, 'hall', '')).toBe(inside)
        },
      ),
      { numRuns: 300 },
    )
  })

  it('gives free places to the gates holding fewest, and never lowers a limit', () => {
    const tallies: Record<string, GateTally> = {
      a: { period: 'p', entries: 10, exits: 0, annulled: 0 },
      b: { period: 'p', entries: 0, exits: 0, annulled: 0 },
      x: { period: 'p', entries: 0, exits: 4, annulled: 0 },
    }
    const before = { a: { period: 'p', limit: 12 }, b: { period: 'p', limit: 3 } }
    const after = rebalance({
      capacity: 20,
      period: 'p',
      tallies,
      allotments: before,
      entryGates: ['a', 'b'],
    })
    // free: 20 + 4 exits - (12 + 3) = 9; a holds 2 unused, b 3: both raised to 7 unused (9 = 5 + 4)
    expect(after).toEqual({ a: { period: 'p', limit: 17 }, b: { period: 'p', limit: 7 } })
    // nothing free: nothing changes, nothing lowered
    expect(
      rebalance({ capacity: 5, period: 'p', tallies, allotments: before, entryGates: ['a', 'b'] }),
    ).toEqual(before)
  })
})

import { afterEach, describe, expect, it } from 'vitest'
import type { SilenceClock } from '../../cloud/fleet/silence.js'

/**
 * Two nodes' handles on one silence clock (the same one twice for a clock in memory, which serves
 * one node), and how to dispose of what it needed.
 */
export interface SilenceClockFixture {
  nodes: [SilenceClock, SilenceClock]
  cleanup?: () => void | Promise<void>
}

const deadlines = (...pairs: Array<[string, number]>) => new Map(pairs)

/**
 * What the fleet monitor relies on from a SilenceClock (cloud/fleet/silence.ts): at every sweep
 * each node pushes the deadlines of the gates it heard, withdraws those of gates that said offline,
 * and claims the deadlines that passed; each passed deadline is claimed by exactly one node, which
 * declares its gate silent. Times are ms (any epoch: the clock reads no time of its own).
 */
export function silenceClockContract(
  name: string,
  make: () => SilenceClockFixture | Promise<SilenceClockFixture>,
): void {
  describe(`SilenceClock contract: ${name}`, () => {
    let fx: SilenceClockFixture | null = null
    const clock = async () => {
      fx = await make()
      return fx.nodes
    }
    afterEach(async () => {
      await fx?.cleanup?.()
      fx = null
    })

    it('claims a gate once its deadline has come, with the deadline, and not before', async () => {
      const [a] = await clock()
      await a.push(deadlines(['g1', 5_000]))
      expect(await a.claim(4_999, 100)).toEqual([])
      expect(await a.claim(5_000, 100)).toEqual([['g1', 5_000]])
    })

    it('gives each passed deadline to one claimer only', async () => {
      const [a, b] = await clock()
      await a.push(deadlines(['g1', 1_000], ['g2', 2_000]))
      const claims = await Promise.all([a.claim(3_000, 100), b.claim(3_000, 100), a.claim(3_000, 100)])
      expect(claims.flat().sort()).toEqual([
        ['g1', 1_000],
        ['g2', 2_000],
      ])
      expect(await b.claim(10_000, 100)).toEqual([])
    })

    it('keeps the later of two deadlines of a gate, whichever node pushed it and in which order', async () => {
      const [a, b] = await clock()
      await a.push(deadlines(['g1', 8_000], ['g2', 3_000]))
      await b.push(deadlines(['g1', 4_000], ['g2', 9_000]))
      expect(await a.claim(7_000, 100)).toEqual([])
      expect((await b.claim(9_000, 100)).sort()).toEqual([
        ['g1', 8_000],
        ['g2', 9_000],
      ])
    })

    it('forgets the deadline of a gate that said offline, and pushes of nothing do nothing', async () => {
      const [a, b] = await clock()
      await a.push(deadlines(['g1', 1_000], ['g2', 1_000]))
      await b.forget(['g1'])
      await b.forget([])
      await a.push(new Map())
      expect(await a.claim(2_000, 100)).toEqual([['g2', 1_000]])
    })

    it('claims at most `max` at a time, the most overdue first; the rest at the next claim', async () => {
      const [a, b] = await clock()
      // pushed in an order that is not the deadlines' (g1's is moved later after g2 and g3)
      await a.push(deadlines(['g1', 1_000], ['g2', 3_000], ['g3', 2_000]))
      await b.push(deadlines(['g1', 4_000]))
      expect(await a.claim(5_000, 2)).toEqual([
        ['g3', 2_000],
        ['g2', 3_000],
      ])
      expect(await b.claim(5_000, 2)).toEqual([['g1', 4_000]])
    })

    it('takes a new deadline for a gate claimed before (it spoke again)', async () => {
      const [a, b] = await clock()
      await a.push(deadlines(['g1', 1_000]))
      expect(await b.claim(1_500, 100)).toEqual([['g1', 1_000]])
      await a.push(deadlines(['g1', 2_000]))
      expect(await b.claim(1_900, 100)).toEqual([])
      expect(await a.claim(2_000, 100)).toEqual([['g1', 2_000]])
    })
  })
}

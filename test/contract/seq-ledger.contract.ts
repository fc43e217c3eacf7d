import { afterEach, describe, expect, it } from 'vitest'
import { MAX_SESSION_AHEAD_S } from '../../cloud/fleet/bounds.js'
import { type HeardSeqs, MAX_SEQ_JUMP, type SeqLedger } from '../../cloud/fleet/seqs.js'

/**
 * Two nodes' handles on one ledger (the same one twice for a ledger in memory, which serves one
 * node), judging with a grace of `graceMs`, and how to dispose of what it needed.
 */
export interface SeqLedgerFixture {
  nodes: [SeqLedger, SeqLedger]
  cleanup?: () => void | Promise<void>
}

const GRACE_MS = 1_000

/** What one node heard of gate `gateId` in `session` since its last sweep. */
const heard = (gateId: string, session: number, ...seqs: number[]): Map<string, HeardSeqs> =>
  new Map([[gateId, { session, seqs }]])

/**
 * What the fleet monitor relies on from a SeqLedger (cloud/fleet/seqs.ts): each node records the
 * seqs it heard at every sweep, and a seq counts as lost only when no node had it a grace after a
 * higher one was heard; each gap is told once, to one node. Times are ms (any epoch: the ledger
 * reads no clock of its own), sessions small enough to be believed at those times.
 */
export function seqLedgerContract(
  name: string,
  make: (graceMs: number) => SeqLedgerFixture | Promise<SeqLedgerFixture>,
): void {
  describe(`SeqLedger contract: ${name}`, () => {
    let fx: SeqLedgerFixture | null = null
    const ledger = async () => {
      fx = await make(GRACE_MS)
      return fx.nodes
    }
    afterEach(async () => {
      await fx?.cleanup?.()
      fx = null
    })

    it('finds nothing lost when the nodes heard every seq between them, in any order', async () => {
      const [a, b] = await ledger()
      expect(await a.record(heard('g1', 1, 0, 2, 4), 0)).toEqual([])
      expect(await b.record(heard('g1', 1, 5, 1, 3), 100)).toEqual([])
      expect(await a.record(heard('g1', 1, 6), 1_200)).toEqual([])
      expect(await b.record(heard('g1', 1, 7), 2_400)).toEqual([])
      expect(await a.record(heard('g1', 1, 8), 3_600)).toEqual([])
    })

    it('tells a seq no node heard as lost once the grace has passed, at the next record of its gate, once', async () => {
      const [a, b] = await ledger()
      expect(await a.record(heard('g1', 1, 0, 1, 3), 0)).toEqual([])
      // within the grace: 2 may still be on its way to another node
      expect(await b.record(heard('g1', 1, 4), 500)).toEqual([])
      // the grace has passed since 3 was heard: 0..3 are judged, and 2 is missing
      const gaps = await a.record(heard('g1', 1, 5), 1_000)
      expect(gaps).toEqual([{ gateId: 'g1', session: 1, lost: 1, from: 0, to: 3 }])
      // told once: no node is told again
      expect(await b.record(heard('g1', 1, 6), 2_100)).toEqual([])
      expect(await a.record(heard('g1', 1, 7), 3_200)).toEqual([])
    })

    it('does not count a seq that reached a node late, within the grace', async () => {
      const [a, b] = await ledger()
      await a.record(heard('g1', 1, 0, 1, 3), 0)
      expect(await a.record(heard('g1', 1, 4), 500)).toEqual([])
      expect(await b.record(heard('g1', 1, 2), 900)).toEqual([])
      expect(await a.record(heard('g1', 1, 5), 1_100)).toEqual([])
      expect(await b.record(heard('g1', 1, 6), 2_300)).toEqual([])
    })

    it('counts a seq recorded twice (a sweep retried after a failure) once', async () => {
      const [a, b] = await ledger()
      await a.record(heard('g1', 1, 0, 1, 2), 0)
      await a.record(heard('g1', 1, 0, 1, 2, 2), 10)
      await b.record(heard('g1', 1, 1, 3), 20)
      expect(await a.record(heard('g1', 1, 4), 1_100)).toEqual([])
      expect(await b.record(heard('g1', 1, 5), 2_200)).toEqual([])
    })

    it('tells the lost messages of a gate that went quiet only when it speaks again', async () => {
      const [a, b] = await ledger()
      await a.record(heard('g1', 1, 0, 2), 0)
      // nothing of g1 for a long while: its seqs wait, whatever the time
      expect(await b.record(heard('g2', 1, 0), 60_000)).toEqual([])
      expect(await a.record(heard('g1', 1, 3), 61_000)).toEqual([
        { gateId: 'g1', session: 1, lost: 1, from: 0, to: 2 },
      ])
    })

    it('follows a new session from the first seq heard of it, and ignores an older session', async () => {
      const [a, b] = await ledger()
      await a.record(heard('g1', 1, 0, 1), 0)
      // a gate that reconnected: session 2 starts at 500 as far as the cloud heard (no loss before it)
      expect(await b.record(heard('g1', 2, 500, 501), 100)).toEqual([])
      // a late message of session 1: neither judged nor a reset of session 2
      expect(await a.record(heard('g1', 1, 9), 200)).toEqual([])
      expect(await a.record(heard('g1', 2, 503), 1_200)).toEqual([])
      expect(await b.record(heard('g1', 2, 504), 2_300)).toEqual([
        { gateId: 'g1', session: 2, lost: 1, from: 502, to: 503 },
      ])
    })

    it('ignores a session far ahead of the clock: it neither counts nor hides the real session', async () => {
      const [a, b] = await ledger()
      const now = 1_000_000
      const forged = Math.floor(now / 1000) + MAX_SESSION_AHEAD_S + 1
      await a.record(heard('g1', 5, 0, 1), now)
      expect(await b.record(heard('g1', forged, 0, 1_000), now + 100)).toEqual([])
      await a.record(heard('g1', 5, 3), now + 200)
      expect(await b.record(heard('g1', 5, 4), now + 1_300)).toEqual([])
      expect(await a.record(heard('g1', 5, 5), now + 2_400)).toEqual([
        { gateId: 'g1', session: 5, lost: 1, from: 2, to: 4 },
      ])
    })

    it(`does not believe a seq more than ${MAX_SEQ_JUMP} beyond the highest heard`, async () => {
      const [a, b] = await ledger()
      await a.record(heard('g1', 1, 0, 1), 0)
      expect(await b.record(heard('g1', 1, 2 + MAX_SEQ_JUMP), 100)).toEqual([])
      expect(await a.record(heard('g1', 1, 2), 1_100)).toEqual([])
      expect(await b.record(heard('g1', 1, 3), 2_200)).toEqual([])
    })

    it('judges each gate on its own, several in one record', async () => {
      const [a, b] = await ledger()
      const both = (session: number, g1: number[], g2: number[]) =>
        new Map([
          ['g1', { session, seqs: g1 }],
          ['g2', { session, seqs: g2 }],
        ])
      await a.record(both(1, [0, 2], [0, 1]), 0)
      expect(await b.record(both(1, [3], [2]), 1_100)).toEqual([
        { gateId: 'g1', session: 1, lost: 1, from: 0, to: 2 },
      ])
      // a gate with nothing heard this sweep is left as it is
      expect(await a.record(new Map([['g1', { session: 1, seqs: [] }]]), 2_200)).toEqual([])
    })

    it('judges up to the highest seq heard when the last judgement was made: a run of lost seqs is one gap', async () => {
      const [a, b] = await ledger()
      await a.record(heard('g1', 1, 0), 0)
      await b.record(heard('g1', 1, 4), 10)
      // 0 judged (the highest heard at the first record); the next judgement reaches 5
      expect(await a.record(heard('g1', 1, 5), 1_100)).toEqual([])
      expect(await b.record(heard('g1', 1, 6), 2_200)).toEqual([
        { gateId: 'g1', session: 1, lost: 3, from: 1, to: 5 },
      ])
    })
  })
}

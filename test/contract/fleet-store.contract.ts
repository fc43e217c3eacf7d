import { afterEach, describe, expect, it } from 'vitest'
import type { FleetStateStore, GateFleetState } from '../../cloud/fleet/view.js'

/** Two nodes' handles on one fleet store, and how to dispose of what it needed. */
export interface FleetStoreFixture {
  nodes: [FleetStateStore, FleetStateStore]
  cleanup?: () => void | Promise<void>
}

const DAY_MS = 86_400_000

/** One node's view of a gate, online in session 1 unless `over` says otherwise. */
const view = (gateId: string, over: Partial<GateFleetState> = {}): GateFleetState => ({
  gateId,
  state: 'online',
  reason: null,
  session: 1,
  lastSeq: 1,
  lastSeenAt: Date.now(),
  version: '1.0.0',
  bootId: '6f1c1a52-2a51-4a0b-9d3c-2f1b5c0e9a11',
  startedAt: '2026-01-01T00:00:00.000Z',
  metrics: null,
  seqGaps: 0,
  lastEvent: null,
  ...over,
})

const byGate = (views: GateFleetState[]) => [...views].sort((a, b) => a.gateId.localeCompare(b.gateId))

/**
 * What the fleet monitor relies on from a FleetStateStore (cloud/fleet/view.ts): every node saves
 * its view of each gate it hears, and any node lists the whole fleet, one view per gate, the most
 * recent of the nodes' views (by `newer`), without the views it refuses or those left long ago by
 * nodes that stopped.
 */
export function fleetStoreContract(
  name: string,
  make: () => FleetStoreFixture | Promise<FleetStoreFixture>,
): void {
  describe(`FleetStateStore contract: ${name}`, () => {
    let fx: FleetStoreFixture | null = null
    const store = async () => {
      fx = await make()
      return fx.nodes
    }
    afterEach(async () => {
      await fx?.cleanup?.()
      fx = null
    })

    it('lists a saved view as it was saved, to every node', async () => {
      const [a, b] = await store()
      const g = view('g1', {
        metrics: null,
        seqGaps: 2,
        lastEvent: { kind: 'disk_low', at: 1_700_000_000_000 },
      })
      await a.save(g)
      expect(await a.all()).toEqual([g])
      expect(await b.all()).toEqual([g])
    })

    it("lists one view per gate, the most recent of the nodes' views", async () => {
      const [a, b] = await store()
      const now = Date.now()
      // b heard session 5 (the gate reconnected), a still session 4: the later session wins,
      // whoever saved last
      await b.save(view('g1', { session: 5, lastSeq: 2, lastSeenAt: now }))
      await a.save(view('g1', { session: 4, lastSeq: 90, lastSeenAt: now }))
      // within a session: the will (an end) wins over what was heard of it
      await a.save(view('g2', { session: 3, lastSeq: 7, lastSeenAt: now }))
      await b.save(view('g2', { session: 3, lastSeq: 0, state: 'offline', reason: 'will', lastSeenAt: now }))
      // a node's later save replaces its own earlier view, even one that seemed more recent
      await a.save(view('g3', { session: 7, lastSeq: 1 }))
      await a.save(view('g3', { session: 1, lastSeq: 2 }))
      const all = byGate(await b.all())
      expect(all.map((g) => [g.gateId, g.session, g.lastSeq, g.state])).toEqual([
        ['g1', 5, 2, 'online'],
        ['g2', 3, 0, 'offline'],
        ['g3', 1, 2, 'online'],
      ])
    })

    it('leaves out the views `keep` refuses, and removes them for good', async () => {
      const [a, b] = await store()
      await a.save(view('g1', { session: 9 }))
      await b.save(view('g1', { session: 2 }))
      await a.save(view('g2'))
      const kept = await a.all((g) => g.session !== 9)
      expect(byGate(kept).map((g) => [g.gateId, g.session])).toEqual([
        ['g1', 2],
        ['g2', 1],
      ])
      expect(byGate(await b.all()).map((g) => [g.gateId, g.session])).toEqual([
        ['g1', 2],
        ['g2', 1],
      ])
    })

    it("removes the views a day older than their gate's most recent one (nodes that stopped)", async () => {
      const [a, b] = await store()
      const now = Date.now()
      await a.save(view('g1', { session: 5, lastSeenAt: now - 2 * DAY_MS }))
      await b.save(view('g1', { session: 6, lastSeenAt: now }))
      // a view an hour older is kept
      await a.save(view('g2', { session: 5, lastSeenAt: now - 3_600_000 }))
      await b.save(view('g2', { session: 6, lastSeenAt: now }))
      expect(byGate(await b.all()).map((g) => [g.gateId, g.session])).toEqual([
        ['g1', 6],
        ['g2', 6],
      ])
      // with the newest refused, what is left of each gate shows
      expect(byGate(await b.all((g) => g.session !== 6)).map((g) => [g.gateId, g.session])).toEqual([
        ['g2', 5],
      ])
    })
  })
}

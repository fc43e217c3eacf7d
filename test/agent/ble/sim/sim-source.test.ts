import path from 'node:path'
import Database from 'better-sqlite3'
import { describe, expect, it } from 'vitest'
import { GateAgent } from '../../../../agent/agent.js'
import { PushSource } from '../../../../agent/ble/push-source.js'
import { Crowd } from '../../../../agent/ble/sim/crowd.js'
import { demoRosterFor, planCrowd } from '../../../../agent/ble/sim/demo-roster.js'
import { SimSource } from '../../../../agent/ble/sim/sim-source.js'
import { FakeClock, systemClock } from '../../../../agent/clock.js'
import { type AgentConfig, agentConfigSchema } from '../../../../agent/config/schema.js'
import { createTokenDecoder } from '../../../../agent/decode/token-decoder.js'
import { bleSourceContract } from '../../../contract/ble-source.contract.js'
import { silentLog, tempDir } from '../../../support/helpers.js'

const config = (sim: Record<string, unknown>, extra: Record<string, unknown> = {}): AgentConfig =>
  agentConfigSchema.parse({ source: { kind: 'sim', sim }, ...extra })

bleSourceContract('sim', () => {
  const c = config({ participants: 20, arrivalSpreadMs: 0, foreign: 10, seed: 5 })
  return { source: new SimSource(c.source.sim, c.decoders, { clock: systemClock }) }
})

describe('simulated crowd', () => {
  it('is the same crowd for the same seed and a different one for another seed', () => {
    const a = config({ participants: 50, seed: 7 })
    const b = config({ participants: 50, seed: 8 })
    const tokens = (c: AgentConfig) => planCrowd(c.source.sim, c.decoders).badges.map((x) => x.token)
    expect(tokens(a)).toEqual(tokens(a))
    expect(tokens(a)).not.toEqual(tokens(b))
    const run = (c: AgentConfig) => {
      const crowd = new Crowd(c.source.sim, c.decoders)
      const out: string[] = []
      crowd.advance(30_000, (i, rssi, vt) => out.push(`${i}:${rssi}:${vt.toFixed(1)}`), 2_000)
      return out
    }
    expect(run(a)).toEqual(run(a))
  })

  it('every badge decodes to its planned token with the configured decoders, and foreign devices do not', () => {
    const c = config({ participants: 30, revoked: 3, unknown: 3, foreign: 40, loop: false, seed: 2 })
    const crowd = new Crowd(c.source.sim, c.decoders)
    const decoder = createTokenDecoder(c.decoders)
    const badges = crowd.plan.badges
    const heard = new Map<number, string>()
    crowd.advance(
      Number.POSITIVE_INFINITY,
      (i, rssi, vt) => {
        const s = decoder.decode(crowd.advert(i, rssi, vt))
        if (i >= badges.length) expect(s).toBeNull()
        else if (s) heard.set(i, s.token)
      },
      200_000,
    )
    expect(heard.size).toBe(badges.length)
    for (const [i, token] of heard) expect(token).toBe(badges[i]?.token)
    expect(new Set(badges.map((b) => b.kind))).toEqual(new Set(['ibeacon', 'eddystone', 'manufacturer']))
    expect(decoder.counters.foreign).toBeGreaterThan(0)
    expect(decoder.counters.malformed).toBeGreaterThan(0)
  })

  it('doors of one venue share one crowd: each sees its own share, together all of it, and one roster', () => {
    const whole = config({ participants: 90, revoked: 6, unknown: 3, foreign: 12, seed: 4 })
    const all = planCrowd(whole.source.sim, whole.decoders).badges.map((b) => b.token)
    const doors = [0, 1, 2].map((index) => {
      const c = config({
        participants: 90,
        revoked: 6,
        unknown: 3,
        foreign: 12,
        seed: 4,
        door: { index, of: 3 },
      })
      // the roster is the venue's, whichever door
      expect(demoRosterFor(c)).toEqual(demoRosterFor(whole))
      return new Crowd(c.source.sim, c.decoders).plan.badges.map((b) => b.token)
    })
    for (const d of doors) expect(d.length).toBe(all.length / 3)
    expect(new Set(doors.flat()).size).toBe(all.length) // disjoint, and nobody left out
    expect([...doors.flat()].sort()).toEqual([...all].sort())
    expect(() => config({ door: { index: 3, of: 3 } })).toThrow(/door.index/)
  })

  it('a door that follows the entrances sees every badge, each the given time after its entrance', () => {
    const base = { participants: 60, revoked: 0, unknown: 0, foreign: 0, seed: 11, loop: false }
    /** when each token is first heard at a door, virtual ms */
    const firstHeard = (sim: Record<string, unknown>) => {
      const c = config({ ...base, ...sim })
      const crowd = new Crowd(c.source.sim, c.decoders)
      const at = new Map<string, number>()
      crowd.advance(Number.POSITIVE_INFINITY, (i, _rssi, vt) => {
        const token = crowd.plan.badges[i]?.token
        if (token !== undefined && !at.has(token)) at.set(token, vt)
      })
      return at
    }
    const entrances = new Map([
      ...firstHeard({ door: { index: 0, of: 2 } }),
      ...firstHeard({ door: { index: 1, of: 2 } }),
    ])
    const exit = firstHeard({ follows: { afterMs: 60_000 } })
    // every badge of the crowd, whichever entrance it took (passers-by included: they walk past)
    expect(exit.size).toBe(entrances.size)
    for (const [token, at] of entrances) {
      const later = (exit.get(token) as number) - at
      // the same walk starts 60 s later; the first advert heard jitters by the advertising interval
      expect(Math.abs(later - 60_000)).toBeLessThan(1_000)
    }
  })

  it('the demo roster holds the active and revoked badges, not the unknown ones', () => {
    const c = config({ participants: 40, revoked: 4, unknown: 6, seed: 9 })
    const roster = demoRosterFor(c)
    expect(roster).toHaveLength(44)
    expect(roster.filter((r) => r.status === 'revoked')).toHaveLength(4)
    const plan = planCrowd(c.source.sim, c.decoders)
    const unknown = plan.badges.filter((b) => b.role === 'unknown').map((b) => b.token)
    expect(unknown).toHaveLength(6)
    for (const t of unknown) expect(roster.find((r) => r.token === t)).toBeUndefined()
  })

  it('RSSI follows distance: loud at the gate, weak at the edge, noisy', () => {
    const c = config({
      participants: 200,
      passersBy: 0.5,
      foreign: 0,
      arrivalSpreadMs: 0,
      loop: false,
      seed: 4,
    })
    const crowd = new Crowd(c.source.sim, c.decoders)
    const best = new Map<number, number>()
    const all: number[] = []
    crowd.advance(
      Number.POSITIVE_INFINITY,
      (i, rssi) => {
        best.set(i, Math.max(best.get(i) ?? -200, rssi))
        all.push(rssi)
      },
      1_000_000,
    )
    const passers = crowd.plan.badges.flatMap((b, i) => (b.passerBy ? [best.get(i) ?? -200] : []))
    const walkers = crowd.plan.badges.flatMap((b, i) => (b.passerBy ? [] : [best.get(i) ?? -200]))
    expect(passers.length).toBeGreaterThan(50)
    const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)] ?? 0
    expect(median(walkers)).toBeGreaterThan(-60)
    expect(median(passers)).toBeLessThan(-62)
    expect(new Set(all).size).toBeGreaterThan(20)
    expect(crowd.done).toBe(true)
  })
})

describe('the whole agent on a simulated crowd, in virtual time', () => {
  it('admits every badge holder once, never a passer-by, and denies revoked and unknown badges', async () => {
    const t = tempDir()
    const clock = new FakeClock()
    const source = new PushSource()
    const c = config(
      {
        participants: 300,
        passersBy: 0.15,
        revoked: 8,
        unknown: 8,
        foreign: 30,
        arrivalSpreadMs: 120_000,
        loop: false,
        seed: 21,
      },
      { dataDir: path.join(t.dir, 'data'), gateId: 'gate-sim' },
    )
    const agent = new GateAgent({
      config: c,
      clock,
      log: silentLog,
      makeSource: () => source,
      beforeStart: ({ roster }) => roster.importEntries(demoRosterFor(c)),
    })
    await agent.start()
    try {
      const crowd = new Crowd(c.source.sim, c.decoders)
      const origin = clock.mono()
      while (!crowd.done) {
        const until = crowd.nextAt + 100
        crowd.advance(until, (i, rssi, vt) => {
          clock.advance(origin + vt - clock.mono())
          source.push(crowd.advert(i, rssi, clock.mono()))
        })
        await new Promise((r) => setImmediate(r))
      }
      await agent.stop()
      const db = new Database(path.join(c.dataDir, 'agent.db'), { readonly: true })
      const rows = db.prepare('SELECT token, decision, reason FROM checkins').all() as Array<{
        token: string
        decision: string
        reason: string | null
      }>
      db.close()
      const byToken = new Map<string, typeof rows>()
      for (const r of rows) byToken.set(r.token, [...(byToken.get(r.token) ?? []), r])
      const badges = crowd.plan.badges
      const walkers = badges.filter((b) => b.role === 'active' && !b.passerBy)
      const passers = badges.filter((b) => b.passerBy)
      expect(passers.length).toBeGreaterThan(20)
      for (const b of walkers)
        expect(byToken.get(b.token), `badge ${b.token}`).toEqual([
          { token: b.token, decision: 'admit', reason: null },
        ])
      for (const b of passers) expect(byToken.get(b.token), `passer-by ${b.token}`).toBeUndefined()
      for (const b of badges.filter((x) => x.role === 'revoked'))
        expect(byToken.get(b.token)?.[0]?.reason).toBe('revoked')
      for (const b of badges.filter((x) => x.role === 'unknown'))
        expect(byToken.get(b.token)?.[0]?.reason).toBe('unknown')
      expect(rows).toHaveLength(walkers.length + 16)
    } finally {
      await agent.stop()
      t.cleanup()
    }
  })
})

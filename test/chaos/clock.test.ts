import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import Database from 'better-sqlite3'
import pg from 'pg'
import { afterAll, describe, expect, it } from 'vitest'
import type { Checkin } from '../../shared/checkin.js'
import { tempDir } from '../support/helpers.js'
import { tempDatabase } from '../support/pg-helpers.js'
import { eventually, gatectl } from '../support/process-helpers.js'
import {
  account,
  type Cloud,
  drained,
  gateStatus,
  sleep,
  startCloud,
  startTailedGate,
  stopGate,
  type TailedGate,
  writeGateConfig,
} from './gates.js'
import { writeResults } from './harness.js'

/** libfaketime's multi-threaded build (Debian package faketime), or null when it is not installed. */
function findLibfaketime(): string | null {
  for (const dir of ['/usr/lib', '/usr/lib64']) {
    if (!existsSync(dir)) continue
    for (const arch of readdirSync(dir)) {
      const f = path.join(dir, arch, 'faketime', 'libfaketimeMT.so.1')
      if (existsSync(f)) return f
    }
    const f = path.join(dir, 'faketime', 'libfaketimeMT.so.1')
    if (existsSync(f)) return f
  }
  return null
}

const HOUR = 3_600_000
/** a badge's token (manufacturer data under the default company 0xFFFF and prefix ca11) */
const token = (group: string, i: number) =>
  `${group.charCodeAt(0).toString(16)}00000000${String(i).padStart(6, '0')}`
const GROUPS = { A: 10, B: 10, C: 10, D: 10, E: 10, F: 10 }
type Group = keyof typeof GROUPS
const groupOf = (t: string) => String.fromCharCode(Number.parseInt(t.slice(0, 2), 16)) as Group

/**
 * A capture file: each phase, from `at` ms, every badge of its groups close to the gate for 1.5 s
 * (an advert every 100 ms at -50 dBm); a badge is gone again 1 s after its last advert.
 */
function capture(file: string, phases: Array<{ at: number; groups: Group[] }>): void {
  const lines = [JSON.stringify({ capture: 1, startedAt: new Date().toISOString(), gateId: 'clock-a' })]
  for (const { at, groups } of phases)
    for (let t = at; t < at + 1_500; t += 100)
      for (const g of groups)
        for (let i = 0; i < GROUPS[g]; i++) {
          const mac = `c0:${g.charCodeAt(0).toString(16)}:00:00:00:${i.toString(16).padStart(2, '0')}`
          lines.push(JSON.stringify({ t, address: mac, rssi: -50, mfg: `ffffca11${token(g, i)}` }))
        }
  writeFileSync(file, `${lines.join('\n')}\n`)
}

/**
 * The wall clock of a real gate jumping by hours, back and forward, while it decides and syncs, and
 * across its restarts. The machine's clock is never touched: libfaketime (LD_PRELOAD) moves the
 * agent's wall clock alone, read from a file at every call (FAKETIME_NO_CACHE), and leaves its
 * monotonic clock alone (FAKETIME_DONT_FAKE_MONOTONIC), as an NTP step would. Badges come from a
 * replay capture, so each arrival is known. Checked: within one run and across restarts while the
 * clock is off, no participant admitted is admitted again inside the re-entry window; the cloud
 * raises its clock_skew incident and clears it once the gate's clock is right again; the syncer
 * never stops; every decision emitted is in the file, and in Postgres unless the cloud refused it
 * (stamped more than MAX_FUTURE_MS ahead: kept on the gate as refused).
 */
describe('chaos: the gate wall clock jumps by hours', () => {
  const tmp = tempDir('gate-clock-')
  let db: Awaited<ReturnType<typeof tempDatabase>> | null = null
  let cloud: Cloud | null = null
  let gate: TailedGate | null = null
  let sql: pg.Client | null = null

  afterAll(async () => {
    if (gate) await stopGate(gate).catch(() => {})
    await sql?.end().catch(() => {})
    await cloud?.stop('SIGKILL')
    await db?.drop().catch(() => {})
    tmp.cleanup()
  }, 60_000)

  it('keeps the re-entry window, raises and clears clock_skew, keeps syncing', async () => {
    const lib = findLibfaketime()
    expect(lib, 'libfaketime (apt-get install faketime)').not.toBeNull()
    db = await tempDatabase()
    cloud = await startCloud(db.url)
    const key = await cloud.addGate('clock-a')
    const dataDir = path.join(tmp.dir, 'clock-a')
    const offsetFile = path.join(tmp.dir, 'faketime')
    const setOffset = (spec: string) => writeFileSync(offsetFile, `${spec}\n`)
    setOffset('+0')
    const env = {
      GATE_CLOUD_URL: cloud.url,
      GATE_KEY: key,
      LD_PRELOAD: lib as string,
      FAKETIME_TIMESTAMP_FILE: offsetFile,
      FAKETIME_NO_CACHE: '1',
      FAKETIME_DONT_FAKE_MONOTONIC: '1',
    }
    const roster = path.join(tmp.dir, 'roster.csv')
    const rows = Object.entries(GROUPS).flatMap(([g, n]) =>
      Array.from({ length: n }, (_, i) => `${token(g, i)},p-${g}${i},active,,`),
    )
    writeFileSync(roster, `token,participant_id,status,name,email\n${rows.join('\n')}\n`)
    // the roster loaded offline, before the first start (gatectl creates the file)
    mkdirSync(dataDir)
    const imported = await gatectl(['--data-dir', dataDir, 'roster', 'import', roster])
    expect(imported.code, imported.stderr).toBe(0)

    const decisions: Array<Checkin & { run: number; offset: string }> = []
    let run = 0
    let offset = '+0'
    const start = async (phases: Array<{ at: number; groups: Group[] }>) => {
      run++
      const file = path.join(tmp.dir, `run${run}.capture`)
      capture(file, phases)
      const config = writeGateConfig(tmp.dir, `clock-a-${run}`, {
        gateId: 'clock-a',
        source: { kind: 'replay', replay: { file, speed: 1 } },
        proximity: { absenceMs: 1_000 },
        cloud: { batchSize: 50, syncIntervalMs: 200, baseBackoffMs: 100, maxBackoffMs: 1_000 },
      })
      const r = run
      gate = await startTailedGate(
        dataDir,
        ['--config', config, '--log-level', 'error'],
        env,
        undefined,
        (d) => decisions.push({ ...d, run: r, offset }),
      )
      return gate
    }
    const jump = (spec: string) => {
      offset = spec
      setOffset(spec)
    }
    const count = (r: number, g: Group, decision: string, reason: string | null = null) =>
      decisions.filter(
        (d) => d.run === r && groupOf(d.token) === g && d.decision === decision && d.reason === reason,
      ).length
    /** `n` such decisions of group `g` in run `r` within 30 s; else an error saying what was decided */
    const seen = (r: number, g: Group, decision: string, reason: string | null, n: number) =>
      eventually(() => count(r, g, decision, reason) >= n, 30_000, 50).catch(() => {
        const got = decisions
          .filter((d) => d.run === r && groupOf(d.token) === g)
          .map((d) => `${d.decision}${d.reason ? ` ${d.reason}` : ''}`)
        throw new Error(
          `run ${r}: waited for ${n} '${decision}${reason ? ` ${reason}` : ''}' of group ${g}, got [${got.join(', ')}]`,
        )
      })
    /** the capture has been played to its end (and its last arrivals decided) */
    const played = async () => {
      await eventually(
        async () => (await gateStatus(dataDir))?.source?.detail?.includes('end of capture'),
        30_000,
        100,
      )
      await sleep(500)
    }

    const client = new pg.Client({ connectionString: db.url })
    client.on('error', () => {}) // dropped with the database in afterAll if the test fails first
    sql = client
    await client.connect()
    type Incident = { open: boolean; detail: { skewMs: number; max_skewMs: number; resolvedSkewMs?: number } }
    const skew = async () =>
      (
        await client.query<Incident>(
          `SELECT resolved_at IS NULL AS open, detail FROM incidents
            WHERE kind = 'clock_skew' AND gate_id = 'clock-a' ORDER BY created_at, id`,
        )
      ).rows
    /** the cloud's clock_skew incidents come to satisfy `ok` within 15 s (false if they do not) */
    const cloudSays = (ok: (r: Incident[]) => boolean) =>
      eventually(async () => ok(await skew()), 15_000, 200).then(
        () => true,
        () => false,
      )

    // run 1: A admitted on the right clock; the clock goes back 3 h: A again (denied), B admitted;
    // the clock goes 2 h ahead: A again (suppressed), B again (denied), C admitted
    let g = await start([
      { at: 500, groups: ['A'] },
      { at: 6_000, groups: ['A', 'B'] },
      { at: 12_000, groups: ['A', 'B', 'C'] },
    ])
    await seen(1, 'A', 'admit', null, 10)
    jump('-3h')
    await seen(1, 'B', 'admit', null, 10)
    await seen(1, 'A', 'deny', 'already_checked_in', 10)
    const raisedBack = await cloudSays(
      (r) => r.length === 1 && r[0]?.open === true && r[0].detail.skewMs < -2.9 * HOUR,
    )
    // nothing of the last minutes left to send: the batches after the jump hold only what it stamps
    await drained(dataDir)
    jump('+2h')
    await seen(1, 'C', 'admit', null, 10)
    await seen(1, 'B', 'deny', 'already_checked_in', 10)
    // every record of these batches is refused (stamped beyond MAX_FUTURE_MS): the clock is still judged
    const raisedAhead = await cloudSays(
      (r) => r.length === 1 && r[0]?.open === true && r[0].detail.skewMs > 1.9 * HOUR,
    )
    // a restart while the clock is 3 h back: A and C were admitted "in the future"
    jump('-3h')
    g.close()
    g.agent.child.kill('SIGKILL')
    await g.agent.exited
    g = await start([{ at: 500, groups: ['A', 'B', 'C'] }])
    await played()
    // a restart while the clock is 2 h ahead: A and B were admitted "hours ago"
    jump('+2h')
    await stopGate(g)
    g = await start([
      { at: 500, groups: ['A', 'B', 'C', 'D'] },
      { at: 6_000, groups: ['E'] },
      { at: 12_000, groups: ['F'] },
    ])
    await seen(3, 'D', 'admit', null, 10)
    await sleep(1_000)
    // the clock right again: E admitted and synced on it, the incident over
    jump('+0')
    await seen(3, 'E', 'admit', null, 10)
    const cleared = await cloudSays((r) => r.length === 1 && r[0]?.open === false)
    // and wrong again: a new incident
    jump('-3h')
    await seen(3, 'F', 'admit', null, 10)
    const raisedAgain = await cloudSays((r) => r.length === 2 && r[0]?.open === false && r[1]?.open === true)
    await drained(dataDir)
    const incidents = await skew()
    await client.end()
    sql = null
    await stopGate(g)
    gate = null

    // what the file says: the clock really moved for the agent, and the cloud's verdict on each row
    const file = new Database(path.join(dataDir, 'agent.db'), { readonly: true })
    const refused = file
      .prepare('SELECT id, sync_error AS error FROM checkins WHERE sync_error IS NOT NULL')
      .all() as Array<{ id: string; error: string }>
    file.close()
    // a decision stamped more than MAX_FUTURE_MS ahead is refused by the cloud and kept on the gate
    const refusedIds = new Set(refused.map((r) => r.id))
    const a = await account(
      db.url,
      'clock-a',
      dataDir,
      decisions.filter((d) => !refusedIds.has(d.id)).map((d) => d.id),
    )
    const admitsOf = new Map<string, number>()
    for (const d of decisions)
      if (d.decision === 'admit') admitsOf.set(d.token, (admitsOf.get(d.token) ?? 0) + 1)
    const admittedTwice = [...admitsOf.values()].filter((n) => n > 1).length
    const stampedOff = (g: Group, ms: number) =>
      decisions.filter(
        (d) =>
          groupOf(d.token) === g &&
          d.decision === 'admit' &&
          Math.abs(d.ts - (Date.now() + ms)) < 10 * 60_000,
      ).length

    const largest = Math.max(...incidents.map((x) => x.detail.max_skewMs))
    writeResults('clock', [
      {
        what: "the gate's wall clock 3 h back, 2 h ahead, right, 3 h back again, while it decides and syncs (libfaketime on the agent alone), and a restart both while back and while ahead",
        tried: decisions.length,
        outcome:
          `${admitsOf.size} participants admitted, ${admittedTwice} of them twice inside the re-entry window; ` +
          `clock_skew raised when 3 h back ${raisedBack ? 'yes' : 'NO'}, brought up to date when 2 h ahead (every record refused) ${raisedAhead ? 'yes' : 'NO'}, ` +
          `cleared once right ${cleared ? 'yes' : 'NO'}, a new one when wrong again ${raisedAgain ? 'yes' : 'NO'} (largest ${(largest / HOUR).toFixed(1)} h); ` +
          `${refused.length} decisions stamped 2 h ahead refused by the cloud and kept on the gate, the rest synced`,
        lost: a.lost,
      },
    ])

    expect(stampedOff('B', -3 * HOUR), 'B stamped 3 h back').toBe(10)
    expect(stampedOff('C', 2 * HOUR), 'C stamped 2 h ahead').toBe(10)
    expect(admitsOf.size, 'participants admitted').toBe(60)
    expect(admittedTwice, 'participants admitted twice inside the window').toBe(0)
    expect(raisedBack, 'clock_skew raised, the clock 3 h back').toBe(true)
    expect(raisedAhead, 'clock_skew brought up to date, the clock 2 h ahead').toBe(true)
    expect(cleared, 'clock_skew resolved once the clock is right').toBe(true)
    expect(raisedAgain, 'a new clock_skew when the clock goes wrong again').toBe(true)
    expect(incidents[0]?.detail.resolvedSkewMs ?? HOUR).toBeLessThan(120_000)
    expect(new Set(refused.map((r) => r.error))).toEqual(new Set(['ts_in_future']))
    expect(refused.length, 'refused: the decisions stamped 2 h ahead').toBe(
      decisions.filter((d) => d.offset === '+2h').length,
    )
    expect(a.lostFromFile, 'emitted decisions missing from the file').toBe(0)
    expect(a.lostFromCloud, 'emitted decisions (not refused) missing from Postgres').toBe(0)
    expect(a.doubled).toBe(0)
    expect(a.notSynced, 'rows neither synced nor refused').toBe(0)
    expect(a.integrity).toBe('ok')
  }, 240_000)
})

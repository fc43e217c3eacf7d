import { spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { userInfo } from 'node:os'
import path from 'node:path'
import type pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { visit } from '../support/badges.js'
import { freePort, tempDir } from '../support/helpers.js'
import { connect, tempDatabase } from '../support/pg-helpers.js'
import {
  CLOUD_BIN,
  cleanEnv,
  cloudCli,
  eventually,
  gatectl,
  spawnAgent,
  waitForAgent,
} from '../support/process-helpers.js'

const ANN = 'a1a1a1a1a1a1a1a1'
const BOB = 'b2b2b2b2b2b2b2b2'
const STRANGER = 'ffff0000ffff0000'

/**
 * Passage confirmation and decisions by hand, with a real gate process, the real cloud and
 * Postgres: the turnstile hook says whether the person went through; an admit it does not confirm
 * is annulled (recorded, synced, not counted, and the badge may try again at once); a technician
 * admits and denies by hand, recorded with who and why.
 */
describe('end to end: annulled admits and decisions by hand reach the cloud', () => {
  const tmp = tempDir()
  let db: Awaited<ReturnType<typeof tempDatabase>>
  let sql: pg.Client
  let cloud: ReturnType<typeof spawn> | null = null
  let url = ''
  const OPS = 'ops-token-for-the-override-test'

  beforeAll(async () => {
    db = await tempDatabase({ migrate: false })
    sql = await connect(db.url)
    expect((await cloudCli(['migrate'], { DATABASE_URL: db.url })).code).toBe(0)
    const port = await freePort()
    url = `http://127.0.0.1:${port}`
    cloud = spawn(process.execPath, [CLOUD_BIN, 'serve'], {
      env: cleanEnv({ DATABASE_URL: db.url, PORT: String(port), LOG_LEVEL: 'warn', OPS_TOKEN: OPS }),
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    await eventually(async () => (await fetch(`${url}/readyz`)).ok, 30_000, 200)
  }, 60_000)
  afterAll(async () => {
    cloud?.kill('SIGTERM')
    await sql?.end()
    await db?.drop()
    tmp.cleanup()
  })

  it('annuls the admits the turnstile did not confirm, and records decisions by hand with who and why', async () => {
    const env = { DATABASE_URL: db.url }
    const added = await cloudCli(['gates', 'add', 'door', '--event', 'fair'], env)
    expect(added.code).toBe(0)
    const key = added.stdout.trim()
    const roster = path.join(tmp.dir, 'roster.csv')
    writeFileSync(
      roster,
      ['token,participant_id,category', `${ANN},p-ann,day`, `${BOB},p-bob,day`].join('\n'),
    )
    expect((await cloudCli(['participants', 'import', roster, '--event', 'fair'], env)).code).toBe(0)
    const policyFile = path.join(tmp.dir, 'policy.json')
    writeFileSync(
      policyFile,
      JSON.stringify({
        timeZone: 'UTC',
        zones: [{ id: 'hall', name: 'Hall', capacity: 100 }],
        lanes: [{ gate: 'door', to: 'hall' }],
        rules: [{ id: 'day', name: 'Day tickets', zone: 'hall', antiPassback: true }],
      }),
    )
    expect((await cloudCli(['policy', 'set', policyFile, '--event', 'fair'], env)).code).toBe(0)

    // the turnstile: Bob never gets through (the hook fails) until the flag file exists
    const flag = path.join(tmp.dir, 'bob-passes')
    const badges = path.join(tmp.dir, 'badges.jsonl')
    const header = JSON.stringify({ capture: 1, startedAt: new Date().toISOString(), gateId: 'door' })
    // the badges arrive once the roster and the policy are in (the pull comes first)
    writeFileSync(
      badges,
      [
        header,
        ...visit(ANN, 'c0:00:00:00:00:01', 6_000),
        ...visit(BOB, 'c0:00:00:00:00:02', 7_500),
        ...visit(BOB, 'c0:00:00:00:00:02', 9_000),
      ].join('\n'),
    )
    const dataDir = path.join(tmp.dir, 'data')
    const configFile = path.join(tmp.dir, 'agent.json')
    writeFileSync(
      configFile,
      JSON.stringify({
        gateId: 'door',
        source: { kind: 'replay', replay: { file: badges, speed: 1 } },
        proximity: { absenceMs: 300 },
        dedup: { windowMs: 60_000 },
        actuator: {
          onAdmit: ['sh', '-c', `test "$1" != ${BOB} || test -e ${flag}`, 'turnstile', '{token}'],
          timeoutMs: 2_000,
          confirmPassage: true,
        },
        cloud: { syncIntervalMs: 100, rosterPullIntervalMs: 500, baseBackoffMs: 100, maxBackoffMs: 1_000 },
      }),
    )
    const agent = spawnAgent(dataDir, ['--config', configFile, '--log-level', 'info'], {
      GATE_CLOUD_URL: url,
      GATE_KEY: key,
    })
    await waitForAgent(agent)
    try {
      type Stored = {
        id: string
        participant_id: string | null
        decision: string
        reason: string | null
        method: string
        zone_in: string | null
        annuls: string | null
        actor: string | null
        note: string | null
      }
      const stored = (n: number) =>
        eventually(
          async () => {
            const r = await sql.query<Stored>(
              `SELECT id, participant_id, decision, reason, method, zone_in, annuls, actor, note
                 FROM attendance_records ORDER BY ts, boot_seq`,
            )
            return r.rows.length >= n ? r.rows : null
          },
          30_000,
          200,
        )
      // Ann passes; Bob is admitted twice (the re-entry window does not hold him back: the first
      // admit was annulled) and gets through neither time
      const rows = await stored(5)
      expect(rows.map((r) => [r.participant_id, r.decision, r.reason, r.zone_in])).toEqual([
        ['p-ann', 'admit', null, 'hall'],
        ['p-bob', 'admit', null, 'hall'],
        ['p-bob', 'deny', 'not_passed', 'hall'],
        ['p-bob', 'admit', null, 'hall'],
        ['p-bob', 'deny', 'not_passed', 'hall'],
      ])
      expect(rows[2]?.annuls).toBe(rows[1]?.id)
      expect(rows[4]?.annuls).toBe(rows[3]?.id)

      // the technician lets Bob in by hand (this time he goes through) and turns a stranger away
      writeFileSync(flag, '')
      const admitted = await gatectl([
        '--data-dir',
        dataDir,
        'admit',
        BOB,
        '--reason',
        'paper ticket checked',
      ])
      expect(admitted.code, admitted.stderr).toBe(0)
      expect(admitted.stdout).toContain('ADMITTED by hand')
      const denied = await gatectl(['--data-dir', dataDir, 'deny', STRANGER, '--reason', 'no ticket'])
      expect(denied.code, denied.stderr).toBe(0)
      // a reason is required
      const silent = await gatectl(['--data-dir', dataDir, 'deny', STRANGER])
      expect(silent.code).not.toBe(0)
      expect(silent.stderr).toContain('--reason')

      const all = await stored(7)
      const me = userInfo().username
      expect(
        all.slice(5).map((r) => [r.participant_id, r.decision, r.reason, r.method, r.actor, r.note]),
      ).toEqual([
        ['p-bob', 'admit', null, 'manual', me, 'paper ticket checked'],
        [null, 'deny', 'by_hand', 'manual', me, 'no ticket'],
      ])
      // the hall counts Ann and Bob, once each: the annulled admits hold no place
      const occupancy = await eventually(
        async () => {
          const res = await fetch(`${url}/v1/query/events/fair/occupancy`, {
            headers: { authorization: `Bearer ${OPS}` },
          })
          const body = (await res.json()) as {
            zones: Array<{ zone: string; occupancy: number; gates: Array<Record<string, unknown>> }>
          }
          const hall = body.zones.find((z) => z.zone === 'hall')
          return hall && hall.gates[0]?.['entries'] === 4 ? hall : null
        },
        15_000,
        200,
      )
      expect(occupancy).toMatchObject({ occupancy: 2, gates: [{ gateId: 'door', entries: 4, annulled: 2 }] })
      // and the technician's own list says who did what
      const list = await gatectl(['--data-dir', dataDir, 'checkins', 'list', '--limit', '2'])
      expect(list.stdout.split('\n')[0]).toMatch(
        /^TIME\s+STATE\s+DECISION\s+REASON\s+TOKEN\s+PARTICIPANT\s+ID$/,
      )
      expect(list.stdout).toContain(`by hand (${me}): no ticket`)
      expect(list.stdout).toContain(`by hand (${me}): paper ticket checked`)
    } finally {
      agent.child.kill('SIGTERM')
      await agent.exited
    }
  }, 120_000)
})

import { spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import Database from 'better-sqlite3'
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

const VIP = 'a1a1a1a1a1a1a1a1'
const STANDARD = 'b2b2b2b2b2b2b2b2'
const SPEAKER = 'c3c3c3c3c3c3c3c3'
const VIP_2 = 'd4d4d4d4d4d4d4d4'

/** A local time of day (UTC) `hours` from now, HH:MM. */
function utcIn(hours: number): string {
  const d = new Date(Date.now() + hours * 3_600_000)
  return `${String(d.getUTCHours()).padStart(2, '0')}:${String(d.getUTCMinutes()).padStart(2, '0')}`
}

describe('end to end: a gate decides by the access policy its event has in the cloud', () => {
  const tmp = tempDir()
  let db: Awaited<ReturnType<typeof tempDatabase>>
  let sql: pg.Client
  let cloud: ReturnType<typeof spawn> | null = null
  let url = ''
  const OPS = 'ops-token-for-the-access-test'

  beforeAll(async () => {
    db = await tempDatabase({ migrate: false })
    sql = await connect(db.url)
    expect((await cloudCli(['migrate'], { DATABASE_URL: db.url })).code).toBe(0)
    const port = await freePort()
    url = `http://127.0.0.1:${port}`
    cloud = spawn(process.execPath, [CLOUD_BIN, 'serve'], {
      env: cleanEnv({
        DATABASE_URL: db.url,
        PORT: String(port),
        LOG_LEVEL: 'warn',
        PARTITION_INTERVAL: 'month',
        OPS_TOKEN: OPS,
      }),
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

  it('refuses a policy that names a zone it does not define, naming the problem', async () => {
    const res = await fetch(`${url}/v1/events/conf/access-policy`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${OPS}`, 'content-type': 'application/json' },
      body: JSON.stringify({ timeZone: 'UTC', zones: [], lanes: [{ gate: 'g', to: 'vip' }], rules: [] }),
    })
    expect(res.status).toBe(400)
    expect(JSON.stringify(await res.json())).toContain('lanes.0.to: no zone vip')
  })

  it('admits into the zone, denies with the rule and its reason, offline after the pull, and syncs it', async () => {
    const env = { DATABASE_URL: db.url }
    const added = await cloudCli(['gates', 'add', 'vip-door', '--event', 'conf'], env)
    expect(added.code).toBe(0)
    const key = added.stdout.trim()
    const roster = path.join(tmp.dir, 'roster.csv')
    writeFileSync(
      roster,
      [
        'token,participant_id,category,tags',
        `${VIP},p-vip,vip,`,
        `${STANDARD},p-standard,standard,`,
        `${SPEAKER},p-speaker,standard,speaker;press`,
        `${VIP_2},p-vip-2,vip,`,
      ].join('\n'),
    )
    expect((await cloudCli(['participants', 'import', roster, '--event', 'conf'], env)).code).toBe(0)
    const speakersFrom = utcIn(1)
    const speakersUntil = utcIn(2)
    // what the gate says of the speakers' window: it opens later today; or, an hour before
    // midnight and after, that window is tomorrow's and today's has closed
    const minutesOf = (hhmm: string) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3))
    const speakersClosed = minutesOf(utcIn(0)) >= minutesOf(speakersFrom)
    const speakersWindow = speakersClosed
      ? `VIP lounge closed at ${speakersUntil} UTC`
      : `VIP lounge opens at ${speakersFrom} UTC`
    const policyFile = path.join(tmp.dir, 'policy.json')
    writeFileSync(
      policyFile,
      JSON.stringify({
        timeZone: 'UTC',
        zones: [
          { id: 'hall', name: 'Main hall' },
          { id: 'vip', name: 'VIP lounge', capacity: 1 },
        ],
        lanes: [{ gate: 'vip-door', from: 'hall', to: 'vip' }],
        rules: [
          { id: 'vip-guests', name: 'VIP guests', zone: 'vip', categories: ['vip'], antiPassback: true },
          // speakers only later: an hour from now for an hour
          {
            id: 'speakers',
            name: 'Speakers',
            zone: 'vip',
            tags: ['speaker'],
            from: speakersFrom,
            until: speakersUntil,
          },
        ],
      }),
    )
    const set = await cloudCli(['policy', 'set', policyFile, '--event', 'conf'], env)
    expect(set.stdout).toMatch(/version 1 \(2 zones, 1 lanes, 2 rules\)/)

    const dataDir = path.join(tmp.dir, 'data')
    const config = (file: string, level = 'warn') => {
      const configFile = path.join(tmp.dir, `agent-${path.basename(file)}.json`)
      writeFileSync(
        configFile,
        JSON.stringify({
          gateId: 'vip-door',
          source: { kind: 'replay', replay: { file, speed: 1 } },
          proximity: { absenceMs: 300 },
          dedup: { windowMs: 0 },
          cloud: { syncIntervalMs: 100, rosterPullIntervalMs: 500, baseBackoffMs: 100, maxBackoffMs: 1_000 },
        }),
      )
      return ['--config', configFile, '--log-level', level]
    }
    const header = JSON.stringify({ capture: 1, startedAt: new Date().toISOString(), gateId: 'vip-door' })

    // 1. the gate pulls its roster and the policy, with no badge in sight, and stops
    const quiet = path.join(tmp.dir, 'quiet.jsonl')
    writeFileSync(quiet, `${header}\n`)
    const first = spawnAgent(dataDir, config(quiet), { GATE_CLOUD_URL: url, GATE_KEY: key })
    await waitForAgent(first)
    const pulled = () => {
      const local = new Database(path.join(dataDir, 'agent.db'), { readonly: true })
      try {
        const policy = local.prepare("SELECT value FROM meta WHERE key = 'access_policy'").pluck().get()
        const rostered = local.prepare('SELECT count(*) FROM roster WHERE category IS NOT NULL').pluck().get()
        // and the allotment of the lounge's one place, for this gate
        const allotted = local.prepare("SELECT value FROM meta WHERE key = 'access_allotments'").pluck().get()
        return (
          policy !== undefined &&
          rostered === 4 &&
          typeof allotted === 'string' &&
          allotted.includes('"limit":1')
        )
      } finally {
        local.close()
      }
    }
    await eventually(async () => pulled(), 30_000, 100)
    first.child.kill('SIGTERM')
    expect(await first.exited).toBe(0)

    // 2. offline (no cloud configured): the badges arrive; the policy kept in its file decides
    const badges = path.join(tmp.dir, 'badges.jsonl')
    writeFileSync(
      badges,
      [
        header,
        ...visit(VIP, 'c0:00:00:00:00:01', 0),
        ...visit(STANDARD, 'c0:00:00:00:00:02', 1_500),
        ...visit(SPEAKER, 'c0:00:00:00:00:03', 3_000),
        ...visit(VIP, 'c0:00:00:00:00:01', 4_500),
        ...visit(VIP_2, 'c0:00:00:00:00:04', 6_000),
      ].join('\n'),
    )
    const second = spawnAgent(dataDir, config(badges, 'info'))
    await waitForAgent(second)
    type Row = {
      participant_id: string
      decision: string
      reason: string | null
      zone_in: string | null
      rule_id: string | null
    }
    const decided = await eventually(
      async () => {
        const local = new Database(path.join(dataDir, 'agent.db'), { readonly: true })
        try {
          const rows = local
            .prepare(
              'SELECT participant_id, decision, reason, zone_in, rule_id FROM checkins ORDER BY seq_no',
            )
            .all() as Row[]
          return rows.length >= 5 ? rows : null
        } finally {
          local.close()
        }
      },
      30_000,
      100,
    )
    second.child.kill('SIGTERM')
    expect(await second.exited).toBe(0)
    expect(decided).toEqual([
      { participant_id: 'p-vip', decision: 'admit', reason: null, zone_in: 'vip', rule_id: 'vip-guests' },
      { participant_id: 'p-standard', decision: 'deny', reason: 'no_access', zone_in: null, rule_id: null },
      {
        participant_id: 'p-speaker',
        decision: 'deny',
        reason: 'outside_time_window',
        zone_in: null,
        rule_id: 'speakers',
      },
      // inside the lounge since the first visit, with no exit: anti-passback
      {
        participant_id: 'p-vip',
        decision: 'deny',
        reason: 'anti_passback',
        zone_in: null,
        rule_id: 'vip-guests',
      },
      // the lounge's one place is taken, by this gate's own allotment: full, offline too
      {
        participant_id: 'p-vip-2',
        decision: 'deny',
        reason: 'zone_full',
        zone_in: null,
        rule_id: 'vip-guests',
      },
    ])
    expect(second.stdout() + second.stderr()).toContain(
      `access denied: outside_time_window: ${speakersWindow}`,
    )

    // 3. back online: the decisions reach the cloud with their reasons
    const third = spawnAgent(dataDir, config(quiet), { GATE_CLOUD_URL: url, GATE_KEY: key })
    await waitForAgent(third)
    try {
      const stored = await eventually(
        async () => {
          const r = await sql.query<{ participant_id: string; reason: string | null }>(
            'SELECT participant_id, reason FROM attendance_records ORDER BY ts, boot_seq',
          )
          return r.rows.length >= 5 ? r.rows : null
        },
        30_000,
        200,
      )
      expect(stored.map((r) => r.reason)).toEqual([
        null,
        'no_access',
        'outside_time_window',
        'anti_passback',
        'zone_full',
      ])
      // each with the rule that decided and, for a denial, why in words: in the ops query API too
      const res = await fetch(`${url}/v1/query/participants/p-speaker/checkins`, {
        headers: { authorization: `Bearer ${OPS}` },
      })
      const speaker = ((await res.json()) as { checkins: Array<Record<string, unknown>> }).checkins[0]
      expect(speaker).toMatchObject({
        reason: 'outside_time_window',
        ruleId: 'speakers',
        policyVersion: 1,
        explanation: speakersWindow,
      })
      const admitted = await sql.query(
        'SELECT zone_in, zone_out, rule_id FROM attendance_records WHERE reason IS NULL',
      )
      expect(admitted.rows).toEqual([{ zone_in: 'vip', zone_out: 'hall', rule_id: 'vip-guests' }])
      // and the lounge's occupancy, from the gate's tallies
      const occupancy = await eventually(
        async () => {
          const res = await fetch(`${url}/v1/query/events/conf/occupancy`, {
            headers: { authorization: `Bearer ${OPS}` },
          })
          const body = (await res.json()) as {
            zones: Array<{ zone: string; occupancy: number; capacity: number | null; gates: unknown[] }>
          }
          const vip = body.zones.find((z) => z.zone === 'vip')
          return vip && vip.occupancy === 1 ? vip : null
        },
        15_000,
        200,
      )
      // the technician's view: the policy, the lane, and the lounge's count against the allotment
      const status = await gatectl(['--data-dir', dataDir, 'status'])
      expect(status.stdout).toMatch(/access\s+policy version 1, lane hall -> vip/)
      expect(status.stdout).toContain('vip: 1 in, 0 out, allotment 1 (0 left)')
      expect(occupancy).toMatchObject({
        capacity: 1,
        gates: [{ gateId: 'vip-door', entries: 1, exits: 0, annulled: 0, limit: 1 }],
      })
    } finally {
      third.child.kill('SIGTERM')
      await third.exited
    }
  }, 120_000)
})

import { spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import Database from 'better-sqlite3'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { visit } from '../support/badges.js'
import { freePort, tempDir } from '../support/helpers.js'
import { tempDatabase } from '../support/pg-helpers.js'
import {
  CLOUD_BIN,
  cleanEnv,
  cloudCli,
  eventually,
  spawnAgent,
  waitForAgent,
} from '../support/process-helpers.js'

const MQTT_URL = process.env['MQTT_URL'] ?? 'mqtt://127.0.0.1:1883'
const OPS = 'ops-token-for-the-checkout-test-0'
const SECRET = 'command-secret-of-the-checkout-test'
const BADGE = 'a7a7a7a7a7a7a7a7'

/**
 * A check-out by hand from the console's API, made by a real gate: the cloud sends the gate of the
 * zone a signed command over the real Mosquitto, the gate records the passage out (who and why,
 * opening nothing), the zone's occupancy drops in the cloud, and the participant, who anti-passback
 * would otherwise have turned away, is let back in.
 */
describe('end to end: checking a participant out by hand', () => {
  const tmp = tempDir()
  const suffix = Math.random().toString(16).slice(2, 8)
  const gateId = `door-${suffix}`
  let db: Awaited<ReturnType<typeof tempDatabase>>
  let cloud: ReturnType<typeof spawn> | null = null
  let url = ''
  let gate: ReturnType<typeof spawnAgent> | null = null
  const dataDir = () => path.join(tmp.dir, 'gate')

  const api = async (method: string, p: string, body?: unknown) => {
    const res = await fetch(`${url}${p}`, {
      method,
      headers: { authorization: `Bearer ${OPS}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    })
    return { status: res.status, body: (await res.json()) as Record<string, unknown> }
  }
  const decisions = () => {
    const local = new Database(path.join(dataDir(), 'agent.db'), { readonly: true })
    try {
      return local
        .prepare('SELECT decision, reason, zone_in, zone_out, actor FROM checkins ORDER BY seq_no')
        .all() as Array<{
        decision: string
        reason: string | null
        zone_in: string | null
        zone_out: string | null
        actor: string | null
      }>
    } finally {
      local.close()
    }
  }
  const hallOccupancy = async () => {
    const r = await api('GET', '/v1/query/events/party/occupancy')
    return (r.body['zones'] as Array<{ zone: string; occupancy: number }> | undefined)?.find(
      (z) => z.zone === 'hall',
    )?.occupancy
  }

  beforeAll(async () => {
    db = await tempDatabase({ migrate: false })
    const env = { DATABASE_URL: db.url }
    expect((await cloudCli(['migrate'], env)).code).toBe(0)
    const port = await freePort()
    url = `http://127.0.0.1:${port}`
    cloud = spawn(process.execPath, [CLOUD_BIN, 'serve'], {
      env: cleanEnv({
        ...env,
        PORT: String(port),
        LOG_LEVEL: 'warn',
        OPS_TOKEN: OPS,
        MQTT_URL,
        FLEET_COMMAND_SECRET: SECRET,
        FLEET_SHARE_GROUP: `checkout-${suffix}`,
      }),
      stdio: 'ignore',
    })
    await eventually(async () => (await fetch(`${url}/readyz`).catch(() => null))?.ok, 30_000, 200)
  }, 60_000)
  afterAll(async () => {
    if (gate && gate.child.exitCode === null) {
      gate.child.kill('SIGTERM')
      await gate.exited
    }
    cloud?.kill('SIGTERM')
    await db?.drop()
    tmp.cleanup()
  })

  it('the gate records the passage out, the hall empties, and the participant comes back in', async () => {
    const env = { DATABASE_URL: db.url }
    const added = await cloudCli(['gates', 'add', gateId, '--event', 'party'], env)
    expect(added.code).toBe(0)
    const key = added.stdout.trim()
    const roster = path.join(tmp.dir, 'roster.csv')
    writeFileSync(roster, `participant_id,token,status,name\nguest-1,${BADGE},active,Guest One\n`)
    expect((await cloudCli(['participants', 'import', roster, '--event', 'party'], env)).code).toBe(0)
    const policy = await fetch(`${url}/v1/events/party/access-policy`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${OPS}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        timeZone: 'UTC',
        zones: [{ id: 'hall', name: 'Hall', capacity: 10 }],
        lanes: [{ gate: gateId, to: 'hall' }],
        rules: [{ id: 'guests', name: 'Guests', zone: 'hall', antiPassback: true }],
      }),
    })
    expect(policy.status).toBe(200)

    // the guest comes in at 3 s and tries again at 20 s: anti-passback unless checked out between
    const capture = path.join(tmp.dir, 'badge.jsonl')
    writeFileSync(
      capture,
      [
        JSON.stringify({ capture: 1, startedAt: new Date().toISOString(), gateId }),
        ...visit(BADGE, 'c0:00:00:00:00:07', 3_000),
        ...visit(BADGE, 'c0:00:00:00:00:07', 20_000),
      ].join('\n'),
    )
    const configFile = path.join(tmp.dir, 'agent.json')
    writeFileSync(
      configFile,
      JSON.stringify({
        gateId,
        source: { kind: 'replay', replay: { file: capture, speed: 1 } },
        proximity: { absenceMs: 300 },
        dedup: { windowMs: 0 },
        cloud: { syncIntervalMs: 100, rosterPullIntervalMs: 500, baseBackoffMs: 100, maxBackoffMs: 1_000 },
        mqtt: { url: MQTT_URL, metricsIntervalMs: 1_000 },
      }),
    )
    gate = spawnAgent(dataDir(), ['--config', configFile, '--log-level', 'warn'], {
      GATE_CLOUD_URL: url,
      GATE_KEY: key,
      GATE_CMD_SECRET: SECRET,
    })
    await waitForAgent(gate)
    await eventually(
      async () => decisions().some((d) => d.decision === 'admit' && d.zone_in === 'hall'),
      15_000,
      100,
    )
    await eventually(async () => (await hallOccupancy()) === 1, 15_000, 200)

    // the cloud's fleet monitor hears the gate over the broker
    await eventually(
      async () => (await api('GET', `/v1/fleet/${gateId}`)).body['state'] === 'online',
      20_000,
      200,
    )
    const out = await api('POST', '/v1/events/party/participants/guest-1/check-out', {
      note: 'left by the fire exit, seen by a steward',
    })
    expect(out.status, JSON.stringify(out.body)).toBe(200)
    expect(out.body['gateId']).toBe(gateId)
    expect(out.body['checkin']).toMatchObject({ decision: 'admit', zoneOut: 'hall', actor: 'ops token' })
    // the hall's count follows, from the gate's own tallies
    await eventually(async () => (await hallOccupancy()) === 0, 15_000, 200)

    // back at the door: let in again, where anti-passback would have refused a second entry
    const again = await eventually(
      async () => {
        const d = decisions()
        return d.length >= 3 ? d : null
      },
      30_000,
      200,
    )
    expect(again.map((d) => [d.decision, d.reason, d.zone_in, d.zone_out, d.actor])).toEqual([
      ['admit', null, 'hall', null, null],
      ['admit', null, null, 'hall', 'ops token'],
      ['admit', null, 'hall', null, null],
    ])
    const trail = await api('GET', '/v1/audit?event=party&action=participant.checkout')
    expect((trail.body['entries'] as Array<Record<string, unknown>>)[0]).toMatchObject({
      actor: 'ops token',
      target: 'guest-1',
      outcome: 'done',
    })
  }, 90_000)

  it('says so when no gate of the event is online to record it', async () => {
    if (gate) {
      gate.child.kill('SIGTERM')
      await gate.exited
    }
    await eventually(
      async () =>
        (await api('POST', '/v1/events/party/participants/guest-1/check-out', { note: 'again' })).status ===
        409,
      20_000,
      300,
    )
  }, 30_000)
})

import { type ChildProcess, spawn } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import pg from 'pg'
import { type Browser, chromium, type Page } from 'playwright-core'
import { v7 as uuidv7 } from 'uuid'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { putPolicy } from '../../cloud/access/policies.js'
import { addGate } from '../../cloud/gates/store.js'
import { importParticipants } from '../../cloud/participants/import.js'
import type { Checkin } from '../../shared/checkin.js'
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

const ROOT = path.resolve(import.meta.dirname, '..', '..')
const ARTIFACTS = path.join(ROOT, 'test-artifacts')
const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium'
const OPS_TOKEN = 'ops-console-test-token-0123456789'
const PASSWORD = 'the organiser of the gala'
const BOOT = '0190f7a0-0000-7000-8000-000000000003'
const token = (i: number) => `cd${String(i).padStart(14, '0')}`

/**
 * The event console in a real headless Chromium against a real gate-cloud serve on real Postgres,
 * as the gala's organiser (an account the ops token made during the first set-up): it asks to log
 * in, opens on the event's attendance (arrived against expected, zones against capacity, denials by
 * reason, the latest decisions), a decision a gate syncs shows within two seconds without a reload,
 * a badge revoked on the page is denied by a real gate after its next roster pull, an incident is
 * resolved, the export downloads, another event's data is refused, and it fits a phone's width.
 */
describe('the event console in headless Chromium', () => {
  let db: Awaited<ReturnType<typeof tempDatabase>>
  let pool: pg.Pool
  let cloud: ChildProcess | null = null
  let url = ''
  let gateKey = ''
  let browser: Browser | null = null
  let page: Page
  let seq = 0
  const tmp = tempDir('console-e2e-')

  const upload = async (records: Checkin[]) => {
    const res = await fetch(`${url}/v1/sync/checkins`, {
      method: 'POST',
      headers: { authorization: `Bearer ${gateKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ gateId: 'front', sentAt: Date.now(), records }),
    })
    expect(res.status, await res.text()).toBe(200)
  }
  const record = (i: number, extra: Partial<Checkin> = {}): Checkin => ({
    id: uuidv7(),
    gateId: 'front',
    token: token(i),
    participantId: `c${i}`,
    method: 'ble',
    decision: 'admit',
    reason: null,
    rssi: -50,
    ts: Date.now(),
    monoMs: 1000 + seq,
    bootId: BOOT,
    bootSeq: ++seq,
    rosterVersion: 1,
    ...extra,
  })

  beforeAll(async () => {
    db = await tempDatabase({ migrate: false })
    expect((await cloudCli(['migrate'], { DATABASE_URL: db.url })).code).toBe(0)
    pool = new pg.Pool({ connectionString: db.url, max: 2 })
    gateKey = await addGate(pool, 'front', { eventId: 'gala', name: 'Front door' })
    await importParticipants(
      pool,
      Array.from({ length: 20 }, (_, i) => ({
        participantId: `c${i}`,
        token: token(i),
        status: 'active' as const,
        name: `Guest Number ${i}`,
      })),
      { eventId: 'gala' },
    )
    await putPolicy(pool, 'gala', {
      timeZone: 'Europe/Lisbon',
      zones: [{ id: 'ballroom', name: 'Ballroom', capacity: 10 }],
      lanes: [{ gate: 'front', to: 'ballroom' }],
      rules: [{ id: 'guests', name: 'Guests', zone: 'ballroom' }],
    })
    const port = await freePort()
    url = `http://127.0.0.1:${port}`
    cloud = spawn(process.execPath, [CLOUD_BIN, 'serve'], {
      env: cleanEnv({ DATABASE_URL: db.url, PORT: String(port), LOG_LEVEL: 'warn', OPS_TOKEN }),
      stdio: 'ignore',
    })
    await eventually(async () => (await fetch(`${url}/readyz`).catch(() => null))?.ok, 30_000, 200)
    // another event, with a participant the gala's organiser must never see
    await importParticipants(
      pool,
      [{ participantId: 'x1', token: token(99), status: 'active', name: 'Other Guest' }],
      {
        eventId: 'expo',
      },
    )
    // the first set-up: the ops token makes the accounts (the organiser, then ops: after that the token is refused)
    for (const account of [
      {
        login: 'gala-lead',
        displayName: 'Gala lead',
        role: 'organiser',
        password: PASSWORD,
        events: ['gala'],
      },
      { login: 'ops-olga', displayName: 'Olga', role: 'ops', password: `${PASSWORD} for ops` },
    ]) {
      const res = await fetch(`${url}/v1/accounts`, {
        method: 'POST',
        headers: { authorization: `Bearer ${OPS_TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify(account),
      })
      expect(res.status, await res.text()).toBe(201)
    }
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] })
    page = await browser.newPage({ viewport: { width: 1280, height: 1000 }, acceptDownloads: true })
  }, 90_000)

  afterAll(async () => {
    await browser?.close()
    cloud?.kill('SIGTERM')
    await pool?.end()
    await db?.drop()
    tmp.cleanup()
  }, 60_000)

  it('asks to log in, and again after a wrong password', async () => {
    expect((await fetch(`${url}/v1/query/events/gala/attendance`)).status).toBe(401)
    await page.goto(`${url}/console`)
    await page.waitForSelector('#login:not([hidden])')
    await page.fill('#login-name', 'gala-lead')
    await page.fill('#password', 'not the password')
    await page.click('#login button[type="submit"]')
    await expect
      .poll(() => page.textContent('#login-error'), { timeout: 5_000 })
      .toContain('Wrong login or password')
  })

  it('opens on the attendance and shows a synced decision within two seconds', async () => {
    await upload([record(0), record(1)])
    await page.fill('#login-name', 'gala-lead')
    await page.fill('#password', PASSWORD)
    await page.click('#login button[type="submit"]')
    await page.waitForSelector('#status[data-state="live"]', { timeout: 10_000 })
    expect(await page.textContent('#who-name')).toBe('gala-lead (organiser)')
    // the fleet is not the organiser's: no Ops link, and the event list holds only the gala
    expect(await page.isHidden('#ops-link')).toBe(true)
    expect(
      await page.$$eval('#event option', (o) => o.map((x) => (x as unknown as { value: string }).value)),
    ).toEqual(['gala'])
    expect(await page.textContent('#arrived')).toBe('2')
    expect(await page.textContent('#expected')).toBe('20')
    expect(await page.textContent('#timezone')).toContain('Europe/Lisbon')
    expect(await page.textContent('#denials tbody')).toContain('none in the last hour')

    // a gate syncs: an admit and a denial, seen on the page without a reload
    const synced = Date.now()
    await upload([
      record(2),
      record(3, { decision: 'deny', reason: 'zone_full', explanation: 'zone_full: Ballroom holds 10' }),
    ])
    await expect.poll(() => page.textContent('#arrived'), { timeout: 5_000, interval: 50 }).toBe('3')
    const shownAfter = Date.now() - synced
    expect(shownAfter).toBeLessThan(2_000)
    await expect.poll(() => page.textContent('#denials tbody'), { timeout: 5_000 }).toContain('zone_full')
    const feed = await page.textContent('#feed tbody')
    expect(feed).toContain('Guest Number 3')
    expect(feed).toContain('zone_full: Ballroom holds 10')
    expect(await page.textContent('#zones tbody')).toContain('Ballroom')
    mkdirSync(ARTIFACTS, { recursive: true })
    await page.screenshot({ path: path.join(ARTIFACTS, 'console.png'), fullPage: true })
  })

  it('resolves an incident with a note, from the page', async () => {
    const r = await pool.query<{ id: string }>(
      `INSERT INTO incidents (kind, gate_id, participant_id, record_id, record_ts)
       VALUES ('double_entry', 'front', 'c1', gen_random_uuid(), now()) RETURNING id`,
    )
    const id = r.rows[0]?.id as string
    const rowOf = `#incidents tr[data-incident="${id}"]`
    await page.waitForSelector(rowOf, { timeout: 10_000 })
    expect(await page.textContent(rowOf)).toContain('double entry')
    await page.click(`${rowOf} button[data-action="acknowledge"]`)
    await expect.poll(() => page.textContent(rowOf), { timeout: 5_000 }).toContain('acknowledged')
    await page.fill(`${rowOf} input`, 'two badges on one lanyard; sorted at the desk')
    await page.click(`${rowOf} button[data-action="resolve"]`)
    // resolved: gone from the open ones, and kept with its note
    await page.waitForSelector(rowOf, { state: 'detached', timeout: 5_000 })
    const stored = await pool.query('SELECT resolved_at, resolved_by, note FROM incidents WHERE id = $1', [
      id,
    ])
    expect(stored.rows[0]).toMatchObject({ note: 'two badges on one lanyard; sorted at the desk' })
    expect(stored.rows[0].resolved_by).toMatch(/^gala-lead from /)
    await page.selectOption('#incident-state', 'resolved')
    await expect.poll(() => page.textContent(rowOf), { timeout: 5_000 }).toContain('sorted at the desk')
  })

  it('finds a participant, revokes their badge, and a real gate denies it after its next roster pull', async () => {
    await page.fill('#search-q', 'number 3')
    await page.click('#search button[type="submit"]')
    await page.waitForSelector('#found tr[data-participant="c3"]', { timeout: 5_000 })
    await page.click('#found tr[data-participant="c3"]')
    await expect.poll(() => page.textContent('#history tbody'), { timeout: 5_000 }).toContain('zone_full')
    await page.click('#revoke')
    await expect.poll(() => page.textContent('#person-name'), { timeout: 5_000 }).toContain('revoked')
    // a token another guest holds is refused, in words
    await page.fill('#new-token', token(4))
    await page.click('#replace')
    await expect
      .poll(() => page.textContent('#person-message'), { timeout: 5_000 })
      .toContain('another active')

    // the front door's gate: it pulls its roster, then hears the revoked badge and denies it; the
    // denial syncs and shows in the console's feed
    const capture = path.join(tmp.dir, 'badge.jsonl')
    writeFileSync(
      capture,
      [
        JSON.stringify({ capture: 1, startedAt: new Date().toISOString(), gateId: 'front' }),
        ...visit(token(3), 'c0:00:00:00:00:03', 3_000),
      ].join('\n'),
    )
    const configFile = path.join(tmp.dir, 'agent.json')
    writeFileSync(
      configFile,
      JSON.stringify({
        gateId: 'front',
        source: { kind: 'replay', replay: { file: capture, speed: 1 } },
        proximity: { absenceMs: 300 },
        cloud: { syncIntervalMs: 100, rosterPullIntervalMs: 500, baseBackoffMs: 100, maxBackoffMs: 1_000 },
      }),
    )
    const gate = spawnAgent(path.join(tmp.dir, 'gate'), ['--config', configFile, '--log-level', 'warn'], {
      GATE_CLOUD_URL: url,
      GATE_KEY: gateKey,
    })
    try {
      await waitForAgent(gate)
      await expect
        .poll(() => page.textContent('#feed tbody tr:first-child'), { timeout: 20_000, interval: 200 })
        .toContain('revoked')
      expect(await page.textContent('#feed tbody tr:first-child')).toContain('Guest Number 3')
    } finally {
      gate.child.kill('SIGTERM')
      await gate.exited
    }
  })

  it("downloads the export, and its rows are the gala's check-ins", async () => {
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#export')])
    expect(download.suggestedFilename()).toBe('attendance-gala.csv')
    const file = path.join(ARTIFACTS, 'attendance-gala.csv')
    mkdirSync(ARTIFACTS, { recursive: true })
    await download.saveAs(file)
    const lines = readFileSync(file, 'utf8').trim().split('\n')
    const stored = await pool.query(
      "SELECT count(*)::int AS n FROM attendance_records WHERE gate_id = 'front'",
    )
    expect(lines.length - 1).toBe(stored.rows[0].n)
    expect(lines.some((l) => l.includes(',c3,Guest Number 3,deny,revoked,'))).toBe(true)
    expect(lines.join('\n')).not.toContain('Other Guest')
    // kept in the audit trail, as the organiser
    await expect.poll(() => page.textContent('#activity tbody'), { timeout: 10_000 }).toContain('export csv')
  })

  it("refuses another event's data to the gala's organiser", async () => {
    const refused = await page.evaluate(async () => {
      const f = (globalThis as unknown as { fetch: typeof fetch }).fetch
      const paths = [
        '/v1/query/events/expo/attendance',
        '/v1/query/events/expo/export.csv',
        '/v1/query/participants?q=other&event=expo',
        '/v1/query/participants/x1/checkins',
        '/v1/dashboard/stream',
      ]
      return Promise.all(paths.map(async (p) => [p, (await f(p)).status] as const))
    })
    for (const [p, status] of refused) expect(status, p).toBe(403)
    await page.goto(`${url}/console?event=expo`)
    await page.waitForSelector('#status[data-state="live"]', { timeout: 10_000 })
    // not a choice on the page either: it falls back to the organiser's own event
    expect(await page.inputValue('#event')).toBe('gala')
  })

  it("fits a phone's width", async () => {
    await page.setViewportSize({ width: 390, height: 844 })
    await page.reload()
    await page.waitForSelector('#status[data-state="live"]', { timeout: 10_000 })
    const overflow = await page.evaluate(() => {
      type Root = { scrollWidth: number; clientWidth: number }
      const root = (globalThis as unknown as { document: { documentElement: Root } }).document.documentElement
      return root.scrollWidth - root.clientWidth
    })
    expect(overflow).toBeLessThanOrEqual(0)
    await page.screenshot({ path: path.join(ARTIFACTS, 'console-phone.png'), fullPage: true })
  })
})

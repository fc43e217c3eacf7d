import { type ChildProcess, spawn } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import path from 'node:path'
import pg from 'pg'
import { type Browser, chromium, type Page } from 'playwright-core'
import { v7 as uuidv7 } from 'uuid'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { putPolicy } from '../../cloud/access/policies.js'
import { addGate } from '../../cloud/gates/store.js'
import { importParticipants } from '../../cloud/participants/import.js'
import type { Checkin } from '../../shared/checkin.js'
import { freePort } from '../support/helpers.js'
import { tempDatabase } from '../support/pg-helpers.js'
import { CLOUD_BIN, cleanEnv, cloudCli, eventually } from '../support/process-helpers.js'

const ROOT = path.resolve(import.meta.dirname, '..', '..')
const ARTIFACTS = path.join(ROOT, 'test-artifacts')
const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium'
const OPS_TOKEN = 'ops-console-test-token-0123456789'
const BOOT = '0190f7a0-0000-7000-8000-000000000003'
const token = (i: number) => `cd${String(i).padStart(14, '0')}`

/**
 * The event console in a real headless Chromium against a real gate-cloud serve on real Postgres:
 * it opens on the event's attendance (arrived against expected, zones against capacity, denials by
 * reason, the latest decisions), and a decision a gate syncs shows within two seconds, without a
 * reload. It works at a phone's width, and asks again for a token that is refused.
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
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] })
    page = await browser.newPage({ viewport: { width: 1280, height: 1000 } })
  }, 90_000)

  afterAll(async () => {
    await browser?.close()
    cloud?.kill('SIGTERM')
    await pool?.end()
    await db?.drop()
  }, 60_000)

  it('asks for a token, and again when it is refused', async () => {
    expect((await fetch(`${url}/v1/query/events/gala/attendance`)).status).toBe(401)
    await page.goto(`${url}/console#token=wrong-token`)
    await page.waitForSelector('#login:not([hidden])')
    expect(await page.textContent('#login-error')).toContain('refused')
  })

  it('opens on the attendance and shows a synced decision within two seconds', async () => {
    await upload([record(0), record(1)])
    await page.goto(`${url}/console#token=${OPS_TOKEN}`)
    await expect.poll(() => page.url()).not.toContain(OPS_TOKEN)
    await page.waitForSelector('#status[data-state="live"]', { timeout: 10_000 })
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
    expect(stored.rows[0].resolved_by).toMatch(/^ops token from /)
    await page.selectOption('#incident-state', 'resolved')
    await expect.poll(() => page.textContent(rowOf), { timeout: 5_000 }).toContain('sorted at the desk')
  })

  it('finds a participant, shows their history, and revokes their badge', async () => {
    await page.fill('#search-q', 'number 3')
    await page.click('#search button[type="submit"]')
    await page.waitForSelector('#found tr[data-participant="c3"]', { timeout: 5_000 })
    await page.click('#found tr[data-participant="c3"]')
    await expect.poll(() => page.textContent('#history tbody'), { timeout: 5_000 }).toContain('zone_full')
    await page.click('#revoke')
    await expect.poll(() => page.textContent('#person-name'), { timeout: 5_000 }).toContain('revoked')
    const stored = await pool.query("SELECT status FROM participants WHERE id = 'c3'")
    expect(stored.rows[0]).toEqual({ status: 'revoked' })
    // a token another guest holds is refused, in words
    await page.fill('#new-token', token(4))
    await page.click('#replace')
    await expect
      .poll(() => page.textContent('#person-message'), { timeout: 5_000 })
      .toContain('another active')
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

import { spawn } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import mqtt from 'mqtt'
import { type Browser, chromium, type Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { freePort, tempDir } from '../support/helpers.js'
import { connect, tempDatabase } from '../support/pg-helpers.js'
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
const MQTT_URL = process.env['MQTT_URL'] ?? 'mqtt://127.0.0.1:1883'
const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium'
const OPS_TOKEN = 'ops-dashboard-test-token-0123456789'

/**
 * The ops dashboard in a real headless Chromium (Debian's, driven by playwright-core), against a
 * real gate-cloud serve, real gate-agent processes and the real Mosquitto: the page shows the
 * gates, a gate killed with SIGKILL turns offline (its last will) and online again when restarted,
 * without a reload; a gate's charts draw its history; the cloud's panels fill in.
 */
describe('the ops dashboard in headless Chromium', () => {
  const tmp = tempDir()
  const suffix = Math.random().toString(16).slice(2, 8)
  const gateA = `dash-a-${suffix}`
  const gateB = `dash-b-${suffix}`
  let db: Awaited<ReturnType<typeof tempDatabase>>
  let cloud: ReturnType<typeof spawn> | null = null
  let router: ReturnType<typeof spawn> | null = null
  let cloudLog = ''
  let url = ''
  let browser: Browser | null = null
  let page: Page
  const agents: Array<ReturnType<typeof spawnAgent>> = []

  const startAgent = async (gateId: string) => {
    const dataDir = path.join(tmp.dir, gateId)
    const configFile = path.join(tmp.dir, `${gateId}.json`)
    writeFileSync(
      configFile,
      JSON.stringify({
        gateId,
        source: { sim: { participants: 200, arrivalSpreadMs: 30_000, seed: 3 } },
        mqtt: { url: MQTT_URL, metricsIntervalMs: 1000 },
      }),
    )
    const a = spawnAgent(dataDir, [
      '--config',
      configFile,
      '--source',
      'sim',
      '--demo',
      '--log-level',
      'warn',
    ])
    agents.push(a)
    await waitForAgent(a)
    return a
  }
  const row = (gateId: string, state: string) =>
    `#fleet-body tr[data-gate="${gateId}"][data-state="${state}"]`

  beforeAll(async () => {
    db = await tempDatabase({ migrate: false })
    const env = { DATABASE_URL: db.url }
    expect((await cloudCli(['migrate'], env)).code).toBe(0)
    // the fleet view shows the gates the cloud knows (its gates table), not any topic name
    for (const g of [gateA, gateB]) expect((await cloudCli(['gates', 'add', g], env)).code).toBe(0)
    const port = await freePort()
    const routerPort = await freePort()
    url = `http://127.0.0.1:${port}`
    cloud = spawn(process.execPath, [CLOUD_BIN, 'serve'], {
      env: cleanEnv({
        ...env,
        PORT: String(port),
        LOG_LEVEL: 'warn',
        OPS_TOKEN,
        MQTT_URL,
        FLEET_SHARE_GROUP: `dash-${suffix}`,
        ROUTER_URL: `http://127.0.0.1:${routerPort}`,
        NODE_NAME: 'dash-node-1',
      }),
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    cloud.stdout?.on('data', (b: Buffer) => {
      cloudLog += b.toString()
    })
    cloud.stderr?.on('data', (b: Buffer) => {
      cloudLog += b.toString()
    })
    await eventually(async () => (await fetch(`${url}/readyz`).catch(() => null))?.ok, 30_000, 200)
    // the load-aware router in front of it, whose view the dashboard shows
    router = spawn(
      process.execPath,
      [CLOUD_BIN, 'router', '--backends', url, '--port', String(routerPort), '--poll-ms', '500'],
      { env: cleanEnv({ LOG_LEVEL: 'warn' }), stdio: 'ignore' },
    )
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] })
    page = await browser.newPage({ viewport: { width: 1400, height: 1000 } })
  }, 90_000)

  afterAll(async () => {
    await browser?.close()
    for (const a of agents)
      if (a.child.exitCode === null && a.child.signalCode === null) a.child.kill('SIGTERM')
    await Promise.all(agents.map((a) => a.exited))
    cloud?.kill('SIGTERM')
    router?.kill('SIGTERM')
    // the gates' retained statuses would outlive the test on the shared broker
    const c = await mqtt.connectAsync(MQTT_URL)
    for (const g of [gateA, gateB]) await c.publishAsync(`gates/${g}/status`, '', { retain: true, qos: 1 })
    await c.endAsync()
    await db?.drop()
    tmp.cleanup()
  }, 60_000)

  it('refuses the stream and the history without a log-in or the ops token, and asks for one', async () => {
    expect((await fetch(`${url}/v1/dashboard/stream`)).status).toBe(401)
    expect((await fetch(`${url}/v1/fleet/x/history`)).status).toBe(401)
    const html = await fetch(`${url}/dashboard`)
    expect(html.status).toBe(200)
    expect(html.headers.get('content-security-policy')).toContain("default-src 'self'")
    await page.goto(`${url}/dashboard#token=wrong-token`)
    await page.waitForSelector('#login:not([hidden])')
    await expect.poll(() => page.textContent('#login-error')).toContain('wrong token')
  })

  it('shows gates going offline and online as their agents are killed and restarted, live', async () => {
    const a = await startAgent(gateA)
    await startAgent(gateB)
    await page.goto(`${url}/dashboard#token=${OPS_TOKEN}`)
    // the token left the address bar (a fragment, never sent to the server)
    // (the page's CSP forbids eval: waits are on locators and polls, not string predicates)
    await expect.poll(() => page.url()).not.toContain(OPS_TOKEN)
    await page.waitForSelector(row(gateA, 'online'), { timeout: 20_000 })
    await page.waitForSelector(row(gateB, 'online'), { timeout: 20_000 })
    await page.waitForSelector('#link[data-state="live"]')

    a.child.kill('SIGKILL')
    expect(await a.exited).toBe('SIGKILL')
    // the broker publishes the last will at once (the socket closed); no reload of the page
    await page.waitForSelector(row(gateA, 'offline'), { timeout: 15_000 })
    expect(await page.textContent(`${row(gateA, 'offline')} td.state`)).toContain('will')
    expect(await page.$(row(gateB, 'online'))).not.toBeNull()
    expect(Number(await page.textContent('#count-offline'))).toBeGreaterThanOrEqual(1)

    await startAgent(gateA)
    await page.waitForSelector(row(gateA, 'online'), { timeout: 20_000 })
  }, 90_000)

  it("draws a gate's charts from its history and fills the cloud's panels", async () => {
    // a double entry the way ingest records one (two gates offline from each other admitted P-77)
    const sql = await connect(db.url)
    await sql.query(
      `INSERT INTO incidents (kind, gate_id, participant_id, record_id, record_ts, other_gate_id, other_record_id)
       VALUES ('double_entry', $1, 'P-77', gen_random_uuid(), now(), $2, gen_random_uuid())`,
      [gateA, gateB],
    )
    await sql.end()
    // the history is written about once a second; wait for a few reports of gate B
    await eventually(
      async () => {
        const r = await fetch(`${url}/v1/fleet/${gateB}/history?minutes=60`, {
          headers: { authorization: `Bearer ${OPS_TOKEN}` },
        })
        const h = (await r.json()) as { ts: number[] }
        return h.ts.length >= 3
      },
      20_000,
      250,
    )
    await page.click(`#fleet-body tr[data-gate="${gateB}"]`)
    await page.waitForSelector('#gate-section:not([hidden])')
    await page.waitForSelector('#charts [data-chart="advertsPerS"] canvas', { timeout: 10_000 })
    expect(await page.locator('#charts canvas').count()).toBe(5)
    expect(await page.textContent('#gate-note')).toMatch(/\d+ report\(s\)/)
    // the overview (every 5 s): latency percentiles, cache and database lines, incidents count
    await page.locator('#cloud', { hasText: 'p99' }).waitFor({ timeout: 15_000 })
    const cloudText = (await page.textContent('#cloud')) ?? ''
    expect(cloudText).toContain('cache hit rate')
    expect(cloudText).toContain('database')
    expect(cloudText).toContain('autoscaler')
    // the router's view of this node (ROUTER_URL): in rotation, with its load report
    await page.locator('#cloud', { hasText: 'dash-node-1: in' }).waitFor({ timeout: 15_000 })
    await expect.poll(() => page.textContent('#count-incidents'), { timeout: 15_000 }).toBe('1')
    const incident = (await page.textContent('#incidents tbody')) ?? ''
    expect(incident).toContain('double_entry')
    expect(incident).toContain('P-77')
    expect(incident).toContain(`${gateA} / ${gateB}`)
    // filter narrows the table
    await page.fill('#filter', gateB)
    await expect.poll(() => page.locator('#fleet-body tr').count()).toBe(1)
    mkdirSync(ARTIFACTS, { recursive: true })
    await page.fill('#filter', '')
    await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard.png'), fullPage: true })
    expect(cloudLog).not.toContain(OPS_TOKEN)
  }, 60_000)
})

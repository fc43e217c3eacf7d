/**
 * bench:fleet: 10,000 simulated gates (MQTT clients with realistic payloads, one report per 10 s,
 * a retained status and a last will each) against the local Mosquitto and one `gate-cloud serve`
 * node. Reports: every gate tracked, the monitor's CPU and memory in steady state (target: under
 * half a core), and how fast a gate whose network silently dies (no FIN: a blackholing proxy the
 * benchmark controls) is seen offline (target: 1.5 keep-alive intervals plus the will delay).
 * Baseline in the same run, with the same gates: the broker alone with a plain subscriber that
 * parses every message and does nothing else.
 *
 *   npm run bench:fleet   (BENCH_FLEET_GATES, BENCH_FLEET_STEADY_S, BENCH_FLEET_KEEPALIVE_S)
 *
 * This script is the orchestrator, and runs again as each of its children: `worker <init>` (a share
 * of the simulated fleet, fleet/simulated-gates.ts) and `subscriber` (the baseline, fleet/subscriber.ts).
 */
import { type ChildProcess, fork } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import mqtt from 'mqtt'
import { maintainPartitions } from '../cloud/partitions/manager.js'
import { cores, mosquittoPid } from './fleet/cpu.js'
import { silentLinkLoss } from './fleet/link-loss.js'
import { registerFleet } from './fleet/register.js'
import { printReport } from './fleet/report.js'
import {
  GATES,
  gateIdOf,
  INTERVAL_MS,
  KEEPALIVE_S,
  MQTT_URL,
  once,
  REDIS_DB_URL,
  STEADY_S,
  sleep,
  type ToWorker,
  VICTIMS,
  WORKERS,
  type WorkerInit,
} from './fleet/settings.js'
import { worker } from './fleet/simulated-gates.js'
import { subscriber } from './fleet/subscriber.js'
import { fmt, rssBytes, startService } from './harness.js'
import { migratedScratch } from './support/scratch.js'

const OPS_TOKEN = `bench-${randomBytes(8).toString('hex')}`

interface FleetAnswer {
  counts: { online: number; stale: number; offline: number }
  gates: Array<{ gateId: string; state: string; lastSeenAt: number | null }>
  messages: { messages: number; garbage: number }
  unknownGates: { messages: number; recent: Array<{ gateId: string }> }
}

/** The run cannot stand: the monitor did not track every simulated gate. */
class FleetNotTracked extends Error {}

async function main(): Promise<void> {
  const self = fileURLToPath(import.meta.url)
  const prefix = `bf${randomBytes(3).toString('hex')}`
  const brokerPid = mosquittoPid()
  console.log(
    `bench:fleet: ${fmt(GATES)} gates (${WORKERS} simulator processes), a report each per ${INTERVAL_MS / 1000} s, keep-alive ${KEEPALIVE_S} s, steady windows of ${STEADY_S} s`,
  )
  const scratch = await migratedScratch('gc_fleet_bench')
  const sql = scratch.sql
  await maintainPartitions(
    sql,
    { interval: 'day', premake: 1, retentionDays: null, dropDetached: true, table: 'gate_metrics' },
    new Date(),
  )
  const workers: ChildProcess[] = []
  let service: Awaited<ReturnType<typeof startService>> | null = null
  try {
    // the monitor tracks only the gates of the cloud's gates table: the fleet is registered first
    const registeredS = await registerFleet(scratch.url, prefix, GATES)
    console.log(`  ${fmt(GATES)} gates registered (gate-cloud gates add) in ${fmt(registeredS, 1)} s`)

    // the fleet comes up
    const t0 = performance.now()
    const per = Math.ceil(GATES / WORKERS)
    for (let w = 0; w < WORKERS; w++) {
      const init: WorkerInit = {
        prefix,
        from: w * per,
        count: Math.min(per, GATES - w * per),
        victims: w === 0 ? VICTIMS : 0,
      }
      workers.push(fork(self, ['worker', JSON.stringify(init)], { stdio: 'inherit' }))
    }
    await Promise.all(workers.map((w) => once(w, 'ready')))
    console.log(`  ${fmt(GATES)} gates connected in ${fmt((performance.now() - t0) / 1000, 1)} s`)
    await sleep(INTERVAL_MS) // every gate has reported once

    // baseline: the broker and a subscriber that parses each message
    const sub = fork(self, ['subscriber'], { stdio: 'inherit' })
    await once(sub, 'subscribed')
    await sleep(2_000)
    const subBefore = await (async () => {
      sub.send({ type: 'count' })
      return (await once<{ type: 'count'; messages: number }>(sub, 'count')).messages
    })()
    const [subCores, brokerCoresA] = await cores([sub.pid ?? 0, brokerPid], STEADY_S)
    sub.send({ type: 'count' })
    const subAfter = (await once<{ type: 'count'; messages: number }>(sub, 'count')).messages
    const subRss = rssBytes(sub.pid ?? 0)
    sub.kill('SIGTERM')

    // one cloud node: the fleet monitor (state in Redis, history in Postgres, alerts)
    const tService = performance.now()
    service = await startService({
      DATABASE_URL: scratch.url,
      REDIS_URL: REDIS_DB_URL,
      MQTT_URL,
      OPS_TOKEN,
      FLEET_SHARE_GROUP: prefix,
      FLEET_SILENT_AFTER_MS: String(3 * INTERVAL_MS),
      PARTITION_INTERVAL: 'month',
    })
    const auth = { headers: { authorization: `Bearer ${OPS_TOKEN}` } }
    const fleet = async () => (await (await fetch(`${service?.url}/v1/fleet`, auth)).json()) as FleetAnswer
    const ours = (f: FleetAnswer) => f.gates.filter((g) => g.gateId.startsWith(`${prefix}-`))
    let tracked = 0
    for (let i = 0; i < 120 && tracked < GATES; i++) {
      await sleep(1_000)
      tracked = ours(await fleet()).filter((g) => g.state === 'online').length
    }
    const trackedAfterS = (performance.now() - tService) / 1000
    if (tracked < GATES) {
      const u = (await fleet()).unknownGates
      const ofOurs = u.recent.filter((g) => g.gateId.startsWith(`${prefix}-`)).length
      throw new FleetNotTracked(
        `the monitor tracks ${fmt(tracked)} of the ${fmt(GATES)} simulated gates as online ${fmt(trackedAfterS, 0)} s after its start. It ignored ${fmt(u.messages)} messages of gates it does not know (not in its gates table); ${fmt(ofOurs)} of the ${fmt(u.recent.length)} unknown gates it lists are this run's. No figure of this run stands.`,
      )
    }
    await sleep(INTERVAL_MS) // every gate has reported to this node once
    const before = (await fleet()).messages.messages
    const [monCores, brokerCoresB] = await cores([service.pid, brokerPid], STEADY_S)
    const monRss = rssBytes(service.pid)
    const f = await fleet()
    const after = f.messages.messages
    const now = Date.now()
    const fresh = ours(f).filter(
      (g) => g.state === 'online' && g.lastSeenAt !== null && now - g.lastSeenAt < 2 * INTERVAL_MS,
    ).length

    // gates whose network dies silently: offline by the broker's keep-alive and the will
    const loss = await silentLinkLoss(workers[0] as ChildProcess, prefix, service.url, auth)

    printReport({
      baseline: {
        messages: subAfter - subBefore,
        cores: subCores as number,
        rssBytes: subRss,
        brokerCores: brokerCoresA as number,
      },
      monitor: {
        messages: after - before,
        cores: monCores as number,
        rssBytes: monRss,
        brokerCores: brokerCoresB as number,
      },
      fresh,
      trackedAfterS,
      loss,
    })
    if (fresh < GATES)
      throw new FleetNotTracked(
        `the monitor tracked ${fmt(fresh)} of the ${fmt(GATES)} simulated gates (online and heard within 2 intervals) at the end of its steady state`,
      )
  } finally {
    await service?.stop()
    await Promise.all(
      workers.map(async (w) => {
        if (w.exitCode !== null) return
        const stopped = once(w, 'stopped')
        w.send({ type: 'stop' } satisfies ToWorker)
        await Promise.race([stopped, sleep(20_000)])
        w.kill('SIGKILL')
      }),
    )
    await clearFleetState(prefix)
    await sql.end()
    await scratch.drop()
  }
}

/** The fleet's retained statuses, and its state in the bench's Redis database. */
async function clearFleetState(prefix: string): Promise<void> {
  const c = await mqtt.connectAsync(MQTT_URL)
  for (let i = 0; i < GATES; i += 500) {
    await Promise.all(
      Array.from({ length: Math.min(500, GATES - i) }, (_, k) =>
        c.publishAsync(`gates/${gateIdOf(prefix, i + k)}/status`, '', {
          retain: true,
          qos: 1,
        }),
      ),
    )
  }
  await c.endAsync()
  const { Redis } = await import('ioredis')
  const r = new Redis(REDIS_DB_URL)
  await r.flushdb()
  r.disconnect()
}

const role = process.argv[2]
if (role === 'worker') await worker(JSON.parse(process.argv[3] ?? '{}') as WorkerInit)
else if (role === 'subscriber') await subscriber()
else {
  try {
    await main()
  } catch (err) {
    console.error(
      `\nbench:fleet FAILED: ${err instanceof FleetNotTracked ? err.message : (err as Error).stack}`,
    )
    process.exit(1)
  }
}

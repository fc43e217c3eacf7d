/** The agent under load: one run of the whole pipeline fed by a simulated crowd, in this process. */
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import v8 from 'node:v8'
import { pino } from 'pino'
import { GateAgent } from '../../agent/agent.js'
import { PushSource } from '../../agent/ble/push-source.js'
import { Crowd } from '../../agent/ble/sim/crowd.js'
import { demoRosterFor } from '../../agent/ble/sim/demo-roster.js'
import { agentConfigSchema } from '../../agent/config/schema.js'
import { createLogger } from '../../agent/log.js'
import { setMeta } from '../../agent/store/db.js'
import type { AccessPolicy } from '../../shared/access/policy.js'
import type { DecisionEvent } from '../../shared/control.js'
import { LatencyHistogram, procMemory, VirtualClock } from './instruments.js'
import { fmt, mb } from './plain-format.js'

/**
 * A venue of `zones` zones and `rules` rules spread over them; this gate is an entry into the first
 * zone, whose rules match the crowd's categories and tags with an all-day window and a daily limit,
 * so that every arrival goes through the whole rule check.
 */
function benchPolicy(gateId: string, zones: number, rules: number): AccessPolicy {
  return {
    version: 1,
    timeZone: 'Europe/Berlin',
    zones: Array.from({ length: zones }, (_, z) => ({
      id: `z${z}`,
      name: `Zone ${z}`,
      whenFull: 'deny' as const,
    })),
    lanes: [{ gate: gateId, from: null, to: 'z0' }],
    rules: Array.from({ length: rules }, (_, r) => ({
      id: `r${r}`,
      name: `Rule ${r}`,
      zone: `z${r % zones}`,
      categories: [`c${r % 5}`],
      tags: [`t${r % 7}`],
      from: '00:00',
      until: '23:59',
      entriesPerDay: 1000,
      reentry: true,
      antiPassback: false,
    })),
  }
}

const tick = () => new Promise<void>((r) => setImmediate(r))

/** What one run of the agent gives, as the phase's process prints it (JSON). */
export interface RunResult {
  adverts: number
  decisions: number
  seconds: number
  windowRates: number[]
  latency: { p50: number; p99: number; max: number; count: number }
  rss: Array<{ atS: number; rss: number; heap: number }>
  writes: { commits: number; rowsWritten: number }
  decoders: Record<string, number> | null
  counters: unknown
  /** /proc breakdown at the end of the run, the agent still running */
  memory: string
}

/** The benchmark's simulated crowd: `participants` plus revoked, unknown and foreign devices. */
export const benchSim = (participants: number) => ({
  participants,
  revoked: 50,
  unknown: 50,
  foreign: 40,
  seed: 42,
  loop: true,
})

/**
 * The agent fed for `seconds`: flat out (`chunk` adverts between event-loop turns), or at `paced`
 * adverts/s; `participants` is the simulated crowd's size.
 */
export async function runAgent(
  dir: string,
  opts: {
    seconds: number
    paced?: number
    participants: number
    chunk: number
    zones: number
    rules: number
  },
): Promise<RunResult> {
  const config = agentConfigSchema.parse({
    gateId: 'bench-gate',
    dataDir: path.join(dir, opts.paced ? 'paced' : 'flat-out'),
    source: { kind: 'sim', sim: benchSim(opts.participants) },
    log: { level: 'info' },
    // BENCH_MAJOR_GC_EVERY_S: the agent's memory.majorGcEveryS (default 30; 0 = leave it to V8)
    ...(process.env['BENCH_MAJOR_GC_EVERY_S'] !== undefined
      ? { memory: { majorGcEveryS: Number(process.env['BENCH_MAJOR_GC_EVERY_S']) } }
      : {}),
    // BENCH_MQTT_URL: the agent also reports over MQTT (status, metrics every 10 s), as a fleet gate does
    ...(process.env['BENCH_MQTT_URL'] ? { mqtt: { url: process.env['BENCH_MQTT_URL'] } } : {}),
  })
  const clock = new VirtualClock()
  const source = new PushSource()
  // decisions are logged at info as in production, into /dev/null instead of journald
  const log = createLogger('info', pino.destination({ dest: '/dev/null', sync: false }))
  const agent = new GateAgent({
    config,
    clock,
    log,
    makeSource: () => source,
    beforeStart: ({ roster, db }) => {
      // with a policy: every participant has a category and tags, and the rules match on them
      const withPolicy = opts.zones > 0
      roster.importEntries(
        demoRosterFor(config).map((e, i) =>
          withPolicy ? { ...e, category: `c${i % 5}`, tags: [`t${i % 7}`] } : e,
        ),
      )
      if (withPolicy)
        setMeta(db, 'access_policy', JSON.stringify(benchPolicy(config.gateId, opts.zones, opts.rules)))
    },
  })
  await agent.start()
  const pipeline = agent.pipelineForTests
  if (!pipeline) throw new Error('pipeline not started')
  const crowd = new Crowd(config.source.sim, config.decoders)

  // real feed time of recent adverts, by their (virtual) timestamp, to time each decision
  const RING = 1 << 13
  const ringTs = new Float64Array(RING)
  const ringReal = new Float64Array(RING)
  let fed = 0
  const lat = new LatencyHistogram()
  let decisions = 0
  const onDecision = (d: DecisionEvent) => {
    const now = performance.now()
    decisions++
    for (let k = fed - 1, stop = Math.max(0, fed - RING); k >= stop; k--) {
      const j = k & (RING - 1)
      if (ringTs[j] === d.monoMs) {
        lat.record(now - (ringReal[j] as number))
        return
      }
    }
  }
  pipeline.on('decision', onDecision)

  const t0 = performance.now()
  const end = t0 + opts.seconds * 1000
  const windowRates: number[] = []
  const rss: RunResult['rss'] = []
  let windowStart = t0
  let windowAdverts = 0
  let nextSample = t0 + 10_000
  const origin = clock.mono()
  const feedOne = (i: number, rssi: number, vt: number) => {
    clock.set(origin + vt)
    const ts = clock.mono()
    const j = fed & (RING - 1)
    ringTs[j] = ts
    ringReal[j] = performance.now()
    fed++
    source.push(crowd.advert(i, rssi, ts))
  }
  while (performance.now() < end) {
    if (opts.paced) {
      // a steady venue-like rate: CHUNK-sized slices spread over real time
      const due = t0 + (fed / opts.paced) * 1000
      const wait = due - performance.now()
      if (wait > 1) await new Promise((r) => setTimeout(r, wait))
      crowd.advance(Number.POSITIVE_INFINITY, feedOne, Math.max(1, Math.round(opts.paced / 500)))
    } else {
      crowd.advance(Number.POSITIVE_INFINITY, feedOne, opts.chunk)
    }
    windowAdverts += opts.paced ? Math.max(1, Math.round(opts.paced / 500)) : opts.chunk
    await tick() // the group commit runs here, as it would between radio events
    const now = performance.now()
    if (now >= nextSample) {
      windowRates.push(windowAdverts / ((now - windowStart) / 1000))
      windowStart = now
      windowAdverts = 0
      // with node --expose-gc, sample after a full collection: live data, not GC timing
      ;(globalThis as { gc?: () => void }).gc?.()
      const m = process.memoryUsage()
      rss.push({ atS: (now - t0) / 1000, rss: m.rss, heap: m.heapUsed })
      nextSample += 10_000
      process.stderr.write(
        `  ${fmt((now - t0) / 1000)} s: ${fmt(windowRates[windowRates.length - 1] ?? 0)} adverts/s, ${fmt(decisions)} decisions, rss ${fmt(mb(m.rss), 1)} MB (heap ${fmt(mb(m.heapTotal), 1)} total, ${fmt(mb(m.heapUsed), 1)} used, external ${fmt(mb(m.external), 1)})\n`,
      )
    }
  }
  const seconds = (performance.now() - t0) / 1000
  await tick()
  const memory = procMemory()
  // BENCH_HEAP_SNAPSHOT=DIR: what the heap holds at the end of the phase, for Chrome's memory tools
  const snapshotDir = process.env['BENCH_HEAP_SNAPSHOT']
  if (snapshotDir)
    process.stderr.write(
      `  heap snapshot: ${v8.writeHeapSnapshot(path.join(snapshotDir, `${opts.paced ? 'paced' : 'flat-out'}.heapsnapshot`))}\n`,
    )
  const status = agent.status()
  pipeline.off('decision', onDecision)
  const m = process.memoryUsage()
  rss.push({ atS: seconds, rss: m.rss, heap: m.heapUsed })
  await agent.stop()
  return {
    adverts: fed,
    decisions,
    seconds,
    windowRates,
    latency: { p50: lat.p(50), p99: lat.p(99), max: lat.p(100), count: lat.count },
    rss,
    writes: { commits: status.writes?.commits ?? 0, rowsWritten: status.writes?.rowsWritten ?? 0 },
    decoders: status.decoders,
    counters: status.counters,
    memory,
  }
}

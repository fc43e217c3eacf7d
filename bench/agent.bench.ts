/**
 * npm run bench:agent [-- --minutes 10 --participants 5000]
 *
 * The whole agent (decode -> proximity -> dedup -> validate -> durable outbox -> decision event ->
 * log actuator) in one process, fed as fast as it will go by a simulated crowd, with the raw
 * better-sqlite3 insert rate measured in the same run as the baseline for the buffer.
 *
 * The crowd runs in virtual time (the pipeline's clock follows the adverts, so proximity, dedup
 * windows and absence work as at a real gate); throughput and latency are measured in real time.
 * Latency is from the moment an advert is handed to the agent to the moment its decision is emitted,
 * which the agent only does after the check-in is committed with synchronous=FULL.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import v8 from 'node:v8'
import Database from 'better-sqlite3'
import { pino } from 'pino'
import { GateAgent } from '../agent/agent.js'
import { PushSource } from '../agent/ble/push-source.js'
import { Crowd } from '../agent/ble/sim/crowd.js'
import { demoRosterFor } from '../agent/ble/sim/demo-roster.js'
import type { Clock } from '../agent/clock.js'
import { agentConfigSchema } from '../agent/config/schema.js'
import { createLogger } from '../agent/log.js'
import type { DecisionEvent } from '../shared/control.js'

const { values: args } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    participants: { type: 'string', default: '5000' },
    chunk: { type: 'string', default: '256' },
    paced: { type: 'string', default: '2000' },
    /** internal: run one phase in this process and print its result as JSON */
    phase: { type: 'string' },
    dir: { type: 'string' },
  },
})
const MINUTES = Number(args.minutes)
const PARTICIPANTS = Number(args.participants)
const CHUNK = Number(args.chunk)
const PACED_RATE = Number(args.paced)
if (!(MINUTES > 0 && PARTICIPANTS > 0 && CHUNK > 0 && PACED_RATE > 0)) {
  console.error(
    'usage: npm run bench:agent -- [--minutes N] [--participants N] [--chunk N] [--paced adverts/s]',
  )
  process.exit(2)
}

const median = (xs: number[]): number => {
  if (xs.length === 0) return Number.NaN
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2
}
/**
 * 12,345.6 without Intl: toLocaleString() pulls ICU's data pages into the process (+6.5 MB of resident
 * memory on Node 20), and the agent phases print progress from the very process whose memory is measured.
 * (Not harness.ts's fmt: importing harness.ts would load pg into that process too.)
 */
const fmt = (n: number, digits = 0): string => {
  if (!Number.isFinite(n)) return '-'
  const [int = '', frac] = Math.abs(n).toFixed(digits).split('.')
  const grouped = int.replace(/\B(?=(\d{3})+(?!\d))/g, ',')
  return `${n < 0 ? '-' : ''}${grouped}${frac === undefined ? '' : `.${frac}`}`
}
const mb = (b: number) => b / 1024 / 1024
const tick = () => new Promise<void>((r) => setImmediate(r))

/** Latencies in 10 µs bins up to 1 s: constant memory however long the run (the bench must not inflate RSS). */
class LatencyHistogram {
  private readonly bins = new Uint32Array(100_000)
  overflow = 0
  private max = 0
  count = 0
  record(ms: number): void {
    const us = Math.round(ms * 100)
    this.count++
    if (ms > this.max) this.max = ms
    if (us >= this.bins.length) this.overflow++
    else this.bins[us] = (this.bins[us] ?? 0) + 1
  }
  /** the p-th percentile, ms */
  p(p: number): number {
    if (this.count === 0) return Number.NaN
    if (p >= 100) return this.max
    const want = Math.ceil((p / 100) * this.count)
    let seen = 0
    for (let i = 0; i < this.bins.length; i++) {
      seen += this.bins[i] ?? 0
      if (seen >= want) return i / 100
    }
    return this.max
  }
}

/** The pipeline's clock in the benchmark: virtual, moved forward by the crowd. */
class VirtualClock implements Clock {
  private v = 1_000
  private readonly wall0 = Date.now()
  now(): number {
    return this.wall0 + this.v
  }
  mono(): number {
    return this.v
  }
  set(v: number): void {
    if (v > this.v) this.v = v
  }
}

/** Where resident memory is (Linux): anonymous (heap, malloc) versus file-backed (the node binary, libraries). */
function procMemory(): string {
  try {
    const st = readFileSync('/proc/self/status', 'utf8')
    const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(st)?.[1] ?? Number.NaN) / 1024
    const h = v8.getHeapStatistics()
    return `VmRSS ${fmt(kb('VmRSS'), 1)} MB = anon ${fmt(kb('RssAnon'), 1)} + file ${fmt(kb('RssFile'), 1)} + shmem ${fmt(kb('RssShmem'), 1)}; peak ${fmt(kb('VmHWM'), 1)} MB; V8 heap resident ${fmt(mb(h.total_physical_size), 1)} MB (${v8
      .getHeapSpaceStatistics()
      .filter((x) => x.physical_space_size > 512 * 1024)
      .map((x) => `${x.space_name.replace(/_space$/, '')} ${fmt(mb(x.physical_space_size), 1)}`)
      .join(', ')}), V8 malloc ${fmt(mb(h.malloced_memory), 1)} MB`
  } catch {
    return 'n/a'
  }
}

// ---------------------------------------------------------------------------------------------
// Baseline: raw better-sqlite3 inserts on the same kind of file (WAL, synchronous=FULL).
// ---------------------------------------------------------------------------------------------
function rawInsertRate(dir: string, rowsPerTxn: number, seconds: number): number {
  const file = path.join(dir, `raw-${rowsPerTxn}-${Math.random().toString(36).slice(2)}.db`)
  const db = new Database(file)
  db.pragma('journal_mode = WAL')
  db.pragma('synchronous = FULL')
  db.exec(`CREATE TABLE checkins (id TEXT PRIMARY KEY, gate_id TEXT NOT NULL, token TEXT NOT NULL, participant_id TEXT,
    method TEXT NOT NULL, decision TEXT NOT NULL, reason TEXT, rssi INTEGER NOT NULL, wall_ms INTEGER NOT NULL,
    mono_ms REAL NOT NULL, boot_id TEXT NOT NULL, boot_seq INTEGER NOT NULL, roster_version INTEGER NOT NULL,
    state INTEGER NOT NULL DEFAULT 0)`)
  const ins = db.prepare(
    'INSERT INTO checkins (id, gate_id, token, participant_id, method, decision, reason, rssi, wall_ms, mono_ms, boot_id, boot_seq, roster_version) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)',
  )
  let seq = 0
  const batch = db.transaction((n: number) => {
    for (let i = 0; i < n; i++) {
      seq++
      ins.run(
        `0193${seq.toString(16).padStart(28, '0')}`,
        'gate-1',
        (seq * 2654435761).toString(16).slice(0, 8),
        `P-${seq}`,
        'ble',
        'admit',
        null,
        -60,
        Date.now(),
        seq,
        'boot',
        seq,
        1,
      )
    }
  })
  const t0 = performance.now()
  let rows = 0
  while (performance.now() - t0 < seconds * 1000) {
    batch(rowsPerTxn)
    rows += rowsPerTxn
  }
  const rate = rows / ((performance.now() - t0) / 1000)
  db.close()
  return rate
}

// ---------------------------------------------------------------------------------------------
// The agent under load.
// ---------------------------------------------------------------------------------------------
interface RunResult {
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

async function runAgent(dir: string, opts: { seconds: number; paced?: number }): Promise<RunResult> {
  const config = agentConfigSchema.parse({
    gateId: 'bench-gate',
    dataDir: path.join(dir, opts.paced ? 'paced' : 'flat-out'),
    source: {
      kind: 'sim',
      sim: { participants: PARTICIPANTS, revoked: 50, unknown: 50, foreign: 40, seed: 42, loop: true },
    },
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
    beforeStart: ({ roster }) => roster.importEntries(demoRosterFor(config)),
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
      crowd.advance(Number.POSITIVE_INFINITY, feedOne, CHUNK)
    }
    windowAdverts += opts.paced ? Math.max(1, Math.round(opts.paced / 500)) : CHUNK
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

/** One phase in a process of its own, so each memory figure is that phase's alone. */
async function phase(name: string, dir: string): Promise<unknown> {
  switch (name) {
    case 'flat':
      return runAgent(dir, { seconds: MINUTES * 60 })
    case 'paced':
      return runAgent(dir, { seconds: MINUTES * 60, paced: PACED_RATE })
    case 'baseline':
      return {
        single: [0, 1, 2].map(() => rawInsertRate(dir, 1, 2)),
        thousand: [0, 1, 2].map(() => rawInsertRate(dir, 1000, 2)),
      }
    default:
      throw new Error(`unknown phase ${name}`)
  }
}

function runPhase<T>(name: string, dir: string): T {
  const self = new URL(import.meta.url).pathname
  const out = execFileSync(
    process.execPath,
    [
      ...process.execArgv,
      self,
      '--phase',
      name,
      '--dir',
      dir,
      '--minutes',
      String(MINUTES),
      '--participants',
      String(PARTICIPANTS),
      '--chunk',
      String(CHUNK),
      '--paced',
      String(PACED_RATE),
    ],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
      maxBuffer: 16 * 1024 * 1024,
      // as deploy/systemd/gate-agent.service runs the agent (glibc reads it when the process starts)
      env: { ...process.env, MALLOC_ARENA_MAX: process.env['MALLOC_ARENA_MAX'] ?? '2' },
    },
  ).toString()
  const last = out.trim().split('\n').pop() ?? ''
  return JSON.parse(last) as T
}

function main(): void {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'gate-bench-'))
  try {
    console.log(
      `bench:agent  node ${process.version} ${process.execArgv.join(' ')}, ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), ${os.platform()} ${os.release()}`,
    )
    console.log(
      `crowd: ${PARTICIPANTS} participants + 50 revoked + 50 unknown + 40 foreign devices; ${MINUTES} min per agent phase; each phase in its own process\n`,
    )
    process.stderr.write(`flat out for ${MINUTES} min ...\n`)
    const flat = runPhase<RunResult>('flat', dir)
    process.stderr.write(`steady venue load: ${PACED_RATE} adverts/s for ${MINUTES} min ...\n`)
    const paced = runPhase<RunResult>('paced', dir)
    process.stderr.write(
      'baseline: raw better-sqlite3 inserts (WAL, synchronous=FULL), 3 runs of 2 s each ...\n',
    )
    const base = runPhase<{ single: number[]; thousand: number[] }>('baseline', dir)

    const advertsPerS = flat.adverts / flat.seconds
    const rssOf = (r: RunResult) => r.rss[r.rss.length - 1]?.rss ?? 0
    const rows: Array<[string, string, string, string]> = [
      ['measure', 'result', 'target', 'verdict'],
      ['baseline: raw insert, 1 row/txn', `${fmt(median(base.single))} rows/s (median of 3)`, '', ''],
      ['baseline: raw insert, 1000 rows/txn', `${fmt(median(base.thousand))} rows/s (median of 3)`, '', ''],
      [
        'flat out: adverts/s through the pipeline',
        `${fmt(advertsPerS)} (median 10 s window ${fmt(median(flat.windowRates))})`,
        '>= 100,000',
        advertsPerS >= 100_000 ? 'met' : 'MISSED',
      ],
      [
        'flat out: check-ins made durable',
        `${fmt(flat.writes.rowsWritten / flat.seconds)}/s in ${fmt(flat.writes.commits / flat.seconds)} commits/s (${fmt(flat.writes.rowsWritten / Math.max(1, flat.writes.commits), 1)} rows per commit)`,
        '',
        '',
      ],
      [
        '  agent commits/s : raw 1-row txn/s',
        `${fmt(flat.writes.commits / flat.seconds / median(base.single), 2)} (each commit is one fsync, shared by its rows)`,
        '',
        '',
      ],
      [
        'flat out: latency advert -> durable',
        `p50 ${fmt(flat.latency.p50, 2)} ms, p99 ${fmt(flat.latency.p99, 2)} ms, max ${fmt(flat.latency.max, 2)} ms`,
        'p99 <= 5 ms',
        flat.latency.p99 <= 5 ? 'met' : 'MISSED',
      ],
      [
        `flat out: resident memory after ${MINUTES} min`,
        `${fmt(mb(rssOf(flat)), 1)} MB`,
        '<= 80 MB',
        mb(rssOf(flat)) <= 80 ? 'met' : 'MISSED',
      ],
      [
        `venue load (${fmt(PACED_RATE)} adverts/s): latency`,
        `p50 ${fmt(paced.latency.p50, 2)} ms, p99 ${fmt(paced.latency.p99, 2)} ms, max ${fmt(paced.latency.max, 2)} ms (${fmt(paced.latency.count)} decisions)`,
        'p99 <= 5 ms',
        paced.latency.p99 <= 5 ? 'met' : 'MISSED',
      ],
      [
        `venue load: resident memory after ${MINUTES} min`,
        `${fmt(mb(rssOf(paced)), 1)} MB`,
        '<= 80 MB',
        mb(rssOf(paced)) <= 80 ? 'met' : 'MISSED',
      ],
    ]
    const w = [0, 1, 2, 3].map((c) => Math.max(...rows.map((r) => r[c]?.length ?? 0)))
    const line = (r: string[]) => `| ${r.map((x, c) => x.padEnd(w[c] ?? 0)).join(' | ')} |`
    console.log(line(rows[0] as string[]))
    console.log(`|${w.map((n) => '-'.repeat(n + 2)).join('|')}|`)
    for (const r of rows.slice(1)) console.log(line(r))
    for (const [name, r] of [
      ['flat out', flat],
      ['venue load', paced],
    ] as const) {
      console.log(
        `\n${name}: ${fmt(r.adverts)} adverts, ${fmt(r.decisions)} decisions (${fmt(r.latency.count)} timed) in ${fmt(r.seconds, 1)} s`,
      )
      console.log(`  counters ${JSON.stringify(r.counters)}`)
      console.log(`  decoders ${JSON.stringify(r.decoders)}`)
      console.log(`  rss every 10 s (MB): ${r.rss.map((x) => fmt(mb(x.rss), 0)).join(' ')}`)
      console.log(`  at the end: ${r.memory}`)
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

if (args.phase) {
  const result = await phase(args.phase, args.dir ?? mkdtempSync(path.join(os.tmpdir(), 'gate-bench-')))
  process.stdout.write(`${JSON.stringify(result)}\n`)
} else {
  main()
}

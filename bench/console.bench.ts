/**
 * bench:console: the organiser's figures of one event at 10,000,000 check-ins over 20 events, from
 * the rollups the ingest keeps (cloud/attendance/rollups.ts), against the naive queries that scan
 * the check-ins, timed in the same run on the same data.
 *
 * Also a participant search among 500,000 participants (names with accents, ten e-mail domains)
 * and an export of the largest event's check-ins as CSV and as Parquet, streamed (COPY TO),
 * against a plain SELECT of the same rows read whole.
 *
 * BENCH_CHECKINS sets the number of check-ins (10,000,000), BENCH_RUNS the timed runs of each
 * query (15).
 */

import { performance } from 'node:perf_hooks'
import { Writable } from 'node:stream'
import pg from 'pg'
import { arrivalCurve, attendanceSummary, latestDecisions } from '../cloud/attendance/event-figures.js'
import { exportAttendanceCsv } from '../cloud/attendance/export.js'
import { exportAttendanceParquet } from '../cloud/attendance/export-parquet.js'
import { eventReport } from '../cloud/attendance/report.js'
import { rebuildRollups } from '../cloud/attendance/rollups.js'
import { searchParticipants } from '../cloud/participants/queries.js'
import { maintainPartitions } from '../cloud/partitions/manager.js'
import { fmt, printTable } from './harness.js'
import { migratedScratch } from './support/scratch.js'
import { median } from './support/stats.js'

const EVENTS = 20
const GATES_PER_EVENT = 5
const PARTICIPANTS_PER_EVENT = 25_000
const CHECKINS = Number(process.env['BENCH_CHECKINS'] ?? 10_000_000)
const RUNS = Number(process.env['BENCH_RUNS'] ?? 15)
const CHUNK = 1_000_000
/** the check-ins fall in the last 36 hours */
const SPAN_HOURS = 36
const EVENT = 'ev3'
/** the largest event: a fifth of the check-ins (the others share the rest) */
const BIG_EVENT = 'ev0'

const log = (line: string) => process.stderr.write(`${line}\n`)

async function fill(sql: pg.Client): Promise<void> {
  for (const daysAgo of [0, 1, 2])
    await maintainPartitions(
      sql,
      { interval: 'month', premake: 1, retentionDays: null, dropDetached: true },
      new Date(Date.now() - daysAgo * 86_400_000),
    )
  await sql.query(
    `INSERT INTO events (id, name, time_zone)
     SELECT 'ev' || e, 'Event ' || e, 'Europe/Berlin' FROM generate_series(0, $1 - 1) e`,
    [EVENTS],
  )
  await sql.query(
    `INSERT INTO gates (id, event_id, name)
     SELECT 'g' || e || '-' || k, 'ev' || e, 'Door ' || k
       FROM generate_series(0, $1 - 1) e, generate_series(0, $2 - 1) k`,
    [EVENTS, GATES_PER_EVENT],
  )
  await sql.query(
    // names as a roster has them: first names with accents, surnames of three syllables (4,096 of
    // them), ten e-mail domains
    `INSERT INTO participants (id, event_id, token, status, name, email)
     SELECT 'ev' || e || '-p' || i, 'ev' || e, lpad(to_hex(e * 1000000 + i), 16, '0'), 'active',
            f || ' ' || initcap(s), lower(public.unaccent(f)) || '.' || s || i || '@' || d
       FROM generate_series(0, $1 - 1) e, generate_series(0, $2 - 1) i,
            LATERAL (SELECT (ARRAY['José', 'Anna', 'Zoë', 'Mohammed', 'Łukasz', 'Chloé', 'Søren', 'Aoife',
                                   'Jürgen', 'Inés', 'Kenji', 'Fatima', 'Noël', 'Olga', 'Priya', 'Tomás'])[1 + (i * 7 + e) % 16] AS f,
                            (ARRAY['ka', 'lo', 'mi', 'ber', 'sch', 'tan', 'vo', 'ri', 'du', 'ne', 'gar', 'zi', 'pe', 'hol', 'ma', 'un'])[1 + i % 16]
                         || (ARRAY['ka', 'lo', 'mi', 'ber', 'sch', 'tan', 'vo', 'ri', 'du', 'ne', 'gar', 'zi', 'pe', 'hol', 'ma', 'un'])[1 + (i / 16) % 16]
                         || (ARRAY['ka', 'lo', 'mi', 'ber', 'sch', 'tan', 'vo', 'ri', 'du', 'ne', 'gar', 'zi', 'pe', 'hol', 'ma', 'un'])[1 + (i / 256) % 16] AS s,
                            (ARRAY['example.org', 'mail.test', 'post.example', 'uni.example', 'corp.test',
                                   'web.example', 'inbox.test', 'home.example', 'net.test', 'club.example'])[1 + (i / 7) % 10] AS d) x`,
    [EVENTS, PARTICIPANTS_PER_EVENT],
  )
  for (let from = 0; from < CHECKINS; from += CHUNK) {
    const t0 = performance.now()
    // each check-in: an event, one of its doors, one of its participants (a few come often),
    // a time in the span; 85 % admits, the denials spread over four reasons
    await sql.query(
      `INSERT INTO attendance_records (id, ts, gate_id, participant_id, token, method, decision, reason, rssi)
       SELECT gen_random_uuid(), now() - random() * make_interval(hours => $3),
              'g' || e || '-' || (n % $4), 'ev' || e || '-p' || p, lpad(to_hex(e * 1000000 + p), 16, '0'),
              'ble', CASE WHEN r < 0.85 THEN 'admit' ELSE 'deny' END,
              CASE WHEN r < 0.85 THEN NULL
                   ELSE (ARRAY['already_checked_in', 'revoked', 'zone_full', 'outside_time_window'])[1 + (n % 4)] END,
              -60
         FROM (SELECT n, CASE WHEN n % 5 = 0 THEN 0 ELSE 1 + n % ($5 - 1) END AS e,
                      floor(power(random(), 2) * $6)::int AS p, random() AS r
                 FROM generate_series($1::bigint, $2::bigint) n) s`,
      [
        from,
        Math.min(from + CHUNK, CHECKINS) - 1,
        SPAN_HOURS,
        GATES_PER_EVENT,
        EVENTS,
        PARTICIPANTS_PER_EVENT,
      ],
    )
    log(
      `  ${fmt(Math.min(from + CHUNK, CHECKINS))} check-ins stored (${fmt((performance.now() - t0) / 1000, 1)} s)`,
    )
  }
  log('rollups, as the ingest keeps them ...')
  await rebuildRollups(sql)
  await sql.query('VACUUM ANALYZE')
}

/** The naive summary: everything from the check-ins, as a page without rollups would ask. */
const NAIVE_SUMMARY = `
  WITH gates AS (SELECT id FROM gates WHERE event_id = $1),
       recs AS (SELECT * FROM attendance_records WHERE gate_id IN (SELECT id FROM gates))
  SELECT (SELECT count(*) FROM participants WHERE event_id = $1 AND status = 'active') AS expected,
         (SELECT count(DISTINCT participant_id) FROM recs WHERE decision = 'admit') AS arrived,
         (SELECT json_agg(x) FROM (SELECT date_trunc('minute', ts) AS m, decision, count(*) AS n
                                     FROM recs WHERE ts >= now() - interval '1 hour' GROUP BY 1, 2) x) AS per_minute,
         (SELECT json_object_agg(reason, n) FROM (SELECT reason, count(*) AS n FROM recs
                                                  WHERE decision = 'deny' AND ts >= now() - interval '1 hour'
                                                  GROUP BY reason) y) AS denials`
const NAIVE_CURVE = `
  SELECT to_char(date_trunc('hour', first_at AT TIME ZONE 'Europe/Berlin'), 'YYYY-MM-DD"T"HH24:00') AS hour, count(*)
    FROM (SELECT participant_id, min(ts) AS first_at FROM attendance_records
           WHERE gate_id IN (SELECT id FROM gates WHERE event_id = $1) AND decision = 'admit'
           GROUP BY participant_id) f
   GROUP BY 1 ORDER BY 1`

async function time(fn: () => Promise<unknown>): Promise<{ median: number; worst: number }> {
  await fn() // warm: the first run reads from disk
  const ms: number[] = []
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now()
    await fn()
    ms.push(performance.now() - t0)
  }
  return { median: median(ms), worst: Math.max(...ms) }
}

/** Median of three runs after a first, for the long exports. */
async function timeFew(fn: () => Promise<unknown>): Promise<number> {
  await fn()
  const ms: number[] = []
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now()
    await fn()
    ms.push(performance.now() - t0)
  }
  return median(ms)
}

async function main(): Promise<void> {
  log(`bench:console  node ${process.version}; ${fmt(CHECKINS)} check-ins over ${EVENTS} events`)
  const { url, sql, drop } = await migratedScratch('gc_console')
  const pool = new pg.Pool({ connectionString: url, max: 4 })
  try {
    const t0 = performance.now()
    await fill(sql)
    log(`data ready in ${fmt((performance.now() - t0) / 1000)} s; timing ${RUNS} runs of each query ...`)
    const now = Date.now()
    const summary = await time(() => attendanceSummary(pool, EVENT, now))
    const naiveSummary = await time(() => pool.query(NAIVE_SUMMARY, [EVENT]))
    const curve = await time(() => arrivalCurve(pool, EVENT))
    const naiveCurve = await time(() => pool.query(NAIVE_CURVE, [EVENT]))
    const feed = await time(() => latestDecisions(pool, EVENT, 25, now))
    const report = await time(() => eventReport(pool, EVENT))
    // what an organiser types: part of a surname, a first name without its accent and the start of
    // a surname, an e-mail domain; in one event
    const searches: Record<string, { median: number; worst: number }> = {}
    for (const q of ['bertan', 'jurgen berlo', 'inbox.test'])
      searches[q] = await time(() => searchParticipants(pool, q, 20, EVENT))
    const found = (await searchParticipants(pool, 'jurgen berlo', 20, EVENT)).length
    // the largest event's check-ins: streamed as CSV, and the baseline, the same rows read whole
    const exportRows = Number(
      (
        await sql.query(
          'SELECT count(*) AS n FROM attendance_records a JOIN gates g ON g.id = a.gate_id WHERE g.event_id = $1',
          [BIG_EVENT],
        )
      ).rows[0].n,
    )
    const sink = () =>
      new Writable({
        write(_chunk, _enc, done) {
          done()
        },
      })
    const exported = await timeFew(() => exportAttendanceCsv(pool, BIG_EVENT, sink()))
    const parquet = await timeFew(() => exportAttendanceParquet(pool, BIG_EVENT, sink()))
    const whole = await timeFew(() =>
      pool.query(
        `SELECT a.*, p.name FROM attendance_records a JOIN gates g ON g.id = a.gate_id
           LEFT JOIN participants p ON p.id = a.participant_id WHERE g.event_id = $1`,
        [BIG_EVENT],
      ),
    )
    const arrived = (await attendanceSummary(pool, EVENT, now)).arrived
    const line = (name: string, r: { median: number; worst: number }, target: string, base?: number) => [
      name,
      `${fmt(r.median, 1)} ms (worst ${fmt(r.worst, 1)})`,
      base === undefined ? '' : `${fmt(base / r.median, 0)}x faster`,
      target,
      target === '' ? '' : r.median < Number(target.replace(/[^0-9]/g, '')) ? 'met' : 'MISSED',
    ]
    console.log(
      `\nbench:console: ${fmt(CHECKINS)} check-ins, ${EVENTS} events of ${fmt(PARTICIPANTS_PER_EVENT)} participants; event ${EVENT}: ${fmt(arrived)} arrived; median of ${RUNS} runs\n`,
    )
    printTable([
      ['query', 'median', 'against the naive scan', 'target', 'verdict'],
      line('attendance summary (rollups)', summary, '< 100 ms', naiveSummary.median),
      line('  baseline: the same from the check-ins', naiveSummary, ''),
      line('arrival curve by hour (rollups)', curve, '< 200 ms', naiveCurve.median),
      line('  baseline: the same from the check-ins', naiveCurve, ''),
      line('latest 25 decisions', feed, ''),
      line("event report (with each zone's peak)", report, ''),
      ...Object.entries(searches).map(([q, r]) => line(`participant search "${q}"`, r, '< 50 ms')),
    ])
    const rate = (ms: number) => exportRows / (ms / 1000)
    console.log(
      `\nexport of event ${BIG_EVENT}: ${fmt(exportRows)} check-ins as CSV and as Parquet (median of 3); "jurgen berlo" found ${found}\n`,
    )
    printTable([
      ['export', 'median', 'rows/s', 'target', 'verdict'],
      [
        'streamed CSV (COPY TO)',
        `${fmt(exported, 0)} ms`,
        fmt(rate(exported)),
        '>= 200,000 rows/s',
        rate(exported) >= 200_000 ? 'met' : 'MISSED',
      ],
      [
        'streamed Parquet (COPY TO, row groups of 10,000)',
        `${fmt(parquet, 0)} ms`,
        fmt(rate(parquet)),
        '>= 200,000 rows/s',
        rate(parquet) >= 200_000 ? 'met' : 'MISSED',
      ],
      ['  baseline: SELECT read whole', `${fmt(whole, 0)} ms`, fmt(rate(whole)), '', ''],
    ])
  } finally {
    await pool.end()
    await sql.end()
    await drop()
  }
}

await main()

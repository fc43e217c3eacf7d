/** The ingest benchmark's table: every phase's figures against their targets. */
import os from 'node:os'
import type pg from 'pg'
import { fmt, printTable } from '../harness.js'
import { percentile as pct } from '../support/stats.js'
import type { Drain } from './backlog.js'
import type { Baselines } from './baselines.js'
import type { EndToEnd } from './end-to-end.js'

/** The incidents the cloud raised over the whole run. */
export interface Incidents {
  /** double entries on the benchmark's gates */
  doubleEntries: number
  /** raised by the event and id checks (none expected) */
  flagged: number
}

/** The incidents, asked of the database once every phase is done. */
export async function incidentsOf(sql: pg.Client): Promise<Incidents> {
  const incidents = await sql.query(
    `SELECT count(*)::int AS n FROM incidents WHERE kind = 'double_entry' AND gate_id LIKE 'bench-%'`,
  )
  // every participant is on the roster and every id is new: the event and id checks refuse and
  // flag nothing here (failed batches would show a refusal too)
  const flagged = await sql.query(
    `SELECT count(*)::int AS n FROM incidents WHERE kind NOT IN ('double_entry', 'clock_skew', 'late_upload')`,
  )
  return { doubleEntries: incidents.rows[0].n, flagged: flagged.rows[0].n }
}

/** Prints the table; `batch` and `backlog` are the run's options. */
export function printReport(
  r: { e2e: EndToEnd; base: Baselines; drain: Drain; incidents: Incidents },
  o: { batch: number; backlog: number },
): void {
  const { e2e, base, drain } = r
  const { decisionLat, diskLat } = drain
  const table: Array<[string, string, string, string]> = [
    ['measure', 'result', 'target', 'verdict'],
    ['baseline: plain COPY (ceiling)', `${fmt(base.copyRate)} records/s (${fmt(base.copied)} rows)`, '', ''],
    [
      'baseline: one INSERT per record (naive)',
      `${fmt(base.insertRate)} records/s (${fmt(base.inserted)} rows)`,
      '',
      '',
    ],
    [
      'end to end: records stored',
      `${fmt(e2e.rate)} records/s (${fmt(e2e.stored)} in ${fmt(e2e.seconds, 1)} s, ${e2e.failed} failed batches${e2e.exhausted ? `, ${e2e.exhausted} gates ran out of prepared batches` : ''})`,
      '>= 50,000',
      e2e.rate >= 50_000 ? 'met' : 'MISSED',
    ],
    [
      '  end to end : COPY',
      `${fmt(e2e.rate / base.copyRate, 2)}`,
      '>= 0.5',
      e2e.rate / base.copyRate >= 0.5 ? 'met' : 'MISSED',
    ],
    [
      '  CPU per 1,000 records stored',
      `service ${e2e.cpu.service}, Postgres ${e2e.cpu.pg} (its sessions for this run ${e2e.cpu.own}); ${e2e.cpu.idle} of ${os.cpus().length} CPUs left idle`,
      '',
      '',
    ],
    ['  end to end : one INSERT per record', `${fmt(e2e.rate / base.insertRate, 1)}x`, '', ''],
    [
      '  double entries flagged (1 admit in 1,000 repeats one)',
      `${fmt(r.incidents.doubleEntries)} incidents`,
      '',
      '',
    ],
    [
      '  records refused or flagged by the event and id checks',
      `${fmt(r.incidents.flagged)} incidents (none expected)`,
      '',
      '',
    ],
    [
      'batch latency',
      `p50 ${fmt(pct(e2e.latencies, 50), 1)} ms, p99 ${fmt(pct(e2e.latencies, 99), 1)} ms (${fmt(e2e.latencies.length)} batches of ${o.batch})`,
      '',
      '',
    ],
    [
      `backlog drain: ${fmt(o.backlog)} check-ins`,
      `${fmt(drain.seconds, 1)} s (${fmt(drain.inPostgres)} in Postgres; went down to one batch at a time ${fmt(drain.drainYields)} times for slow decision commits)`,
      '< 60 s',
      drain.seconds < 60 && drain.inPostgres === o.backlog + decisionLat.length ? 'met' : 'MISSED',
    ],
    [
      '  decision latency during the drain',
      `p50 ${fmt(pct(decisionLat, 50), 2)} ms, p99 ${fmt(pct(decisionLat, 99), 2)} ms, max ${fmt(pct(decisionLat, 100), 1)} ms (${fmt(decisionLat.length)} decisions; event loop ${drain.scheduling})`,
      'p99 <= 5 ms',
      pct(decisionLat, 99) <= 5 ? 'met' : 'MISSED',
    ],
    [
      '    of which: durable commit (fsync; Postgres writes to the same disk)',
      `p50 ${fmt(drain.commitP50, 2)} ms, p99 ${fmt(drain.commitP99, 2)} ms`,
      '',
      '',
    ],
    [
      '    baseline: 4 KB write + fdatasync on the same disk every 20 ms (another process, same priority)',
      `p50 ${fmt(pct(diskLat, 50), 2)} ms, p99 ${fmt(pct(diskLat, 99), 2)} ms (${fmt(diskLat.length)} syncs)`,
      '',
      '',
    ],
    [
      '    agent event-loop delay during the drain',
      `p50 ${fmt(drain.loopP50, 2)} ms, p99 ${fmt(drain.loopP99, 2)} ms`,
      '',
      '',
    ],
  ]
  printTable(table)
}

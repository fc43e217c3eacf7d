/**
 * The agent benchmark's report: the table of measures against their targets, then each run's
 * details. Printed by the parent process only, so harness.ts (and pg with it) may load here.
 */
import { printTable } from '../harness.js'
import { median } from '../support/stats.js'
import type { CrowdAlone } from './crowd-alone.js'
import type { AgentBenchOptions } from './options.js'
import type { BaselineResult } from './phase.js'
import { fmt, mb } from './plain-format.js'
import type { RunResult } from './run-agent.js'

/**
 * The resident memory a gate may use, MB, by the size of its event: 80 MB up to 10,000
 * participants; 128 MB, half the systemd unit's hard cap (MemoryMax=256M), up to 100,000, where
 * the gate holds each participant it admitted within the re-entry window and each one's zone
 * history, offline. The benchmark's simulated crowd runs in the same process and counts in it.
 */
export function memoryTargetMb(participants: number): number {
  return participants <= 10_000 ? 80 : 128
}

/** Prints the table and the details of the flat-out and venue-load runs. */
export function printReport(
  o: AgentBenchOptions,
  flat: RunResult,
  paced: RunResult,
  base: BaselineResult,
  crowd: CrowdAlone,
): void {
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
      `flat out: resident memory after ${o.minutes} min`,
      `${fmt(mb(rssOf(flat)), 1)} MB`,
      `<= ${memoryTargetMb(o.participants)} MB`,
      mb(rssOf(flat)) <= memoryTargetMb(o.participants) ? 'met' : 'MISSED',
    ],
    [
      "  of which the benchmark's simulated crowd",
      `${fmt(mb(crowd.live), 1)} MB live, ${fmt(crowd.devices)} devices (alone, a process of its own gains ${fmt(mb(crowd.rss), 1)} MB)`,
      '',
      '',
    ],
    [
      `venue load (${fmt(o.paced)} adverts/s): latency`,
      `p50 ${fmt(paced.latency.p50, 2)} ms, p99 ${fmt(paced.latency.p99, 2)} ms, max ${fmt(paced.latency.max, 2)} ms (${fmt(paced.latency.count)} decisions)`,
      'p99 <= 5 ms',
      paced.latency.p99 <= 5 ? 'met' : 'MISSED',
    ],
    [
      `venue load: resident memory after ${o.minutes} min`,
      `${fmt(mb(rssOf(paced)), 1)} MB`,
      `<= ${memoryTargetMb(o.participants)} MB`,
      mb(rssOf(paced)) <= memoryTargetMb(o.participants) ? 'met' : 'MISSED',
    ],
  ]
  printTable(rows)
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
}

/** The cache benchmark's two tables: the caches compared, then the routes over HTTP. */
import type autocannon from 'autocannon'
import { fmt, printTable } from '../harness.js'
import { percentile } from '../support/stats.js'
import type { RunResult } from './drive.js'
import type { HttpRounds } from './http.js'

/** the median of the rounds (the upper middle one of an even count) */
const median = (xs: number[]) => percentile(xs, 50)

/** Prints both tables from the rounds of each cache and the HTTP rounds. */
export function printReport(ours: RunResult[], bento: RunResult[], { triv, look }: HttpRounds): void {
  const mid = (xs: autocannon.Result[]) =>
    [...xs].sort((a, b) => a.requests.average - b.requests.average)[
      Math.floor(xs.length / 2)
    ] as autocannon.Result
  const trivial = mid(triv)
  const lookup = mid(look)
  const lookupP99 = median(look.map((x) => x.latency.p99))

  const o = {
    ops: median(ours.map((x) => x.opsPerS)),
    hit: median(ours.map((x) => x.hitRate)),
    p50: median(ours.map((x) => x.p50Ms)),
    p99: median(ours.map((x) => x.p99Ms)),
  }
  const b = {
    ops: median(bento.map((x) => x.opsPerS)),
    hit: median(bento.map((x) => x.hitRate)),
    p50: median(bento.map((x) => x.p50Ms)),
    p99: median(bento.map((x) => x.p99Ms)),
  }
  const rows: string[][] = [
    ['measure', 'ours', 'BentoCache 1.6.1', 'target', 'verdict'],
    [
      'look-ups/s (median of rounds)',
      `${fmt(o.ops)} (${ours.map((x) => fmt(x.opsPerS)).join(', ')})`,
      `${fmt(b.ops)} (${bento.map((x) => fmt(x.opsPerS)).join(', ')})`,
      '>= peer',
      o.ops >= b.ops ? 'met' : 'MISSED',
    ],
    [
      'hit rate (L1 or L2)',
      `${fmt(o.hit * 100, 2)} %`,
      `${fmt(b.hit * 100, 2)} %`,
      '>= peer',
      o.hit >= b.hit - 0.0005 ? 'met' : 'MISSED',
    ],
    ['latency p50', `${fmt(o.p50, 3)} ms`, `${fmt(b.p50, 3)} ms`, '', ''],
    ['latency p99', `${fmt(o.p99, 3)} ms`, `${fmt(b.p99, 3)} ms`, '', ''],
  ]
  const http: string[][] = [
    ['HTTP (autocannon, 32 connections, median of rounds)', 'requests/s', 'p50', 'p99', 'target', 'verdict'],
    [
      'trivial route GET /healthz',
      `${fmt(trivial.requests.average)} (${triv.map((x) => fmt(x.requests.average)).join(', ')})`,
      `${fmt(trivial.latency.p50, 1)} ms`,
      `${fmt(trivial.latency.p99, 1)} ms`,
      '',
      '',
    ],
    [
      'token look-up GET /v1/query/tokens/:token (Zipf)',
      `${fmt(lookup.requests.average)} (${look.map((x) => fmt(x.requests.average)).join(', ')})`,
      `${fmt(lookup.latency.p50, 1)} ms`,
      `${fmt(lookupP99, 1)} ms (${look.map((x) => fmt(x.latency.p99)).join(', ')})`,
      'p99 < 10 ms',
      lookupP99 < 10 ? 'met' : 'MISSED',
    ],
    [
      'look-up : trivial',
      fmt(lookup.requests.average / trivial.requests.average, 2),
      '',
      '',
      '>= 0.6',
      lookup.requests.average / trivial.requests.average >= 0.6 ? 'met' : 'MISSED',
    ],
    [
      'non-2xx answers and errors (look-up runs)',
      fmt(look.reduce((a, x) => a + x.non2xx + x.errors, 0)),
      '',
      '',
      '0',
      look.every((x) => x.non2xx === 0 && x.errors === 0) ? 'met' : 'MISSED',
    ],
  ]
  for (const t of [rows, http]) {
    printTable(t)
    console.log('')
  }
}

import { Counter, type Registry } from 'prom-client'
import type { GateMetrics } from '../../shared/fleet.js'
import type { ThrottledLog } from '../../shared/throttled-log.js'

/** One metrics message for the history table. */
export interface MetricsRow {
  gateId: string
  ts: number
  session: number
  seq: number
  metrics: GateMetrics
}

/** Rows kept while the database is away; beyond this the oldest are dropped (counted). */
export const MAX_PENDING_HISTORY_ROWS = 50_000

/**
 * An error the database raised for what a row holds, not for being away: SQLSTATE class 22 (data
 * exception: a number out of range, a timestamp beyond the calendar, a \u0000 in a JSON string),
 * 23 (integrity constraint) and 54 (program limit: a value too large). Written again, such a row
 * fails again, for ever.
 */
function refusedForItsData(err: unknown): boolean {
  const code = (err as { code?: unknown }).code
  return typeof code === 'string' && /^(22|23|54)/.test(code)
}

/** What writing a batch came to: rows written, rows refused for their data, rows not tried (an outage). */
interface Outcome {
  written: number
  refused: number
  unwritten: MetricsRow[]
}

/**
 * The metrics history on its way to Postgres, written in batches (about once a second). A batch
 * the database refuses for the data of some row is halved until the refused rows stand alone:
 * they are dropped (counted, logged once a minute at most) and the rest written, so that one bad
 * row cannot hold the history of every gate at the head of the queue. A batch not written for any
 * other reason (the database away) is kept for the next flush, bounded at
 * MAX_PENDING_HISTORY_ROWS, the oldest dropped first (counted).
 */
export class HistoryQueue {
  private pending: MetricsRow[] = []
  private writing = false
  private readonly rejected: Counter

  constructor(
    private readonly write: (rows: MetricsRow[]) => Promise<void>,
    private readonly options: {
      stats: { historyRows: number; historyDropped: number; historyRejected: number }
      registry: Registry
      warn: ThrottledLog
      max?: number
    },
  ) {
    this.rejected = new Counter({
      name: 'fleet_history_rows_rejected_total',
      help: 'Metrics history rows the database refused for their data, dropped so that the others are written',
      registers: [options.registry],
    })
  }

  push(row: MetricsRow): void {
    this.pending.push(row)
  }

  /** Write what is waiting; a flush already running is not doubled. */
  async flush(): Promise<void> {
    if (this.writing || this.pending.length === 0) return
    this.writing = true
    const batch = this.pending
    this.pending = []
    try {
      const out = await this.writeSome(batch)
      this.options.stats.historyRows += out.written
      if (out.unwritten.length > 0) {
        this.pending = out.unwritten.concat(this.pending)
        const excess = this.pending.length - (this.options.max ?? MAX_PENDING_HISTORY_ROWS)
        if (excess > 0) {
          this.pending.splice(0, excess)
          this.options.stats.historyDropped += excess
        }
      }
    } finally {
      this.writing = false
    }
  }

  private async writeSome(rows: MetricsRow[]): Promise<Outcome> {
    try {
      await this.write(rows)
      return { written: rows.length, refused: 0, unwritten: [] }
    } catch (err) {
      if (!refusedForItsData(err)) {
        this.options.warn.warn(
          'history-unwritten',
          '',
          { err: (err as Error).message, rows: rows.length },
          'metrics history not written; kept for a retry',
        )
        return { written: 0, refused: 0, unwritten: rows }
      }
      if (rows.length === 1) {
        const row = rows[0] as MetricsRow
        this.options.stats.historyRejected++
        this.rejected.inc()
        this.options.warn.warn(
          'history-refused',
          row.gateId,
          { gateId: row.gateId, session: row.session, seq: row.seq, err: (err as Error).message },
          'metrics row refused by the database; dropped',
        )
        return { written: 0, refused: 1, unwritten: [] }
      }
      // halved until the refused rows stand alone: a few queries per bad row, not one per row
      const half = Math.ceil(rows.length / 2)
      const first = await this.writeSome(rows.slice(0, half))
      if (first.unwritten.length > 0) return { ...first, unwritten: first.unwritten.concat(rows.slice(half)) }
      const second = await this.writeSome(rows.slice(half))
      return {
        written: first.written + second.written,
        refused: first.refused + second.refused,
        unwritten: second.unwritten,
      }
    }
  }
}

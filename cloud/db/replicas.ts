import pg from 'pg'
import type { Logger } from 'pino'
import type { CloudConfig } from '../config.js'
import { isDbUnavailable } from './errors.js'

/** The read router of READ_REPLICA_URLS, or null without replicas (not started). */
export function readRouterFor(c: CloudConfig, primary: pg.Pool, log: Logger): ReadRouter | null {
  if (!c.readReplicaUrls) return null
  return new ReadRouter(
    primary,
    c.readReplicaUrls.split(',').map((u) => u.trim()),
    {
      maxLagMs: c.replicaMaxLagMs,
      checkIntervalMs: 1_000,
      readYourWritesMs: c.readYourWritesMs,
      poolMax: c.poolMax,
      statementTimeoutMs: c.statementTimeoutMs,
      log: log.child({ component: 'replicas' }),
    },
  )
}

/** How a read router chooses and measures its replicas. */
export interface ReadRouterOptions {
  /** a replica further behind than this is not read from, ms */
  maxLagMs: number
  /** how often each replica's lag is measured, ms */
  checkIntervalMs: number
  /** reads about a gate within this time of its last write on this node go to the primary, ms */
  readYourWritesMs: number
  poolMax: number
  statementTimeoutMs: number
  log: Logger
  now?: () => number
}

interface Replica {
  url: string
  pool: pg.Pool
  /** measured lag, ms; null: not measured yet or unreachable */
  lagMs: number | null
  checkedAt: number
  reads: number
  errors: number
}

/** Where a read went, for tests and /v1/perf. */
export type ReadTarget = 'primary' | `replica:${number}`

/**
 * Analytics reads across Postgres streaming replicas (READ_REPLICA_URLS): a replica is eligible
 * while its measured replay lag is within `maxLagMs` and its last measurement is recent; among the
 * eligible, the one with the fewest connections in use takes the read. Reads about a gate right
 * after that gate wrote through this node stay on the primary (read-your-writes), and a read that
 * fails on a replica for a connection reason is retried on the primary.
 */
export class ReadRouter {
  private readonly replicas: Replica[]
  private readonly lastWrite = new Map<string, number>()
  private timer: NodeJS.Timeout | null = null
  private readonly now: () => number
  primaryReads = 0

  constructor(
    private readonly primary: pg.Pool,
    urls: readonly string[],
    private readonly o: ReadRouterOptions,
  ) {
    this.now = o.now ?? Date.now
    this.replicas = urls.map((url) => {
      const pool = new pg.Pool({
        connectionString: url,
        max: o.poolMax,
        connectionTimeoutMillis: 2_000,
        idleTimeoutMillis: 30_000,
        statement_timeout: o.statementTimeoutMs,
        query_timeout: o.statementTimeoutMs + 1_000,
        keepAlive: true,
        application_name: 'gate-cloud-read',
      })
      pool.on('error', (err) => o.log.warn({ err: err.message }, 'idle replica connection lost'))
      return { url, pool, lagMs: null, checkedAt: 0, reads: 0, errors: 0 }
    })
  }

  async start(): Promise<void> {
    if (this.replicas.length === 0) return
    await this.checkLag()
    this.timer = setInterval(() => void this.checkLag(), this.o.checkIntervalMs)
    this.timer.unref()
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer)
    this.timer = null
    await Promise.all(this.replicas.map((r) => r.pool.end().catch(() => {})))
  }

  /** A gate's batch was stored through this node: its reads stay on the primary for a while. */
  noteWrite(gateId: string): void {
    this.lastWrite.set(gateId, this.now())
    if (this.lastWrite.size > 10_000) {
      const cutoff = this.now() - this.o.readYourWritesMs
      for (const [g, t] of this.lastWrite) if (t < cutoff) this.lastWrite.delete(g)
    }
  }

  /** Run a read-only query where it belongs. */
  async query<R extends pg.QueryResultRow>(
    text: string,
    values: unknown[],
    about: { gateId?: string } = {},
  ): Promise<pg.QueryResult<R> & { target: ReadTarget }> {
    const i = this.choose(about)
    if (i >= 0) {
      const r = this.replicas[i] as Replica
      try {
        r.reads++
        return Object.assign(await r.pool.query<R>(text, values), { target: `replica:${i}` as ReadTarget })
      } catch (err) {
        if (!isDbUnavailable(err)) throw err
        r.errors++
        r.lagMs = null // not eligible until the next successful measurement
        this.o.log.warn(
          { err: (err as Error).message, replica: i },
          'replica read failed; reading from the primary',
        )
      }
    }
    this.primaryReads++
    return Object.assign(await this.primary.query<R>(text, values), { target: 'primary' as ReadTarget })
  }

  status(): Array<{
    replica: number
    lagMs: number | null
    eligible: boolean
    reads: number
    errors: number
  }> {
    return this.replicas.map((r, i) => ({
      replica: i,
      lagMs: r.lagMs,
      eligible: this.eligible(r),
      reads: r.reads,
      errors: r.errors,
    }))
  }

  private eligible(r: Replica): boolean {
    return (
      r.lagMs !== null && r.lagMs <= this.o.maxLagMs && this.now() - r.checkedAt <= 3 * this.o.checkIntervalMs
    )
  }

  private choose(about: { gateId?: string }): number {
    if (this.replicas.length === 0) return -1
    if (about.gateId !== undefined) {
      const w = this.lastWrite.get(about.gateId)
      if (w !== undefined && this.now() - w < this.o.readYourWritesMs) return -1
    }
    let best = -1
    let bestInUse = Number.POSITIVE_INFINITY
    this.replicas.forEach((r, i) => {
      if (!this.eligible(r)) return
      const inUse = r.pool.totalCount - r.pool.idleCount + r.pool.waitingCount
      if (inUse < bestInUse) {
        best = i
        bestInUse = inUse
      }
    })
    return best
  }

  private async checkLag(): Promise<void> {
    // where the primary's WAL is now: a replica that has replayed up to it has no lag, even when the
    // primary has been idle for hours; one that has not lags by the age of its last replayed
    // transaction. Compared with the primary, not with what the replica itself received: a replica
    // cut off from its primary has replayed all it received, and would look current for ever.
    let primaryLsn: string | null = null
    try {
      primaryLsn =
        (await this.primary.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn')).rows[0]
          ?.lsn ?? null
    } catch (err) {
      this.o.log.warn({ err: (err as Error).message }, 'primary WAL position unknown; replicas not read from')
    }
    await Promise.all(
      this.replicas.map(async (r, i) => {
        if (primaryLsn === null) {
          r.lagMs = null
          return
        }
        try {
          const q = await r.pool.query<{ lag_ms: number | null; recovery: boolean }>(
            `SELECT pg_is_in_recovery() AS recovery,
                    CASE WHEN pg_last_wal_replay_lsn() >= $1::pg_lsn THEN 0
                         ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp()) * 1000 END AS lag_ms`,
            [primaryLsn],
          )
          const row = q.rows[0]
          if (!row?.recovery) {
            r.lagMs = null
            this.o.log.warn(
              { replica: i },
              'READ_REPLICA_URLS names a server that is not a replica; not read from',
            )
          } else {
            // behind and nothing replayed yet to date it: unknown, so not read from
            r.lagMs = row.lag_ms === null ? null : Math.max(0, Number(row.lag_ms))
          }
          r.checkedAt = this.now()
        } catch (err) {
          r.lagMs = null
          this.o.log.warn({ err: (err as Error).message, replica: i }, 'replica lag check failed')
        }
      }),
    )
  }
}

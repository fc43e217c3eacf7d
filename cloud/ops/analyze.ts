import type pg from 'pg'

/** One critical query of the seed, explained on the live data. */
export interface QueryAnalysis {
  name: string
  sql: string
  params: unknown[]
  executionMs: number
  planningMs: number
  indexes: string[]
  seqScans: string[]
  partitionsScanned: number
  partitionsTotal: number
  sharedHitBlocks: number
  sharedReadBlocks: number
  suggestions: string[]
}

export interface AnalyzeReport {
  queries: QueryAnalysis[]
  general: string[]
  topStatements: Array<{ query: string; calls: number; meanMs: number; totalMs: number }> | null
}

interface PlanNode {
  'Node Type': string
  'Relation Name'?: string
  'Index Name'?: string
  'Shared Hit Blocks'?: number
  'Shared Read Blocks'?: number
  'Subplans Removed'?: number
  Plans?: PlanNode[]
}

function walk(n: PlanNode, visit: (n: PlanNode) => void): void {
  visit(n)
  for (const c of n.Plans ?? []) walk(c, visit)
}

const SLOW_MS = 100

/** The four critical queries of the seed, with parameters taken from the live data. */
async function criticalQueries(
  db: pg.ClientBase,
): Promise<Array<{ name: string; sql: string; params: unknown[]; timeBounded: boolean }>> {
  const pick = async (q: string, fallback: unknown) => (await db.query(q)).rows[0]?.v ?? fallback
  const participant = await pick(
    `SELECT participant_id AS v FROM attendance_records WHERE participant_id IS NOT NULL ORDER BY ts DESC LIMIT 1`,
    'P-1',
  )
  const gate = await pick(`SELECT gate_id AS v FROM attendance_records ORDER BY ts DESC LIMIT 1`, 'gate-1')
  const token = await pick(`SELECT token AS v FROM participants WHERE status = 'active' LIMIT 1`, '00000000')
  const since = new Date(Date.now() - 86_400_000)
  return [
    {
      name: "1. a participant's check-ins, newest first",
      sql: 'SELECT id, ts, gate_id, decision FROM attendance_records WHERE participant_id = $1 ORDER BY ts DESC LIMIT 50',
      params: [participant],
      timeBounded: false,
    },
    {
      name: "2. a gate's count since a time",
      sql: 'SELECT count(*) FROM attendance_records WHERE gate_id = $1 AND ts >= $2',
      params: [gate, since],
      timeBounded: true,
    },
    {
      name: '3. the active participant holding a token',
      sql: "SELECT id, name, email FROM participants WHERE token = $1 AND status = 'active'",
      params: [token],
      timeBounded: false,
    },
    {
      name: '4. check-ins per gate since a time',
      sql: 'SELECT gate_id, count(*) FROM attendance_records WHERE ts >= $1 GROUP BY gate_id',
      params: [since],
      timeBounded: true,
    },
  ]
}

/**
 * EXPLAIN (ANALYZE, BUFFERS) of the seed's critical queries on the live data: time, indexes used,
 * partitions scanned versus pruned, and concrete suggestions; plus pg_stat_statements' top
 * statements when the extension is installed. Read-only (the queries are SELECTs).
 */
export async function analyzeQueries(db: pg.ClientBase): Promise<AnalyzeReport> {
  const total = Number(
    (await db.query(`SELECT count(*) AS n FROM pg_inherits WHERE inhparent = 'attendance_records'::regclass`))
      .rows[0]?.n ?? 0,
  )
  const sizes = new Map<string, number>()
  for (const r of (
    await db.query<{ relname: string; n: string }>(`SELECT relname, n_live_tup AS n FROM pg_stat_user_tables`)
  ).rows) {
    sizes.set(r.relname, Number(r.n))
  }
  const queries: QueryAnalysis[] = []
  for (const q of await criticalQueries(db)) {
    const r = await db.query(`EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${q.sql}`, q.params)
    const top = (
      r.rows[0] as {
        'QUERY PLAN': Array<{ Plan: PlanNode; 'Execution Time': number; 'Planning Time': number }>
      }
    )['QUERY PLAN'][0]
    if (!top) continue
    const indexes = new Set<string>()
    const seq = new Set<string>()
    const partitions = new Set<string>()
    let hit = 0
    let read = 0
    walk(top.Plan, (n) => {
      if (n['Index Name']) indexes.add(n['Index Name'])
      if (n['Node Type'] === 'Seq Scan' && n['Relation Name']) seq.add(n['Relation Name'])
      if (n['Relation Name']?.startsWith('attendance_records')) partitions.add(n['Relation Name'])
    })
    hit = top.Plan['Shared Hit Blocks'] ?? 0
    read = top.Plan['Shared Read Blocks'] ?? 0
    const onRecords = q.sql.includes('attendance_records')
    const a: QueryAnalysis = {
      name: q.name,
      sql: q.sql,
      params: q.params,
      executionMs: top['Execution Time'],
      planningMs: top['Planning Time'],
      indexes: [...indexes],
      seqScans: [...seq],
      partitionsScanned: onRecords ? partitions.size : 0,
      partitionsTotal: onRecords ? total : 0,
      sharedHitBlocks: hit,
      sharedReadBlocks: read,
      suggestions: [],
    }
    if (a.executionMs > SLOW_MS)
      a.suggestions.push(`slow: ${a.executionMs.toFixed(1)} ms (target < ${SLOW_MS} ms)`)
    for (const t of seq) {
      const rows = sizes.get(t) ?? 0
      if (rows > 10_000)
        a.suggestions.push(
          `sequential scan on ${t} (${rows} rows): check that the index exists and statistics are fresh (gate-cloud maintain)`,
        )
    }
    if (onRecords && q.timeBounded && a.partitionsScanned >= total && total > 2) {
      a.suggestions.push(
        'no partition was pruned although the query bounds the time: check that ts is compared with a constant or parameter of type timestamptz',
      )
    }
    if (onRecords && !q.timeBounded && total > 2) {
      a.suggestions.push(
        `scans ${a.partitionsScanned} of ${total} partitions: add a time bound (ts >= ...) when the caller knows one, so Postgres prunes partitions`,
      )
    }
    if (a.sharedReadBlocks > 10 * Math.max(1, a.sharedHitBlocks))
      a.suggestions.push('mostly read from disk: shared_buffers may be too small for the hot partitions')
    queries.push(a)
  }
  const general: string[] = []
  const def = Number((await db.query(`SELECT count(*) AS n FROM attendance_records_default`)).rows[0]?.n ?? 0)
  if (def > 0)
    general.push(
      `${def} rows wait in the default partition: run \`gate-cloud partitions maintain\` (rows beyond the premake horizon stay there; look for gates with broken clocks)`,
    )
  const stale = await db.query<{ relname: string }>(
    `SELECT relname FROM pg_stat_user_tables WHERE relname IN ('participants', 'gates') AND coalesce(last_analyze, last_autoanalyze) IS NULL AND n_live_tup > 0`,
  )
  for (const r of stale.rows) general.push(`${r.relname} was never analyzed: run \`gate-cloud maintain\``)
  let topStatements: AnalyzeReport['topStatements'] = null
  const ext = await db.query(`SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'`)
  if (ext.rowCount) {
    try {
      const t = await db.query<{ query: string; calls: string; mean: number; total: number }>(
        `SELECT query, calls, mean_exec_time AS mean, total_exec_time AS total FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 10`,
      )
      topStatements = t.rows.map((x) => ({
        query: x.query.slice(0, 200),
        calls: Number(x.calls),
        meanMs: x.mean,
        totalMs: x.total,
      }))
    } catch (err) {
      general.push(
        `pg_stat_statements is installed but not readable: ${(err as Error).message} (it needs shared_preload_libraries)`,
      )
    }
  } else {
    general.push(
      'pg_stat_statements is not installed: add it to shared_preload_libraries and CREATE EXTENSION pg_stat_statements to see the top statements',
    )
  }
  return { queries, general, topStatements }
}

/** The hot tables. VACUUM cannot run in a transaction: each statement runs on its own. */
export const HOT_TABLES = ['attendance_records', 'participants', 'gates', 'gate_keys', 'incidents'] as const

/** ANALYZE and VACUUM (ANALYZE) of the hot tables, each outside any transaction. Returns ms per step. */
export async function maintainTables(db: pg.ClientBase): Promise<Array<{ step: string; ms: number }>> {
  const out: Array<{ step: string; ms: number }> = []
  for (const t of HOT_TABLES) {
    for (const step of [`VACUUM (ANALYZE) ${db.escapeIdentifier(t)}`]) {
      const t0 = performance.now()
      await db.query(step)
      out.push({ step, ms: Math.round(performance.now() - t0) })
    }
  }
  const t0 = performance.now()
  await db.query('ANALYZE attendance_records')
  out.push({ step: 'ANALYZE attendance_records (parent statistics)', ms: Math.round(performance.now() - t0) })
  return out
}

import type pg from 'pg'
import type { Logger } from 'pino'
import {
  addIntervals,
  boundLiteral,
  floorTo,
  isManagedPartitionName,
  PARTITIONED_TABLES,
  type PartitionedTable,
  type PartitionInterval,
  type PartitionSpec,
  partitionFor,
  partitionName,
} from './intervals.js'

/** How a partitioned table (attendance_records by default) is partitioned and kept. */
export interface PartitionPolicy {
  /** which table (default attendance_records) */
  table?: PartitionedTable
  interval: PartitionInterval
  /** partitions created ahead of the current one */
  premake: number
  /** partitions that ended more than this many days ago are detached; null keeps everything */
  retentionDays: number | null
  /** after detaching, drop the table (true) or keep it for archiving (false) */
  dropDetached: boolean
}

/** One partition as the catalog describes it. */
export interface PartitionInfo {
  name: string
  /** null for the default partition */
  from: Date | null
  to: Date | null
  isDefault: boolean
  bytes: number
  rows?: number
}

/** What one maintenance pass did. */
export interface MaintainReport {
  /** another node held the lock; nothing was done */
  skipped: boolean
  created: string[]
  /** rows moved out of the default partition into new partitions */
  movedFromDefault: number
  detached: string[]
  dropped: string[]
  /** rows still in the default partition (too far in the future or past the retention) */
  leftInDefault: number
  /** a generated name already taken by a partition with other bounds: not created (see the log) */
  conflicts: string[]
  /** check-in ids forgotten with the partitions detached (checkin_ids, attendance_records only) */
  idsPruned: number
}

/** The parent, its default partition and the advisory lock of a partitioned table (fixed names). */
function names(table: PartitionedTable) {
  if (!PARTITIONED_TABLES.includes(table)) throw new RangeError(`not a partitioned table: ${table}`)
  return {
    parent: table,
    def: `${table}_default`,
    /** one lock for every node: only one maintains a table's partitions at a time */
    lock: `gate-cloud:${table}:partitions`,
  }
}
/** Most partitions one pass creates for rows found in the default partition. */
const MAX_BACKFILL = 400

const BOUND_RE = /FROM \('([^']+)'\) TO \('([^']+)'\)/

/** Partitions of attendance_records with bounds and sizes (UTC); `exact` adds row counts. */
export async function listPartitions(
  client: pg.ClientBase,
  opts: { exact?: boolean; table?: PartitionedTable } = {},
): Promise<PartitionInfo[]> {
  const PARENT = names(opts.table ?? 'attendance_records').parent
  await client.query(`SET TimeZone = 'UTC'`)
  const r = await client.query<{ name: string; bound: string; bytes: string }>(
    `SELECT c.relname AS name, pg_get_expr(c.relpartbound, c.oid) AS bound, pg_total_relation_size(c.oid) AS bytes
       FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
      WHERE i.inhparent = $1::regclass
      ORDER BY c.relname`,
    [PARENT],
  )
  const out: PartitionInfo[] = []
  for (const row of r.rows) {
    const m = BOUND_RE.exec(row.bound)
    const info: PartitionInfo = {
      name: row.name,
      from: m?.[1] ? new Date(`${m[1].replace(' ', 'T').replace(/\+00$/, '')}Z`) : null,
      to: m?.[2] ? new Date(`${m[2].replace(' ', 'T').replace(/\+00$/, '')}Z`) : null,
      isDefault: row.bound === 'DEFAULT',
      bytes: Number(row.bytes),
    }
    if (opts.exact) {
      const c = await client.query<{ n: string }>(
        `SELECT count(*) AS n FROM ${client.escapeIdentifier(row.name)}`,
      )
      info.rows = Number(c.rows[0]?.n ?? 0)
    }
    out.push(info)
  }
  return out
}

/**
 * One maintenance pass, like pg_partman's run_maintenance: create the current partition and
 * `premake` ahead, create partitions for rows that landed in the default partition (moving them
 * there), and detach (and drop) partitions past the retention. Runs in one transaction under an
 * advisory lock, so several cloud nodes may call it at once. Names and bounds are generated from
 * dates by the code, never from input; a far-future timestamp in the default partition never
 * creates partitions beyond the premake horizon.
 */
export async function maintainPartitions(
  client: pg.ClientBase,
  policy: PartitionPolicy,
  now: Date,
  log?: Logger,
): Promise<MaintainReport> {
  const table = policy.table ?? 'attendance_records'
  const { parent: PARENT, def: DEFAULT_PARTITION, lock: LOCK_KEY } = names(table)
  const report: MaintainReport = {
    skipped: false,
    created: [],
    movedFromDefault: 0,
    detached: [],
    dropped: [],
    leftInDefault: 0,
    conflicts: [],
    idsPruned: 0,
  }
  await client.query('BEGIN')
  try {
    await client.query(`SET LOCAL TimeZone = 'UTC'`)
    const lock = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_xact_lock(hashtext($1)) AS ok', [
      LOCK_KEY,
    ])
    if (!lock.rows[0]?.ok) {
      await client.query('ROLLBACK')
      report.skipped = true
      return report
    }
    const existing = (await listPartitions(client, { table })).filter((p) => !p.isDefault)
    const current = floorTo(policy.interval, now)
    const horizon = addIntervals(policy.interval, current, policy.premake + 1)
    const cutoff =
      policy.retentionDays === null ? null : new Date(now.getTime() - policy.retentionDays * 86_400_000)

    const wanted = new Map<string, PartitionSpec>()
    for (let k = 0; k <= policy.premake; k++) {
      const p = partitionFor(policy.interval, addIntervals(policy.interval, current, k), table)
      wanted.set(p.name, p)
    }
    // rows in the default partition inside [retention cutoff, horizon) get their partition
    const starts = await client.query<{ start: Date }>(
      `SELECT DISTINCT date_trunc($1, ts) AS start FROM ${DEFAULT_PARTITION}
        WHERE ts < $2 AND ($3::timestamptz IS NULL OR ts >= $3) ORDER BY 1 LIMIT ${MAX_BACKFILL}`,
      [policy.interval, horizon, cutoff],
    )
    for (const { start } of starts.rows) {
      const p = partitionFor(policy.interval, start, table)
      if (cutoff && p.to <= cutoff) continue
      wanted.set(p.name, p)
    }

    // what existing partitions do not cover of each wanted range gets a partition: after a change of
    // interval (monthly partitions, then quarterly) the quarter's uncovered months get one, instead
    // of the quarter being taken as there because a month of it is
    for (const want of [...wanted.values()].sort((a, b) => a.from.getTime() - b.from.getTime())) {
      for (const gap of uncovered(want, existing)) {
        const p: PartitionSpec = { name: partitionName(table, gap.from), ...gap }
        if (existing.some((e) => e.name === p.name)) {
          report.conflicts.push(`${p.name} exists with other bounds`)
          continue
        }
        report.movedFromDefault += await createPartition(client, p, table)
        report.created.push(p.name)
        existing.push({ name: p.name, from: p.from, to: p.to, isDefault: false, bytes: 0 })
      }
    }

    if (cutoff) {
      let detachedTo: Date | null = null
      for (const e of existing) {
        if (!e.to || e.to > cutoff || !isManagedPartitionName(e.name, table)) continue
        const t = client.escapeIdentifier(e.name)
        await client.query(`ALTER TABLE ${PARENT} DETACH PARTITION ${t}`)
        report.detached.push(e.name)
        if (!detachedTo || e.to > detachedTo) detachedTo = e.to
        if (policy.dropDetached) {
          await client.query(`DROP TABLE ${t}`)
          report.dropped.push(e.name)
        }
      }
      if (detachedTo && table === 'attendance_records')
        report.idsPruned = await pruneCheckinIds(client, detachedTo)
    }
    const left = await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${DEFAULT_PARTITION}`)
    report.leftInDefault = Number(left.rows[0]?.n ?? 0)
    await client.query('COMMIT')
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {})
    throw err
  }
  if (report.created.length || report.detached.length || report.conflicts.length) {
    log?.info(report, 'partitions maintained')
  }
  return report
}

/**
 * Forget the ids of check-ins made before `before` (checkin_ids keeps every id once so that an id
 * is unique whatever its time; it would otherwise outgrow the partitions). A UUIDv7 begins with
 * its millisecond, and the gate's generator never goes back in time (its clock stepping back holds
 * the ids' time, not the records'): an id made before `before` belongs to a record made before it,
 * gone with its partition. Only version 7 ids: another version's first bits are no time.
 */
async function pruneCheckinIds(client: pg.ClientBase, before: Date): Promise<number> {
  const r = await client.query(
    `DELETE FROM checkin_ids WHERE id < $1::uuid AND substr(id::text, 15, 1) = '7'`,
    [uuidV7Floor(before.getTime())],
  )
  return r.rowCount ?? 0
}

/** The smallest UUIDv7 of millisecond `ms` (every id made at or after it sorts after it). */
function uuidV7Floor(ms: number): string {
  const hex = Math.max(0, Math.min(ms, 2 ** 48 - 1))
    .toString(16)
    .padStart(12, '0')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-0000-0000-000000000000`
}

/**
 * Create one partition. Rows for its range that wait in the default partition are moved into the
 * new table before it is attached (attaching would otherwise fail on them). Returns rows moved.
 */
async function createPartition(
  client: pg.ClientBase,
  p: PartitionSpec,
  table: PartitionedTable,
): Promise<number> {
  const { parent: PARENT, def: DEFAULT_PARTITION } = names(table)
  const t = client.escapeIdentifier(p.name)
  await client.query(`CREATE TABLE ${t} (LIKE ${PARENT} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)`)
  const moved = await client.query(
    `WITH m AS (DELETE FROM ${DEFAULT_PARTITION} WHERE ts >= $1 AND ts < $2 RETURNING *)
     INSERT INTO ${t} SELECT * FROM m`,
    [p.from, p.to],
  )
  await client.query(
    `ALTER TABLE ${PARENT} ATTACH PARTITION ${t} FOR VALUES FROM (${boundLiteral(p.from)}) TO (${boundLiteral(p.to)})`,
  )
  return moved.rowCount ?? 0
}

/** The parts of [want.from, want.to) that no existing partition covers, in order. */
function uncovered(
  want: { from: Date; to: Date },
  existing: ReadonlyArray<Pick<PartitionInfo, 'from' | 'to'>>,
): Array<{ from: Date; to: Date }> {
  let parts = [{ from: want.from, to: want.to }]
  for (const e of existing) {
    if (!e.from || !e.to) continue
    const ef = e.from
    const et = e.to
    parts = parts.flatMap((p) => {
      if (et <= p.from || ef >= p.to) return [p]
      const out: Array<{ from: Date; to: Date }> = []
      if (ef > p.from) out.push({ from: p.from, to: ef })
      if (et < p.to) out.push({ from: et, to: p.to })
      return out
    })
  }
  return parts
}

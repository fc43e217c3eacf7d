/** Partition widths the manager supports (the seed uses quarters). All boundaries are UTC. */
export type PartitionInterval = 'day' | 'week' | 'month' | 'quarter'

export const PARTITION_INTERVALS: readonly PartitionInterval[] = ['day', 'week', 'month', 'quarter']

const DAY_MS = 86_400_000

/** The start of the partition holding instant `t` (weeks start on Monday, ISO). */
export function floorTo(interval: PartitionInterval, t: Date): Date {
  const y = t.getUTCFullYear()
  const m = t.getUTCMonth()
  const d = t.getUTCDate()
  switch (interval) {
    case 'day':
      return new Date(Date.UTC(y, m, d))
    case 'week': {
      const dow = (t.getUTCDay() + 6) % 7 // Monday = 0
      return new Date(Date.UTC(y, m, d) - dow * DAY_MS)
    }
    case 'month':
      return new Date(Date.UTC(y, m, 1))
    case 'quarter':
      return new Date(Date.UTC(y, m - (m % 3), 1))
  }
}

/** `start` moved by `n` partitions (n may be negative). `start` must be a partition start. */
export function addIntervals(interval: PartitionInterval, start: Date, n: number): Date {
  switch (interval) {
    case 'day':
      return new Date(start.getTime() + n * DAY_MS)
    case 'week':
      return new Date(start.getTime() + n * 7 * DAY_MS)
    case 'month':
      return new Date(Date.UTC(start.getUTCFullYear(), start.getUTCMonth() + n, 1))
    case 'quarter':
      return new Date(Date.UTC(start.getUTCFullYear(), start.getUTCMonth() + 3 * n, 1))
  }
}

/** A partition's name and bounds, generated from a date and never from input. */
export interface PartitionSpec {
  name: string
  from: Date
  to: Date
}

/** The tables the manager partitions: fixed identifiers in the code, never input. */
export const PARTITIONED_TABLES = ['attendance_records', 'gate_metrics'] as const
export type PartitionedTable = (typeof PARTITIONED_TABLES)[number]

const NAME_RE: Record<PartitionedTable, RegExp> = {
  attendance_records: /^attendance_records_p\d{8}$/,
  gate_metrics: /^gate_metrics_p\d{8}$/,
}

/** The partition of `interval` that starts at `start`: <table>_pYYYYMMDD, [from, to). */
export function partitionFor(
  interval: PartitionInterval,
  start: Date,
  table: PartitionedTable = 'attendance_records',
): PartitionSpec {
  const from = floorTo(interval, start)
  return { name: partitionName(table, from), from, to: addIntervals(interval, from, 1) }
}

/** The name of a partition starting at `from` (a UTC midnight): <table>_pYYYYMMDD, checked. */
export function partitionName(table: PartitionedTable, from: Date): string {
  const name = `${table}_p${from.toISOString().slice(0, 10).replace(/-/g, '')}`
  if (!NAME_RE[table].test(name)) throw new RangeError(`generated partition name ${name} is not valid`)
  return name
}

/** True for names the manager generates (the only tables it will ever detach or drop). */
export function isManagedPartitionName(
  name: string,
  table: PartitionedTable = 'attendance_records',
): boolean {
  return NAME_RE[table].test(name)
}

/** A timestamp literal for DDL bounds: only ever from a Date, checked against a strict pattern. */
export function boundLiteral(d: Date): string {
  const iso = d.toISOString()
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/.test(iso))
    throw new RangeError(`bad partition bound ${iso}`)
  return `'${iso}'`
}

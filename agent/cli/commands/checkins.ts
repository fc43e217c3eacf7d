import { createWriteStream } from 'node:fs'
import type { Command } from 'commander'
import type { Checkin } from '../../../shared/checkin.js'
import { GateError } from '../../../shared/errors.js'
import { EXIT } from '../../exit-codes.js'
import { type ListState, listCheckins, outboxCounts } from '../../store/outbox-queries.js'
import { action, type CliContext } from '../context.js'
import { printable, safeJson, terminalSafe } from '../safe-text.js'

interface ListOptions {
  state: string
  limit: string
  token?: string
}

const STATES: Record<string, ListState | 'all'> = {
  refused: 'refused',
  pending: 'pending',
  inflight: 'inFlight',
  'in-flight': 'inFlight',
  synced: 'synced',
  all: 'all',
}

function parseFilter(options: ListOptions) {
  const state = STATES[options.state.toLowerCase()]
  if (!state)
    throw new GateError(
      'E_INPUT',
      `--state must be one of pending, inflight, synced, refused, all (got "${options.state}")`,
    )
  return { state, limit: parseLimit(options.limit), token: options.token?.toLowerCase() }
}

/** Most rows --limit takes: a bigger number is a typo, and "all" says every row. */
const MAX_LIMIT = 1_000_000

/**
 * --limit: digits from 1 to MAX_LIMIT, or "all" (-1 for the store). "-1" was taken as "all" and
 * "1e9" as a billion: a typo should be an error, not every row.
 */
function parseLimit(text: string): number {
  if (text === 'all') return -1
  const limit = /^[0-9]{1,7}$/.test(text) ? Number(text) : Number.NaN
  if (!(limit >= 1 && limit <= MAX_LIMIT))
    throw new GateError(
      'E_INPUT',
      `--limit must be a whole number from 1 to ${MAX_LIMIT.toLocaleString('en-US')}, or "all" (got "${text}")`,
    )
  return limit
}

const CSV_FIELDS: Array<keyof Checkin | 'state' | 'syncError'> = [
  'id',
  'gateId',
  'token',
  'participantId',
  'method',
  'decision',
  'reason',
  'rssi',
  'ts',
  'monoMs',
  'bootId',
  'bootSeq',
  'rosterVersion',
  'zoneIn',
  'zoneOut',
  'ruleId',
  'policyVersion',
  'explanation',
  'actor',
  'note',
  'annuls',
  'state',
  'syncError',
]

/** A CSV cell: quoted when needed; control characters escaped (CSV is read by people; JSONL keeps exact values). */
function csvCell(value: unknown): string {
  const text = value === null || value === undefined ? '' : printable(String(value))
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text
}

/** What a row says besides its verdict: by whose hand, which rule and why, what it annuls. */
function rowDetail(row: Checkin): string {
  const parts: string[] = []
  if (row.actor) parts.push(`by hand (${printable(row.actor)}): ${printable(row.note ?? '')}`)
  if (row.ruleId) parts.push(`[${printable(row.ruleId)}]`)
  if (row.explanation) parts.push(printable(row.explanation))
  if (row.annuls) parts.push(`annuls ${row.annuls}`)
  return parts.length > 0 ? `  ${parts.join(' ')}` : ''
}

async function list(ctx: CliContext, options: ListOptions): Promise<number> {
  const db = ctx.openReadOnly()
  try {
    const rows = listCheckins(db, parseFilter(options))
    ctx.print(rows, () =>
      rows.length === 0
        ? 'no check-ins'
        : [
            `${'TIME'.padEnd(24)}  ${'STATE'.padEnd(8)}  ${'DECISION'.padEnd(8)}  ${'REASON'.padEnd(19)}  ${'TOKEN'.padEnd(16)}  ${'PARTICIPANT'.padEnd(12)}  ID`,
            ...rows.map(
              (row) =>
                `${new Date(row.ts).toISOString()}  ${row.state.padEnd(8)}  ${row.decision.padEnd(8)}  ${(row.reason ?? '-').padEnd(19)}  ${printable(row.token).padEnd(16)}  ${printable(row.participantId ?? '-').padEnd(12)}  ${row.id}${rowDetail(row)}`,
            ),
          ].join('\n'),
    )
    return EXIT.ok
  } finally {
    db.close()
  }
}

async function count(ctx: CliContext): Promise<number> {
  const db = ctx.openReadOnly()
  try {
    const counts = outboxCounts(db)
    ctx.print(
      counts,
      () => `pending ${counts.pending}, in flight ${counts.inFlight}, synced ${counts.synced}`,
    )
    return EXIT.ok
  } finally {
    db.close()
  }
}

async function exportRows(
  ctx: CliContext,
  options: ListOptions & { out?: string; format: string },
): Promise<number> {
  if (options.format !== 'jsonl' && options.format !== 'csv')
    throw new GateError('E_INPUT', '--format must be jsonl or csv')
  const db = ctx.openReadOnly()
  try {
    const rows = listCheckins(db, parseFilter(options)).reverse()
    const out = options.out ? await openForWriting(options.out) : process.stdout
    if (options.format === 'csv') out.write(`${CSV_FIELDS.join(',')}\n`)
    for (const row of rows) {
      out.write(
        options.format === 'csv'
          ? `${CSV_FIELDS.map((f) => csvCell(row[f])).join(',')}\n`
          : `${safeJson(row)}\n`,
      )
    }
    if (options.out) {
      await new Promise<void>((resolve, reject) =>
        (out as ReturnType<typeof createWriteStream>).end((err?: Error | null) =>
          err ? reject(err) : resolve(),
        ),
      )
      console.error(terminalSafe(`${rows.length} check-ins written to ${options.out}`))
    }
    return EXIT.ok
  } finally {
    db.close()
  }
}

/** Add `gatectl checkins` (list, count, export) to the program. */
export function register(program: Command): void {
  const cmd = program
    .command('checkins')
    .description('buffered check-ins (read from the database; safe while the agent runs)')
  const filters = (command: Command, limit: string) =>
    command
      .option('--state <state>', 'pending | inflight | synced | refused (by the cloud) | all', 'all')
      .option('--limit <n>', 'at most n rows, the newest ("all" for every row)', limit)
      .option('--token <token>', 'only this token')
  filters(cmd.command('list', { isDefault: true }).description('list check-ins, newest first'), '50').action(
    action(list),
  )
  cmd.command('count').description('count check-ins by state').action(action(count))
  filters(
    cmd.command('export').description('export check-ins, oldest first (all of them unless --limit)'),
    'all',
  )
    .option('-o, --out <file>', 'write to a file instead of stdout')
    .option('--format <format>', 'jsonl | csv', 'jsonl')
    .action(action(exportRows))
}

/** A file to write, opened before anything is written: a bad path is E_INPUT, not a crash. */
function openForWriting(file: string): Promise<ReturnType<typeof createWriteStream>> {
  return new Promise((resolve, reject) => {
    const out = createWriteStream(file)
    out.once('open', () => resolve(out))
    out.once('error', (err) => reject(new GateError('E_INPUT', `cannot write ${file}: ${err.message}`)))
  })
}

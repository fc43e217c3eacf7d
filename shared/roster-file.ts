import { readFileSync } from 'node:fs'
import { parse as parseCsv } from 'csv-parse/sync'
import { GateError } from './errors.js'
import { type RosterEntry, rosterEntrySchema } from './roster.js'

/** A roster line that could not be used, with its 1-based line (CSV) or index (JSON). */
export interface RosterFileProblem {
  line: number
  message: string
}

/** Column names accepted in a CSV roster, mapped to RosterEntry fields. */
const CSV_COLUMNS: Record<string, keyof RosterEntry> = {
  token: 'token',
  participant_id: 'participantId',
  participantid: 'participantId',
  participant: 'participantId',
  status: 'status',
  name: 'name',
  email: 'email',
  category: 'category',
  ticket_category: 'category',
  tags: 'tags',
}

/**
 * Parse a roster from CSV (header row: token, participant_id, status, name, email, category, tags;
 * tags separated by ';') or JSON (an array of { token, participantId, status, name, email,
 * category, tags }). Every bad line is reported;
 * duplicated tokens are problems too. Throws E_ROSTER_FILE only when the file cannot be read at all.
 */
export function parseRosterText(
  text: string,
  format: 'csv' | 'json',
): { entries: RosterEntry[]; problems: RosterFileProblem[] } {
  const raw = format === 'json' ? jsonRows(text) : csvRows(text)
  const entries: RosterEntry[] = []
  const problems: RosterFileProblem[] = []
  const seen = new Map<string, number>()
  for (const { line, row } of raw) {
    const parsed = rosterEntrySchema.safeParse(row)
    if (!parsed.success) {
      const msg = parsed.error.issues.map((i) => `${i.path.join('.') || 'line'}: ${i.message}`).join('; ')
      problems.push({ line, message: msg })
      continue
    }
    const first = seen.get(parsed.data.token)
    if (first !== undefined) {
      problems.push({ line, message: `token ${parsed.data.token} already given on line ${first}` })
      continue
    }
    seen.set(parsed.data.token, line)
    entries.push(parsed.data)
  }
  return { entries, problems }
}

/** Read and parse a roster file; the format comes from the extension (.json, else CSV). */
export function readRosterFile(file: string): { entries: RosterEntry[]; problems: RosterFileProblem[] } {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw new GateError(
      'E_ROSTER_FILE',
      `cannot read roster ${file}: ${(err as NodeJS.ErrnoException).code}`,
      {
        cause: err,
      },
    )
  }
  return parseRosterText(text, /\.json$/i.test(file) ? 'json' : 'csv')
}

function jsonRows(text: string): Array<{ line: number; row: unknown }> {
  let data: unknown
  try {
    data = JSON.parse(text)
  } catch (err) {
    throw new GateError('E_ROSTER_FILE', `roster is not valid JSON: ${(err as Error).message}`)
  }
  const list = Array.isArray(data) ? data : (data as { participants?: unknown })?.participants
  if (!Array.isArray(list)) throw new GateError('E_ROSTER_FILE', 'a JSON roster must be an array of entries')
  return list.map((row, i) => ({ line: i + 1, row }))
}

function csvRows(text: string): Array<{ line: number; row: unknown }> {
  let records: string[][]
  try {
    records = parseCsv(text, { skip_empty_lines: true, trim: true, relax_column_count: true, bom: true })
  } catch (err) {
    throw new GateError('E_ROSTER_FILE', `roster is not valid CSV: ${(err as Error).message}`)
  }
  const [header, ...rest] = records
  if (!header) return []
  const fields = header.map((h) => CSV_COLUMNS[h.toLowerCase().replace(/[\s-]/g, '_')])
  if (!fields.includes('token') || !fields.includes('participantId')) {
    throw new GateError(
      'E_ROSTER_FILE',
      'a CSV roster needs a header row with at least token and participant_id',
    )
  }
  return rest.map((cells, i) => {
    const row: Record<string, string | string[]> = {}
    fields.forEach((f, j) => {
      const v = cells[j]
      if (f && v !== undefined && v !== '')
        row[f] =
          f === 'tags'
            ? v
                .split(';')
                .map((t) => t.trim())
                .filter(Boolean)
            : v
    })
    return { line: i + 2, row }
  })
}

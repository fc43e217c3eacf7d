import type { Readable, Writable } from 'node:stream'
import { gzipSync } from 'node:zlib'
import type { SchemaElement } from 'hyparquet'
import { ByteWriter, ParquetWriter } from 'hyparquet-writer'
import type pg from 'pg'
import { copyEventOut, EXPORT_COLUMNS, EXPORT_REST_AND_FROM } from './export.js'

/**
 * Rows per row group: what the export holds at once, and what a reader skips by. Small enough that
 * the young generation's collections do not copy a big group's live objects again and again (50,000
 * wrote 12 % slower), large enough for dictionaries and GZIP to pay off.
 */
const ROW_GROUP = 10_000

// the same rows as the CSV, in COPY's text format (tab-separated, \N for null), the time in ms
const PARQUET_SQL = `COPY (SELECT (extract(epoch FROM a.ts) * 1000)::bigint, ${EXPORT_REST_AND_FROM}) TO STDOUT`

const TEXT_COLUMNS = EXPORT_COLUMNS.slice(1)

/** The file's schema: the time as a timestamp in ms, every other column optional UTF-8 text. */
const SCHEMA: SchemaElement[] = [
  { name: 'root', num_children: EXPORT_COLUMNS.length },
  { name: 'ts', type: 'INT64', converted_type: 'TIMESTAMP_MILLIS', repetition_type: 'REQUIRED' },
  ...TEXT_COLUMNS.map(
    (name): SchemaElement => ({
      name,
      type: 'BYTE_ARRAY',
      converted_type: 'UTF8',
      repetition_type: 'OPTIONAL',
    }),
  ),
]

function gzipFast(input: Uint8Array): Uint8Array {
  const out = gzipSync(input, { level: 1 })
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength)
}

/** The control characters COPY's text format writes as a backslash and a letter. */
const ESCAPED: Record<string, string> = { n: '\n', t: '\t', r: '\r', b: '\b', f: '\f', v: '\v' }

const TAB = 0x09
const BACKSLASH = 0x5c
const CAPITAL_N = 0x4e

/**
 * The columns with few distinct values (the writer makes a dictionary of each): given as strings,
 * which it keys faster than byte arrays. The others go as views of COPY's bytes.
 */
const FEW_VALUES = new Set(['gate_id', 'decision', 'reason', 'method', 'zone_in', 'zone_out', 'rule_id'])
const AS_STRING = TEXT_COLUMNS.map((c) => FEW_VALUES.has(c))

/**
 * One field of a line of COPY's text format, as the Parquet writer takes it: null for \N; for a
 * field with backslash escapes (rare), the text they stand for; an ASCII field of a column with few
 * values, as a string; else the field's own UTF-8 bytes, a view of the chunk (nothing decoded,
 * nothing copied).
 */
function field(
  buf: Buffer,
  from: number,
  to: number,
  escaped: boolean,
  ascii: boolean,
  asString: boolean,
): Uint8Array | string | null {
  // \N alone is null, not an escape
  if (to - from === 2 && buf[from] === BACKSLASH && buf[from + 1] === CAPITAL_N) return null
  if (escaped) return buf.toString('utf8', from, to).replace(/\\(.)/g, (_, c: string) => ESCAPED[c] ?? c)
  if (asString && ascii) return buf.toString('latin1', from, to)
  return new Uint8Array(buf.buffer, buf.byteOffset + from, to - from)
}

/**
 * A Parquet writer's bytes, handed to `out` after each row group (the writer calls flush) and at
 * the end, waiting for `out` to drain: only one row group's bytes are ever held.
 */
class StreamWriter extends ByteWriter {
  constructor(private readonly out: Writable) {
    super()
  }
  private async send(): Promise<void> {
    if (this.index === 0) return
    const chunk = Buffer.from(this.getBytes())
    this.index = 0
    if (!this.out.write(chunk))
      await new Promise<void>((resolve, reject) => {
        const done = (err?: Error) => {
          this.out.off('drain', ok)
          this.out.off('error', done)
          this.out.off('close', closed)
          if (err) reject(err)
          else resolve()
        }
        const ok = () => done()
        const closed = () => done(new Error('the export was closed before its end'))
        this.out.once('drain', ok)
        this.out.once('error', done)
        this.out.once('close', closed)
      })
  }
  flush(): Promise<void> {
    return this.send()
  }
  /** the footer's bytes too; `out` is then ended */
  async end(): Promise<void> {
    await this.send()
    await new Promise<void>((resolve) => this.out.end(resolve))
  }
}

/**
 * Stream an event's check-ins as a Parquet file into `out`: the rows of the CSV export (same
 * columns; `ts` a timestamp in ms, UTC, with min/max statistics per row group), read from Postgres'
 * COPY TO as it sends them and written a row group of 10,000 at a time, GZIP-compressed. Returns
 * the rows written.
 */
export async function exportAttendanceParquet(
  pool: pg.Pool,
  eventId: string,
  out: Writable,
): Promise<number> {
  const writer = new StreamWriter(out)
  const parquet = new ParquetWriter({
    writer,
    schema: SCHEMA,
    createdBy: 'gate-cloud',
    // GZIP by Node's own zlib, at its fastest level: every Parquet reader knows it, and it writes
    // twice as fast as the library's JavaScript Snappy, into smaller files
    codec: 'GZIP',
    compressors: { GZIP: gzipFast },
  })
  let rows = 0
  let ts: bigint[] = []
  let text: Array<Array<Uint8Array | string | null>> = TEXT_COLUMNS.map(() => [])
  const writeGroup = async () => {
    if (ts.length === 0) return
    await parquet.write({
      columnData: [
        { name: 'ts', data: ts },
        // min/max statistics for the time only: a reader skips row groups by time with them, and
        // those of the text columns cost the writer half its speed
        ...TEXT_COLUMNS.map((name, k) => ({
          name,
          data: text[k] as Array<Uint8Array | string | null>,
          statistics: false,
        })),
      ],
      rowGroupSize: ROW_GROUP,
    })
    rows += ts.length
    ts = []
    text = TEXT_COLUMNS.map(() => [])
  }
  /** One line (`from` to the newline at `to`): the time in ms, then a tab before each text field. */
  const line = (buf: Buffer, from: number, to: number) => {
    let ms = 0
    let i = from
    // the time: digits (ms since the epoch, COPY's text for a bigint)
    while (i < to && buf[i] !== TAB) ms = ms * 10 + ((buf[i++] as number) - 0x30)
    ts.push(BigInt(ms))
    for (let k = 0; k < TEXT_COLUMNS.length; k++) {
      const start = ++i
      let escaped = false
      let ascii = true
      for (let b = buf[i] as number; i < to && b !== TAB; b = buf[++i] as number) {
        if (b === BACKSLASH) escaped = true
        else if (b >= 0x80) ascii = false
      }
      ;(text[k] as Array<Uint8Array | string | null>).push(
        field(buf, start, i, escaped, ascii, AS_STRING[k] as boolean),
      )
    }
  }
  const consume = async (copy: Readable) => {
    // a line may run across two chunks: its start is kept for the next
    let rest: Buffer | null = null
    for await (const chunk of copy) {
      const buf: Buffer = rest ? Buffer.concat([rest, chunk as Buffer]) : (chunk as Buffer)
      let from = 0
      for (let nl = buf.indexOf(0x0a, from); nl >= 0; nl = buf.indexOf(0x0a, from)) {
        line(buf, from, nl)
        from = nl + 1
        if (ts.length >= ROW_GROUP) await writeGroup()
      }
      rest = from < buf.length ? buf.subarray(from) : null
    }
    await writeGroup()
  }
  await copyEventOut(pool, eventId, PARQUET_SQL, consume)
  await parquet.finish()
  await writer.end()
  return rows
}

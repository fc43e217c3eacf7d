import type { Readable, Writable } from 'node:stream'
import { StringDecoder } from 'node:string_decoder'
import { gzipSync } from 'node:zlib'
import type { SchemaElement } from 'hyparquet'
import { ByteWriter, ParquetWriter } from 'hyparquet-writer'
import type pg from 'pg'
import { copyEventOut, EXPORT_COLUMNS, EXPORT_REST_AND_FROM } from './export.js'

/** Rows per row group: what the export holds at once (a few MB), and what a reader skips by. */
const ROW_GROUP = 50_000

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

/** The control characters COPY's text format writes as a backslash and a letter. */
const ESCAPED: Record<string, string> = { n: '\n', t: '\t', r: '\r', b: '\b', f: '\f', v: '\v' }

function gzipFast(input: Uint8Array): Uint8Array {
  const out = gzipSync(input, { level: 1 })
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength)
}

/** COPY's text format undone for one field: \N is null, and its backslash escapes. */
function field(raw: string): string | null {
  if (raw === '\\N') return null
  if (!raw.includes('\\')) return raw
  return raw.replace(/\\(.)/g, (_, c: string) => ESCAPED[c] ?? c)
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
 * COPY TO as it sends them and written a row group of 50,000 at a time, GZIP-compressed. Returns
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
  let text: Array<Array<string | null>> = TEXT_COLUMNS.map(() => [])
  const writeGroup = async () => {
    if (ts.length === 0) return
    await parquet.write({
      columnData: [
        { name: 'ts', data: ts },
        // min/max statistics for the time only: a reader skips row groups by time with them, and
        // those of the text columns cost the writer half its speed
        ...TEXT_COLUMNS.map((name, k) => ({
          name,
          data: text[k] as Array<string | null>,
          statistics: false,
        })),
      ],
      rowGroupSize: ROW_GROUP,
    })
    rows += ts.length
    ts = []
    text = TEXT_COLUMNS.map(() => [])
  }
  const consume = async (copy: Readable) => {
    // a chunk may end inside a character: the decoder keeps its first bytes for the next
    const utf8 = new StringDecoder('utf8')
    let rest = ''
    for await (const chunk of copy) {
      const lines = (rest + utf8.write(chunk as Buffer)).split('\n')
      rest = lines.pop() ?? ''
      for (const line of lines) {
        const fields = line.split('\t')
        ts.push(BigInt(fields[0] as string))
        for (let k = 0; k < TEXT_COLUMNS.length; k++)
          (text[k] as Array<string | null>).push(field(fields[k + 1] as string))
        if (ts.length >= ROW_GROUP) await writeGroup()
      }
    }
    await writeGroup()
  }
  await copyEventOut(pool, eventId, PARQUET_SQL, consume)
  await parquet.finish()
  await writer.end()
  return rows
}

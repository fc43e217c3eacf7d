// The store thread's worker (started by store-thread.ts): its own connection to the agent database,
// answering reads and running PASSIVE WAL checkpoints on a timer, off the event loop that decides.
import { parentPort, workerData } from 'node:worker_threads'
import Database from 'better-sqlite3'
import type { ReadRequest, StoreWorkerData, WorkerMessage } from './store-thread-messages.js'

/** A query's one row as SQLite renders it (the JSON still text). */
interface RenderedRows {
  first: number | null
  last: number | null
  count: number
  json: string
}

/** One row of PRAGMA wal_checkpoint: frames in the WAL, and how many are back in the database. */
interface CheckpointRow {
  busy: number
  log: number
  checkpointed: number
}

if (!parentPort) throw new Error('store-worker runs as the store thread (a worker), not on its own')
const port = parentPort
const data = workerData as StoreWorkerData
const db = new Database(data.file, { fileMustExist: true })
db.pragma('busy_timeout = 1000')
const queries = new Map(Object.entries(data.queries).map(([name, sql]) => [name, db.prepare(sql)]))
const encoder = new TextEncoder()
const post = (message: WorkerMessage, transfer?: ArrayBuffer[]) => port.postMessage(message, transfer)
const messageOf = (err: unknown) => String((err as Error | null)?.message || err)

port.on('message', (request: ReadRequest) => {
  try {
    const query = queries.get(request.query)
    if (!query) throw new Error(`no query named ${request.query}`)
    const rows = query.get(...request.args) as RenderedRows
    // a fresh ArrayBuffer (never a pooled one), moved to the main thread without a copy
    const json = encoder.encode(rows.json)
    post({ kind: 'rows', id: request.id, first: rows.first, last: rows.last, count: rows.count, json }, [
      json.buffer as ArrayBuffer,
    ])
  } catch (err) {
    post({ kind: 'rows', id: request.id, error: messageOf(err) })
  }
})

setInterval(() => {
  try {
    const [row] = db.pragma('wal_checkpoint(PASSIVE)') as CheckpointRow[]
    if (row) post({ kind: 'checkpoint', ok: true, log: row.log, checkpointed: row.checkpointed })
  } catch (err) {
    post({ kind: 'checkpoint', ok: false, error: messageOf(err) })
  }
}, data.intervalMs)

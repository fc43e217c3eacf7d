import { createRequire } from 'node:module'
import { Worker } from 'node:worker_threads'
import type { Logger } from 'pino'
import type { Db } from './db.js'

/**
 * WAL checkpoints off the event loop. SQLite's automatic checkpoint runs inside whichever commit
 * crosses the threshold and fsyncs the database file there: on the agent that is a decision's
 * commit, stalled for tens of milliseconds while a backlog drain dirties pages. Here the main
 * connection's automatic checkpoint is turned off and a worker thread with its own connection runs
 * PASSIVE checkpoints (they never block the writer) on a timer. If the worker dies, the automatic
 * checkpoint comes back, so the WAL can never grow without bound.
 */
export class Checkpointer {
  private worker: Worker | null = null
  private stopping = false
  /** checkpoints run, failures, and at the last one: frames in the WAL and how many are back in the database */
  readonly stats = { runs: 0, errors: 0, walFrames: 0, backfilled: 0 }

  constructor(
    private readonly db: Db,
    private readonly file: string,
    private readonly log: Logger,
    private readonly intervalMs = 250,
  ) {}

  start(): void {
    // the worker is plain JavaScript evaluated in place: it runs the same from the TypeScript sources
    // (tsx, vitest) and from dist/, and it loads this build's better-sqlite3 by absolute path
    const sqlite = createRequire(import.meta.url).resolve('better-sqlite3')
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { sqlite, file: this.file, intervalMs: this.intervalMs },
    })
    worker.unref()
    worker.on('message', (m: { ok: boolean; log?: number; checkpointed?: number; error?: string }) => {
      if (m.ok) {
        this.stats.runs++
        this.stats.walFrames = m.log ?? 0
        this.stats.backfilled = m.checkpointed ?? 0
      } else {
        this.stats.errors++
        this.log.warn({ err: m.error }, 'WAL checkpoint failed; retried at the next interval')
      }
    })
    worker.on('error', (err) => this.fallBack(err))
    worker.on('exit', (code) => {
      if (!this.stopping) this.fallBack(new Error(`checkpoint worker exited (${code})`))
    })
    this.db.pragma('wal_autocheckpoint = 0')
    this.worker = worker
  }

  async stop(): Promise<void> {
    this.stopping = true
    const w = this.worker
    this.worker = null
    if (w) await w.terminate()
    if (this.db.open) this.db.pragma('wal_autocheckpoint = 1000')
  }

  private fallBack(err: Error): void {
    if (this.worker === null) return
    this.worker = null
    this.log.error({ err }, 'WAL checkpoint worker failed; SQLite checkpoints in the commit path again')
    if (this.db.open) this.db.pragma('wal_autocheckpoint = 1000')
  }
}

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads')
const Database = require(workerData.sqlite)
const db = new Database(workerData.file, { fileMustExist: true })
db.pragma('busy_timeout = 1000')
setInterval(() => {
  try {
    const r = db.pragma('wal_checkpoint(PASSIVE)')[0]
    if (r) parentPort.postMessage({ ok: true, log: r.log, checkpointed: r.checkpointed })
  } catch (err) {
    parentPort.postMessage({ ok: false, error: String(err && err.message || err) })
  }
}, workerData.intervalMs)
`

import type { Worker } from 'node:worker_threads'
import type { Logger } from 'pino'
import { startModuleWorker } from '../lifecycle/module-worker.js'
import type { Db } from './db.js'
import type { ReadRequest, StoreWorkerData, ThreadRows, WorkerMessage } from './store-thread-messages.js'

/** A read sent to the worker, waiting for its answer. */
interface Waiting {
  resolve: (rows: ThreadRows) => void
  reject: (err: Error) => void
}

/**
 * A worker thread with its own connection to the agent database, for the work that would otherwise
 * block the event loop that makes decisions:
 * - WAL checkpoints. SQLite's automatic checkpoint runs inside whichever commit crosses the
 *   threshold and fsyncs the database file there: on the agent that is a decision's commit, stalled
 *   for tens of milliseconds while a backlog drain dirties pages. While the thread runs, the main
 *   connection's automatic checkpoint is off and the thread runs PASSIVE checkpoints (they never
 *   block the writer) on a timer. If the thread dies, the automatic checkpoint comes back, so the
 *   WAL can never grow without bound.
 * - Reads named at construction (the outbox's claim queries): rendering a thousand check-ins as JSON
 *   takes SQLite milliseconds (docs/benchmarks.md), which a decision arriving meanwhile would wait
 *   for. A WAL reader never blocks the writer, and the JSON comes back as bytes moved (not copied)
 *   to the main thread.
 */
export class StoreThread {
  private worker: Worker | null = null
  private stopping = false
  private died = false
  private nextId = 1
  private readonly waiting = new Map<number, Waiting>()
  /** checkpoints run, failures, and at the last one: frames in the WAL and how many are back in the database */
  readonly stats = { runs: 0, errors: 0, walFrames: 0, backfilled: 0, reads: 0, starts: 0 }

  constructor(
    private readonly db: Db,
    private readonly file: string,
    private readonly log: Logger,
    private readonly opts: {
      /** PASSIVE checkpoint every this, ms */
      checkpointMs?: number
      /** SQL by name for `read`; each returns one row: first, last, count, json */
      queries?: Record<string, string>
    } = {},
  ) {}

  /** true while the thread runs (false before start, after stop, and once it has died) */
  get running(): boolean {
    return this.worker !== null
  }

  /** running; off (before start, after stop); failed: it died, and is not started again on demand (the main thread does its work) */
  get state(): 'running' | 'off' | 'failed' {
    return this.worker ? 'running' : this.died ? 'failed' : 'off'
  }

  start(): void {
    if (this.worker) return
    this.stopping = false
    // the worker is store-worker.ts (compiled: store-worker.js), next to this file
    const workerData: StoreWorkerData = {
      file: this.file,
      intervalMs: this.opts.checkpointMs ?? 250,
      queries: this.opts.queries ?? {},
    }
    const worker = startModuleWorker(import.meta.url, 'store-worker', { workerData })
    worker.unref()
    worker.on('message', (m: WorkerMessage) => this.onMessage(m))
    worker.on('error', (err) => this.fallBack(worker, err))
    worker.on('exit', (code) => {
      if (!this.stopping) this.fallBack(worker, new Error(`store thread exited (${code})`))
    })
    this.db.pragma('wal_autocheckpoint = 0')
    this.worker = worker
    this.stats.starts++
  }

  /** Run a named query on the thread's connection (a fresh read snapshot). Rejects if the thread stops or dies first. */
  read(query: string, args: readonly number[]): Promise<ThreadRows> {
    const worker = this.worker
    if (!worker) return Promise.reject(new Error('store thread not running'))
    const id = this.nextId++
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject })
      const request: ReadRequest = { id, query, args }
      worker.postMessage(request)
    })
  }

  async stop(): Promise<void> {
    this.stopping = true
    const worker = this.worker
    this.worker = null
    this.rejectWaiting(new Error('store thread stopped'))
    if (this.db.open) this.db.pragma('wal_autocheckpoint = 1000')
    if (worker) await worker.terminate()
  }

  private onMessage(message: WorkerMessage): void {
    if (message.kind === 'checkpoint') {
      if (message.ok) {
        this.stats.runs++
        this.stats.walFrames = message.log ?? 0
        this.stats.backfilled = message.checkpointed ?? 0
      } else {
        this.stats.errors++
        this.log.warn({ err: message.error }, 'WAL checkpoint failed; retried at the next interval')
      }
      return
    }
    const waiting = this.waiting.get(message.id)
    if (!waiting) return
    this.waiting.delete(message.id)
    if (message.error !== undefined) {
      waiting.reject(new Error(message.error))
      return
    }
    this.stats.reads++
    waiting.resolve({
      first: message.first ?? null,
      last: message.last ?? null,
      count: message.count ?? 0,
      json: message.json ?? new Uint8Array(),
    })
  }

  private rejectWaiting(err: Error): void {
    for (const waiting of this.waiting.values()) waiting.reject(err)
    this.waiting.clear()
  }

  private fallBack(worker: Worker, err: Error): void {
    if (this.worker !== worker) return
    this.worker = null
    this.died = true
    this.rejectWaiting(err)
    this.log.error({ err }, 'store thread failed; SQLite checkpoints in the commit path again')
    if (this.db.open) this.db.pragma('wal_autocheckpoint = 1000')
  }
}

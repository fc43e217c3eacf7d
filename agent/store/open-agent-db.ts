import { mkdirSync, statSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { Worker } from 'node:worker_threads'
import type { Logger } from 'pino'
import { errorMessage, GateError } from '../../shared/errors.js'
import { corruptError, type Db, databaseFileState, isHealthy, mapSqliteError, openDatabase } from './db.js'

/** The database file inside the data directory. */
export const DB_NAME = 'agent.db'

/**
 * How long the agent waits, at most, for the integrity check of its database before it starts
 * without the verdict, ms. quick_check reads every page: a file of a day offline takes seconds from
 * a cold page cache, and far longer while other work loads the disk (measured: docs/benchmarks.md);
 * a file of a few days (under 100,000 check-ins) takes well under a second. A gate at the door does
 * not wait longer than this: the check goes on in the background and its verdict is logged.
 */
export const INTEGRITY_WAIT_MS = 10_000

/**
 * Open the daemon's database: the data directory made if needed, then an existing file checked
 * (identity, then PRAGMA quick_check on a read-only connection in a worker thread) before anything
 * is written to it. A damaged file is refused with E_DB_CORRUPT and left byte for byte as it was.
 * A check that has not finished after `waitMs` lets the agent start (a warning); its late verdict
 * is logged.
 */
export async function openAgentDatabase(
  file: string,
  log: Logger,
  opts: { waitMs?: number } = {},
): Promise<Db> {
  makeDataDir(path.dirname(file))
  if (databaseFileState(file) === 'present') {
    // the header and identity checks are quick and fail with their own clear errors
    openDatabase(file, { readonly: true }).close()
    const started = performance.now()
    const check = quickCheckInWorker(file)
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), opts.waitMs ?? INTEGRITY_WAIT_MS)
    })
    const first = await Promise.race([check, late]).finally(() => clearTimeout(timer))
    if (first === 'late') {
      log.warn(
        { file, waitedMs: opts.waitMs ?? INTEGRITY_WAIT_MS },
        'database integrity check not finished; starting without waiting for it (it goes on in the background)',
      )
      check.then(
        (problems) => {
          const ms = Math.round(performance.now() - started)
          if (isHealthy(problems)) log.info({ file, ms }, 'database integrity check ok')
          else log.error({ file, ms, err: corruptError(file, problems) }, 'database integrity check failed')
        },
        (err) => log.error({ file, err }, 'database integrity check failed'),
      )
    } else {
      if (!isHealthy(first)) throw corruptError(file, first)
      log.debug({ file, ms: Math.round(performance.now() - started) }, 'database integrity check ok')
    }
  }
  return openDatabase(file)
}

/**
 * mkdir -p, one level at a time. Node's own recursive mkdir never returns when a parent exists but
 * refuses new entries with ENOENT (under /proc: mkdir /proc/x is ENOENT, mkdir /proc is EEXIST,
 * and it goes back and forth for ever): here each level is tried at most twice.
 */
export function makeDataDir(dir: string): void {
  try {
    mkdirSync(dir, { mode: 0o750 })
    return
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'EEXIST') {
      if (isDirectory(dir)) return
      throw dataDirError(dir, 'it exists and is not a directory', err)
    }
    const parent = path.dirname(dir)
    if (code !== 'ENOENT' || parent === dir) throw dataDirError(dir, code ?? errorMessage(err), err)
    makeDataDir(parent)
  }
  try {
    mkdirSync(dir, { mode: 0o750 })
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'EEXIST' && isDirectory(dir)) return
    const why =
      code === 'ENOENT'
        ? `ENOENT although ${path.dirname(dir)} exists: a file system that takes no new directories, such as /proc`
        : (code ?? errorMessage(err))
    throw dataDirError(dir, why, err)
  }
}

function isDirectory(file: string): boolean {
  try {
    return statSync(file).isDirectory()
  } catch {
    return false
  }
}

function dataDirError(dir: string, why: string, cause: unknown): GateError {
  return new GateError(
    'E_DB_OPEN',
    `cannot create the data directory ${dir} (${why}); point --data-dir (GATE_DATA_DIR) at a directory ` +
      'on a writable disk, or create it and give it to the agent user',
    { cause, context: { dir } },
  )
}

/**
 * PRAGMA quick_check on the worker's own read-only connection: it never blocks the event loop, and
 * the main thread can stop waiting for it. Resolves with quick_check's rows ('ok', or the problems).
 */
export function quickCheckInWorker(file: string): Promise<string[]> {
  // plain JavaScript evaluated in place: the same from the sources and from dist/, and quick to start
  // at every start of the agent (a worker module run from the sources loads tsx first, see
  // lifecycle/module-worker.ts)
  const sqlite = createRequire(import.meta.url).resolve('better-sqlite3')
  return new Promise((resolve, reject) => {
    const worker = new Worker(CHECK_SOURCE, { eval: true, workerData: { sqlite, file } })
    worker.unref()
    worker.once('message', (message: { problems?: string[]; error?: { message: string; code?: string } }) => {
      if (message.problems) resolve(message.problems)
      else
        reject(
          mapSqliteError(
            Object.assign(new Error(message.error?.message), { code: message.error?.code }),
            file,
          ),
        )
    })
    worker.once('error', (err) => reject(mapSqliteError(err, file)))
    worker.once('exit', (code) => reject(new GateError('E_INTERNAL', `integrity check exited (${code})`)))
  })
}

const CHECK_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads')
const Database = require(workerData.sqlite)
let db
try {
  db = new Database(workerData.file, { readonly: true, fileMustExist: true })
  db.pragma('busy_timeout = 5000')
  const problems = db.pragma('quick_check(20)').map((r) => r.quick_check)
  parentPort.postMessage({ problems })
} catch (err) {
  parentPort.postMessage({ error: { message: String((err && err.message) || err), code: err && err.code } })
} finally {
  if (db) db.close()
}
`

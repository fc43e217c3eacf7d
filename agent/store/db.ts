import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs'
import Database from 'better-sqlite3'
import { GateError } from '../../shared/errors.js'
import { APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION } from './schema.js'

export type Db = Database.Database

const SQLITE_HEADER = Buffer.from('SQLite format 3\0', 'latin1')

/** Options for opening the agent database. */
export interface OpenOptions {
  /** open read-only (gatectl while the daemon is down); never creates or migrates */
  readonly?: boolean
}

/**
 * Open (and, unless read-only, create or migrate) the agent's SQLite database.
 * A file that is not ours, corrupted, or from a newer agent gives a clear GateError and is left untouched.
 */
export function openDatabase(file: string, opts: OpenOptions = {}): Db {
  const exists = existsSync(file) && statSync(file).size > 0
  if (exists) checkHeader(file)
  if (opts.readonly && !exists) {
    throw new GateError(
      'E_DB_OPEN',
      `no agent database at ${file} (has the agent ever run with this data directory?)`,
    )
  }
  let db: Db
  try {
    db = new Database(file, { readonly: opts.readonly === true, fileMustExist: opts.readonly === true })
  } catch (err) {
    throw mapSqliteError(err, file)
  }
  try {
    db.pragma('busy_timeout = 5000')
    // identity first: nothing may be written (not even the WAL flag in the header) to a file that is not ours
    checkIdentity(db, file)
    if (!opts.readonly) {
      db.pragma('journal_mode = WAL')
      // FULL: the WAL is fsynced at every commit, so a committed (and so emitted) decision survives a power cut.
      db.pragma('synchronous = FULL')
    }
    if (!opts.readonly) migrate(db)
    return db
  } catch (err) {
    db.close()
    throw mapSqliteError(err, file)
  }
}

function checkHeader(file: string): void {
  const fd = openSync(file, 'r')
  try {
    const head = Buffer.alloc(16)
    readSync(fd, head, 0, 16, 0)
    if (!head.equals(SQLITE_HEADER)) {
      throw new GateError(
        'E_DB_FOREIGN',
        `${file} is not a SQLite database (or its header is corrupted); it was left untouched. ` +
          'Move it aside or point --data-dir at another directory.',
        { context: { file } },
      )
    }
  } finally {
    closeSync(fd)
  }
}

function checkIdentity(db: Db, file: string): void {
  const appId = db.pragma('application_id', { simple: true }) as number
  const version = db.pragma('user_version', { simple: true }) as number
  const tables = (
    db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table'").get() as { n: number }
  ).n
  if (appId !== APPLICATION_ID && !(appId === 0 && tables === 0)) {
    throw new GateError(
      'E_DB_FOREIGN',
      `${file} is not a gate agent database: it belongs to another program (application_id ${appId}, ${tables} tables); it was left untouched. ` +
        'Point --data-dir at the agent data directory.',
      { context: { file, appId } },
    )
  }
  if (version > SCHEMA_VERSION) {
    throw new GateError(
      'E_DB_TOO_NEW',
      `${file} has schema version ${version}, newer than this agent understands (${SCHEMA_VERSION}). ` +
        'Upgrade the agent; the file was left untouched.',
      { context: { file, version } },
    )
  }
}

function migrate(db: Db): void {
  const current = db.pragma('user_version', { simple: true }) as number
  for (let v = current; v < SCHEMA_VERSION; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]!)
      db.pragma(`application_id = ${APPLICATION_ID}`)
      db.pragma(`user_version = ${v + 1}`)
    }).immediate()
  }
}

/** Turn a SQLite error into a GateError that tells a technician what happened. */
export function mapSqliteError(err: unknown, file: string): Error {
  if (err instanceof GateError) return err
  const code = (err as { code?: string }).code ?? ''
  if (code === 'SQLITE_CORRUPT' || code === 'SQLITE_NOTADB' || code.startsWith('SQLITE_CORRUPT')) {
    return new GateError(
      'E_DB_CORRUPT',
      `${file} is corrupted (${code}); it was left untouched. Run \`gatectl doctor\`; move the file aside ` +
        'and recover unsynced check-ins with `sqlite3 FILE .recover` before starting afresh.',
      { cause: err, context: { file } },
    )
  }
  return new GateError('E_DB_OPEN', `cannot open ${file}: ${(err as Error).message}`, {
    cause: err,
    context: { file, code },
  })
}

/** PRAGMA quick_check on an open database: 'ok' or the problems found. */
export function quickCheck(db: Db): string[] {
  const rows = db.pragma('quick_check') as Array<{ quick_check: string }>
  return rows.map((r) => r.quick_check)
}

/** A value from the meta table. */
export function getMeta(db: Db, key: string): string | undefined {
  const row = db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined
  return row?.value
}

/** Set a value in the meta table. */
export function setMeta(db: Db, key: string, value: string): void {
  db.prepare(
    'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
  ).run(key, value)
}

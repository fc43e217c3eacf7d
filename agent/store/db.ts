import { closeSync, fsyncSync, linkSync, openSync, readSync, renameSync, rmSync, statSync } from 'node:fs'
import path from 'node:path'
import Database from 'better-sqlite3'
import { GateError } from '../../shared/errors.js'
import { APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION } from './schema.js'

/** A connection to the agent database (better-sqlite3). */
export type Db = Database.Database

const SQLITE_HEADER = Buffer.from('SQLite format 3\0', 'latin1')

/** Options for opening the agent database. */
export interface OpenOptions {
  /** open read-only (gatectl while the daemon is down); never creates or migrates */
  readonly?: boolean
  /** run quick_check on a read-only connection first, and refuse a damaged file before any write */
  verify?: boolean
}

/**
 * Open (and, unless read-only, create or migrate) the agent's SQLite database.
 * A file that is not ours, corrupted, empty, or from a newer agent gives a clear GateError and is left untouched.
 */
export function openDatabase(file: string, opts: OpenOptions = {}): Db {
  const state = databaseFileState(file)
  if (state === 'missing') {
    if (opts.readonly)
      throw new GateError(
        'E_DB_OPEN',
        `no agent database at ${file} (has the agent ever run with this data directory?)`,
      )
    createDatabase(file)
  } else {
    checkHeader(file)
    if (opts.verify) verifyDatabase(file)
  }
  let db: Db
  try {
    db = new Database(file, { readonly: opts.readonly === true, fileMustExist: true })
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

/**
 * 'missing' (a new data directory: the agent creates the file) or 'present'. Anything else where the
 * database should be is refused with a clear error: a directory, a device, and an empty file, which
 * SQLite would silently take for a new database although it is where one was (a database this
 * agent creates is never empty: see createDatabase).
 */
export function databaseFileState(file: string): 'missing' | 'present' {
  let stats: ReturnType<typeof statSync>
  try {
    stats = statSync(file)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') {
      // SQLite would play a leftover WAL into the new file as if it were its own: a database is gone
      const wal = fileSize(`${file}-wal`)
      if (wal > 0)
        throw new GateError(
          'E_DB_CORRUPT',
          `${file} is missing but its write-ahead log ${file}-wal (${wal} bytes) is there: a database was there and is lost; ` +
            `both were left untouched. To start with a new, empty database deliberately, move ${file}-wal away (or delete it) and start again.`,
          { context: { file, wal } },
        )
      return 'missing'
    }
    throw new GateError('E_DB_OPEN', `cannot open ${file}: ${code ?? String(err)}`, {
      cause: err,
      context: { file, code },
    })
  }
  if (stats.isDirectory())
    throw new GateError(
      'E_DB_OPEN',
      `${file} is a directory, not the agent's database file; it was left untouched. ` +
        'Move it away, or point --data-dir (GATE_DATA_DIR) at the agent data directory.',
      { context: { file } },
    )
  if (!stats.isFile())
    throw new GateError('E_DB_OPEN', `${file} is not a regular file; it was left untouched.`, {
      context: { file },
    })
  if (stats.size === 0)
    throw new GateError(
      'E_DB_CORRUPT',
      `${file} is empty (0 bytes): a database was there and its content is lost (a disk or file system ` +
        'fault, or a file truncated by hand); it was left untouched, and nothing starts afresh on its own. ' +
        `To start with a new, empty database deliberately, delete it (rm -f ${file} ${file}-wal ${file}-shm) and start the agent again.`,
      { context: { file, size: 0 } },
    )
  return 'present'
}

function fileSize(file: string): number {
  try {
    return statSync(file).size
  } catch {
    return 0
  }
}

/**
 * Create a new database: made and migrated under another name, then linked into place, so that a
 * crash while creating it never leaves an empty or half-made agent.db behind (one that would be
 * refused at the next start). Another process that created it meanwhile wins: its file is kept.
 */
function createDatabase(file: string): void {
  const tmp = `${file}.new`
  for (const leftover of [tmp, `${tmp}-wal`, `${tmp}-shm`, `${tmp}-journal`])
    rmSync(leftover, { force: true })
  let db: Db
  try {
    db = new Database(tmp)
  } catch (err) {
    throw mapSqliteError(err, file)
  }
  try {
    db.pragma('journal_mode = WAL')
    db.pragma('synchronous = FULL')
    migrate(db)
    // closing the only connection checkpoints the WAL into the file (fsynced) and removes it
    db.close()
    try {
      linkSync(tmp, file)
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      // a file system without hard links (FAT, some FUSE ones) gets a rename: the same, but for the race
      if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP' || code === 'ENOSYS')
        renameSync(tmp, file)
      else if (code !== 'EEXIST') throw err
    }
    const dir = openSync(path.dirname(file), 'r')
    try {
      fsyncSync(dir)
    } finally {
      closeSync(dir)
    }
  } catch (err) {
    if (db.open) db.close()
    throw mapSqliteError(err, file)
  } finally {
    for (const leftover of [tmp, `${tmp}-wal`, `${tmp}-shm`, `${tmp}-journal`])
      rmSync(leftover, { force: true })
  }
}

/**
 * PRAGMA quick_check on a read-only connection (which never writes the file or its WAL), before a
 * writer opens it: a damaged file is refused (E_DB_CORRUPT) rather than written into.
 */
export function verifyDatabase(file: string): void {
  let db: Db | null = null
  let problems: string[]
  try {
    db = new Database(file, { readonly: true, fileMustExist: true })
    db.pragma('busy_timeout = 5000')
    checkIdentity(db, file)
    problems = quickCheck(db)
  } catch (err) {
    throw mapSqliteError(err, file)
  } finally {
    db?.close()
  }
  if (!isHealthy(problems)) throw corruptError(file, problems)
}

/** True when quick_check found nothing. */
export function isHealthy(problems: readonly string[]): boolean {
  return problems.length === 1 && problems[0] === 'ok'
}

/**
 * E_DB_CORRUPT for a damaged agent database, saying what still works and what to do (the steps
 * are in the operators' notes on a corrupted agent.db).
 */
export function corruptError(file: string, problems: readonly string[], cause?: unknown): GateError {
  const dir = path.dirname(file)
  const found =
    problems.length > 0
      ? ` (${problems.slice(0, 3).join('; ')}${problems.length > 3 ? `; ${problems.length - 3} more` : ''})`
      : ''
  return new GateError(
    'E_DB_CORRUPT',
    `${file} is corrupted${found}; it was left untouched: nothing is written into a damaged database.\n` +
      `To start again: stop the agent (sudo systemctl stop gate-agent), move agent.db and its -wal and -shm files aside together (mkdir ${dir}/damaged && mv ${dir}/agent.db* ${dir}/damaged/), ` +
      'and start it: it makes a new database and takes the roster from the cloud again (or gatectl roster import FILE).\n' +
      `Check-ins not yet synced stay in the copy: gatectl --data-dir ${dir}/damaged checkins count shows them when their pages are readable, ` +
      `and sqlite3 ${dir}/damaged/agent.db .dump keeps every readable row (the steps to put them back: the notes on a corrupted agent.db).`,
    { ...(cause === undefined ? {} : { cause }), context: { file, problems: problems.slice(0, 20) } },
  )
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
    db.prepare("SELECT count(*) AS count FROM sqlite_master WHERE type = 'table'").get() as { count: number }
  ).count
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
  for (let version = current; version < SCHEMA_VERSION; version++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[version]!)
      db.pragma(`application_id = ${APPLICATION_ID}`)
      db.pragma(`user_version = ${version + 1}`)
    }).immediate()
  }
}

/** Turn a SQLite error into a GateError that tells a technician what happened. */
export function mapSqliteError(err: unknown, file: string): Error {
  if (err instanceof GateError) return err
  const code = (err as { code?: string }).code ?? ''
  if (code === 'SQLITE_CORRUPT' || code === 'SQLITE_NOTADB' || code.startsWith('SQLITE_CORRUPT'))
    return corruptError(file, [`${code}: ${(err as Error).message}`], err)
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

/** True for an error thrown by SQLite (better-sqlite3's SqliteError carries a SQLITE_* code). */
export function isSqliteError(err: unknown): boolean {
  return err instanceof Database.SqliteError
}

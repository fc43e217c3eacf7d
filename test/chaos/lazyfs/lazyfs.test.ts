import { spawn } from 'node:child_process'
import {
  closeSync,
  existsSync,
  fsyncSync,
  ftruncateSync,
  openSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import Database from 'better-sqlite3'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { tempDir } from '../../support/helpers.js'
import { type LazyFs, lazyFsUnavailable, mountLazyFs } from './lazyfs.js'

const why = lazyFsUnavailable()
if (why) console.error(`lazyfs tests skipped: ${why}`)

/** write (and with `sync`, fsync) a file, closing it before the test goes on (a cut kills holders) */
function put(file: string, data: string, opts: { sync?: boolean; flag?: string } = {}): void {
  const fd = openSync(file, opts.flag ?? 'w')
  writeSync(fd, data)
  if (opts.sync) fsyncSync(fd)
  closeSync(fd)
}
const fsyncPath = (p: string) => {
  const fd = openSync(p, 'r')
  fsyncSync(fd)
  closeSync(fd)
}
const read = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8') : null)

/**
 * A writer in its own process: commits rows one by one (WAL, the given synchronous) and prints each
 * id once its commit returned, as the agent emits a decision once its commit returned.
 */
const WRITER = `
const Database = require(${JSON.stringify(createRequire(import.meta.url).resolve('better-sqlite3'))})
const db = new Database(process.argv[1])
db.pragma('journal_mode = WAL')
db.pragma('synchronous = ' + process.argv[2])
db.exec('CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)')
const ins = db.prepare('INSERT INTO t (v) VALUES (?)')
const step = () => {
  for (let i = 0; i < 20; i++) process.stdout.write(ins.run('x'.repeat(300)).lastInsertRowid + '\\n')
  setImmediate(step)
}
step()
`

/** Run the writer on `file` for `ms`, cut the power under it, and return the ids it reported committed. */
async function writeThenCut(fs: LazyFs, file: string, synchronous: string, ms: number, torn = false) {
  const child = spawn(process.execPath, ['-e', WRITER, file, synchronous], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  let err = ''
  child.stdout.on('data', (b: Buffer) => {
    out += b.toString()
  })
  child.stderr.on('data', (b: Buffer) => {
    err += b.toString()
  })
  const exited = new Promise((r) => child.once('exit', (code, signal) => r(signal ?? code)))
  await new Promise((r) => setTimeout(r, ms))
  // the writer is not named: the cut finds it by its open files on the mount (or it died first, of
  // the EIO that every operation meets once the power is gone)
  await fs.cut({ torn })
  const how = await exited
  expect(how === 'SIGKILL' || /disk I\/O error/.test(err), err).toBe(true)
  return out
    .split('\n')
    .filter((l) => /^\d+$/.test(l))
    .map(Number)
}

describe.skipIf(why !== null)('lazyfs: a filesystem that loses what was not fsynced at a power cut', () => {
  const tmp = tempDir('lazyfs-')
  let fs: LazyFs
  let m: string
  const at = (...p: string[]) => path.join(m, ...p)

  beforeAll(async () => {
    fs = await mountLazyFs(tmp.dir)
    m = fs.mountpoint
  })
  afterAll(async () => {
    await fs?.unmount()
    tmp.cleanup()
  }, 60_000)

  it('drops data written without fsync, keeps data fsynced', async () => {
    put(at('a'), 'kept', { sync: true })
    put(at('b'), 'lost')
    fsyncPath(m) // both names are durable, not b's data
    put(at('a'), '+also lost', { flag: 'a' })
    expect(read(at('a'))).toBe('kept+also lost') // until the cut, the processes see everything
    const { droppedBytes } = await fs.cut()
    expect(droppedBytes).toBeGreaterThanOrEqual('lost'.length + '+also lost'.length)
    expect(read(at('a'))).toBe('kept')
    expect(read(at('b'))).toBe('') // its name was durable, its data never was
  })

  it('loses a file created and fsynced in a directory never fsynced, keeps it once the directory is', async () => {
    put(at('new'), 'data', { sync: true })
    await fs.cut()
    expect(read(at('new'))).toBeNull()
    put(at('new'), 'data', { sync: true })
    fsyncPath(m)
    await fs.cut()
    expect(read(at('new'))).toBe('data')
  })

  it('keeps the old name of a file renamed without a directory fsync, the new one with it', async () => {
    put(at('r1'), 'content', { sync: true })
    fsyncPath(m)
    renameSync(at('r1'), at('r2'))
    await fs.cut()
    expect([read(at('r1')), read(at('r2'))]).toEqual(['content', null])
    renameSync(at('r1'), at('r2'))
    fsyncPath(m)
    await fs.cut()
    expect([read(at('r1')), read(at('r2'))]).toEqual([null, 'content'])
  })

  it('brings back a file unlinked without a directory fsync, with its durable data', async () => {
    put(at('u'), 'durable', { sync: true })
    fsyncPath(m)
    unlinkSync(at('u'))
    // a new file under the same name (the backing inode number may be reused): its own identity
    put(at('u'), 'other, never fsynced')
    await fs.cut()
    expect(read(at('u'))).toBe('durable')
    unlinkSync(at('u'))
    fsyncPath(m)
    await fs.cut()
    expect(read(at('u'))).toBeNull()
  })

  it('makes a truncate durable only with an fsync (and the bytes after it zeros)', async () => {
    put(at('t'), 'abcdefghij', { sync: true })
    fsyncPath(m)
    const fd = openSync(at('t'), 'r+')
    ftruncateSync(fd, 2)
    closeSync(fd)
    await fs.cut()
    expect(read(at('t'))).toBe('abcdefghij')
    const fd2 = openSync(at('t'), 'r+')
    ftruncateSync(fd2, 2)
    writeSync(fd2, 'Z', 5) // past the new end: the gap is zeros, not the old bytes
    fsyncSync(fd2)
    closeSync(fd2)
    await fs.cut()
    expect(read(at('t'))).toBe('ab\0\0\0Z')
  })

  it('keeps nothing when told to ignore fsync (a disk that lies), and waits on each fsync when told to', async () => {
    await fs.ignoreFsync(true)
    put(at('liar'), 'gone', { sync: true })
    fsyncPath(m)
    await fs.cut()
    expect(read(at('liar'))).toBeNull()
    await fs.ignoreFsync(false) // a new mount: back to honest anyway
    await fs.setFsyncDelay(60, 80)
    const t0 = performance.now()
    put(at('slow'), 'x', { sync: true })
    expect(performance.now() - t0).toBeGreaterThanOrEqual(55)
    await fs.setFsyncDelay(0, 0)
  })

  it('kills the processes that hold files on the mount, and only those', async () => {
    put(at('held'), 'x', { sync: true })
    const holder = spawn('sh', ['-c', `exec 3<${at('held')}; sleep 60`], { stdio: 'ignore' })
    const bystander = spawn('sleep', ['60'], { stdio: 'ignore' })
    await new Promise((r) => setTimeout(r, 300))
    const { killed } = await fs.cut()
    expect(killed).toContain(holder.pid)
    expect(killed).not.toContain(bystander.pid)
    bystander.kill()
  })

  it('keeps every commit SQLite reported (WAL, synchronous=FULL) through cuts, plain and torn, and the file sound', async () => {
    const file = at('w.db')
    let reported = 0
    for (const torn of [false, true, false, true]) {
      const ids = await writeThenCut(fs, file, 'FULL', 400 + Math.random() * 400, torn)
      expect(ids.length).toBeGreaterThan(10)
      reported += ids.length
      const db = new Database(file)
      try {
        expect(db.pragma('integrity_check', { simple: true })).toBe('ok')
        const have = new Set(db.prepare('SELECT id FROM t').pluck().all() as number[])
        expect(ids.filter((id) => !have.has(id))).toEqual([])
      } finally {
        db.close()
      }
    }
    expect(reported).toBeGreaterThan(40)
  })

  it('loses commits SQLite reported when it does not fsync (synchronous=OFF): the cut is real', async () => {
    const file = at('off.db')
    // the file and its WAL made durable first, so what is lost is the commits, not the file
    const db0 = new Database(file)
    db0.pragma('journal_mode = WAL')
    db0.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)')
    db0.close()
    const ids = await writeThenCut(fs, file, 'OFF', 500)
    const db = new Database(file)
    try {
      const have = new Set(db.prepare('SELECT id FROM t').pluck().all() as number[])
      const lost = ids.filter((id) => !have.has(id))
      expect(ids.length).toBeGreaterThan(10)
      expect(lost.length).toBeGreaterThan(0)
    } finally {
      db.close()
    }
  })
})

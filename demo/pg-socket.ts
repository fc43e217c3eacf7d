import { chmodSync, lstatSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { GateError } from '../shared/errors.js'

/** The name Postgres gives its socket for port 5432, the port a client assumes when none is given. */
const SOCKET_NAME = '.s.PGSQL.5432'
/** a socket address holds 108 bytes on Linux and 104 on macOS, the final NUL included */
const MAX_SOCKET_PATH = 103

/** Where the embedded Postgres listens, and the URL that reaches it. */
export interface PgSocket {
  /** the directory of the socket: this user's alone (0700) */
  dir: string
  path: string
  /** postgres://postgres@/postgres?host=DIR: what `pg` and libpq (psql) take for a Unix socket */
  url: string
  /** remove the socket (and a directory made for it) */
  cleanup(): void
}

/** Nothing answers on `file` (a socket left by a process that died): true; a live server: false. */
function isStale(file: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(file)
    s.once('connect', () => {
      s.destroy()
      resolve(false)
    })
    s.once('error', () => resolve(true))
  })
}

/**
 * A Unix socket for the embedded Postgres in `dir`, a directory of this user's alone (made or set
 * to 0700, refused when it is someone else's or a link), so that no other local user can reach a
 * server that asks no password, as they could on a loopback port. A path too long for a socket
 * address gets a private directory in the temp dir instead (mkdtemp: 0700). A socket left by a
 * run that died is removed; one a live server answers on is an error (two demos on one data dir).
 */
export async function pgSocket(dir: string): Promise<PgSocket> {
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  const tooLong = path.join(dir, SOCKET_NAME).length > MAX_SOCKET_PATH
  const sockDir = tooLong ? mkdtempSync(path.join(os.tmpdir(), 'gate-pg-')) : dir
  const st = lstatSync(sockDir)
  if (!st.isDirectory() || (process.getuid && st.uid !== process.getuid()))
    throw new GateError(
      'E_CONFIG_INVALID',
      `${sockDir} is not a directory of this user's: the embedded Postgres socket cannot go there`,
    )
  chmodSync(sockDir, 0o700)
  const file = path.join(sockDir, SOCKET_NAME)
  const existing = lstatSync(file, { throwIfNoEntry: false })
  if (existing) {
    if (!existing.isSocket() || !(await isStale(file)))
      throw new GateError(
        'E_CONFIG_INVALID',
        `${file} is in use: is another \`npm start\` (gate-demo) running on this data directory?`,
      )
    rmSync(file, { force: true })
  }
  // libpq and pg decode the query string: only characters a path may hold unescaped are left as they are
  const host = sockDir.replace(/[^\w/.-]/g, (c) => encodeURIComponent(c))
  return {
    dir: sockDir,
    path: file,
    url: `postgres://postgres@/postgres?host=${host}`,
    cleanup: () => {
      rmSync(file, { force: true })
      if (tooLong) rmSync(sockDir, { recursive: true, force: true })
    },
  }
}

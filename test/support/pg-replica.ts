import { execFileSync } from 'node:child_process'
import { appendFileSync, chmodSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { freePort } from './helpers.js'

function pgBin(name: string): string {
  const root = '/usr/lib/postgresql'
  const versions = existsSync(root) ? readdirSync(root).sort() : []
  const v = versions[versions.length - 1]
  if (!v)
    throw new Error('no PostgreSQL server binaries under /usr/lib/postgresql (apt-get install postgresql)')
  return path.join(root, v, 'bin', name)
}

/**
 * A throw-away Postgres primary and its streaming replica on loopback, in a temporary directory:
 * initdb, pg_basebackup -R, two postmasters (run as the postgres user when this process is root).
 * The machine's own cluster is not touched.
 */
export async function startReplicaPair(): Promise<{
  primaryUrl: string
  replicaUrl: string
  stopReplica: () => void
  startReplica: () => void
  stop: () => void
}> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'gate-pg-pair-'))
  chmodSync(dir, 0o777)
  const asPg = (bin: string, args: string[]) => {
    const cmd = pgBin(bin)
    const root = process.getuid?.() === 0
    execFileSync(root ? 'runuser' : cmd, root ? ['-u', 'postgres', '--', cmd, ...args] : args, {
      stdio: 'pipe',
      timeout: 60_000,
    })
  }
  const pPort = await freePort()
  const rPort = await freePort()
  const primary = path.join(dir, 'primary')
  const replica = path.join(dir, 'replica')
  asPg('initdb', ['-D', primary, '-A', 'trust', '-U', 'postgres', '--no-sync'])
  appendFileSync(
    path.join(primary, 'postgresql.conf'),
    `\nport = ${pPort}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '${dir}'\nwal_level = replica\nmax_wal_senders = 5\nfsync = off\n`,
  )
  asPg('pg_ctl', ['-D', primary, '-l', path.join(dir, 'primary.log'), '-w', 'start'])
  asPg('pg_basebackup', [
    '-h',
    '127.0.0.1',
    '-p',
    String(pPort),
    '-U',
    'postgres',
    '-D',
    replica,
    '-R',
    '-X',
    'stream',
  ])
  appendFileSync(path.join(replica, 'postgresql.conf'), `\nport = ${rPort}\nhot_standby = on\n`)
  const startReplica = () =>
    asPg('pg_ctl', ['-D', replica, '-l', path.join(dir, 'replica.log'), '-w', 'start'])
  const stopReplica = () => asPg('pg_ctl', ['-D', replica, '-m', 'immediate', '-w', 'stop'])
  startReplica()
  return {
    primaryUrl: `postgres://postgres@127.0.0.1:${pPort}/postgres`,
    replicaUrl: `postgres://postgres@127.0.0.1:${rPort}/postgres`,
    stopReplica,
    startReplica,
    stop: () => {
      for (const d of [replica, primary]) {
        try {
          asPg('pg_ctl', ['-D', d, '-m', 'immediate', '-w', 'stop'])
        } catch {
          // already stopped
        }
      }
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

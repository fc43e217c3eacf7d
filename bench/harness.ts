/** What the cloud benchmarks share: a scratch database, a `gate-cloud serve` process, tables. */
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { openSync, readdirSync, readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { fileURLToPath } from 'node:url'
import pg from 'pg'

const ADMIN_URL = process.env['BENCH_DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres'

export const fmt = (n: number, d = 0) =>
  Number.isFinite(n) ? n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d }) : '-'

/** A database of its own for one run, dropped (with FORCE) by `drop`. */
export async function scratchDatabase(prefix: string): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `${prefix}_${randomBytes(4).toString('hex')}`
  const admin = new pg.Client({ connectionString: ADMIN_URL })
  await admin.connect()
  await admin.query(`CREATE DATABASE ${name}`)
  const u = new URL(ADMIN_URL)
  u.pathname = `/${name}`
  return {
    url: u.toString(),
    drop: async () => {
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
      await admin.end()
    },
  }
}

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const a = s.address()
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0))
    })
  })

/**
 * `gate-cloud serve` (compiled) as its own process, ready when /readyz answers; BENCH_SERVICE_NODE_ARGS
 * adds node options (a CPU profile). `stop` sends SIGTERM and waits up to 5 s.
 */
export async function startService(
  env: Record<string, string>,
): Promise<{ url: string; pid: number; stop: () => Promise<void> }> {
  const port = await freePort()
  const mainJs = fileURLToPath(new URL('../cloud/main.js', import.meta.url))
  // BENCH_SERVICE_LOG=<file>: the service's log (warnings and up) goes there instead of nowhere
  const logFile = process.env['BENCH_SERVICE_LOG']
  const service = spawn(
    process.execPath,
    [...(process.env['BENCH_SERVICE_NODE_ARGS']?.split(' ').filter(Boolean) ?? []), mainJs, 'serve'],
    {
      env: { ...process.env, PORT: String(port), LOG_LEVEL: 'warn', ...env },
      stdio: ['ignore', logFile ? openSync(logFile, 'a') : 'ignore', 'inherit'],
    },
  )
  const url = `http://127.0.0.1:${port}`
  for (let i = 0; i < 300; i++) {
    try {
      if ((await fetch(`${url}/readyz`)).ok) break
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  return {
    url,
    pid: service.pid ?? 0,
    stop: async () => {
      if (service.exitCode !== null) return
      const exited = new Promise((r) => service.once('exit', r))
      service.kill('SIGTERM')
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000))])
    },
  }
}

/** A Markdown table, columns padded (the first row is the header). */
export function printTable(rows: string[][]): void {
  const w = (rows[0] ?? []).map((_, c) => Math.max(...rows.map((r) => r[c]?.length ?? 0)))
  const line = (r: string[]) => `| ${r.map((x, c) => x.padEnd(w[c] ?? 0)).join(' | ')} |`
  console.log(line(rows[0] ?? []))
  console.log(`|${w.map((x) => '-'.repeat(x + 2)).join('|')}|`)
  for (const r of rows.slice(1)) console.log(line(r))
}

/** CPU time (user + system) of a process so far, seconds, from /proc (Linux). */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  // the command name may hold spaces: the fields after its closing parenthesis are fixed
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(f[11]) + Number(f[12])) / 100 // utime, stime in clock ticks (USER_HZ = 100)
}

/** Resident memory of a process now, bytes, from /proc (Linux). */
export function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m ? Number(m[1]) * 1024 : 0
}

/**
 * CPU time so far of every Postgres process on this machine (server and backends), seconds by pid;
 * with `database`, only the backends connected to it (on a machine shared with other work on the
 * same server, the part a benchmark's own sessions spend).
 */
export function postgresCpu(database?: string): Map<number, number> {
  const out = new Map<number, number>()
  for (const name of readdirSync('/proc')) {
    const pid = Number(name)
    if (!Number.isInteger(pid)) continue
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
      // a backend's title: "postgres: 15/main: <user> <database> <client> <state>"
      if (/^(\S*\/)?postgres\b/.test(cmd) && (!database || cmd.split(' ')[3] === database))
        out.set(pid, cpuSeconds(pid))
    } catch {
      // the process ended meanwhile
    }
  }
  return out
}

/** CPU seconds the Postgres processes used between two `postgresCpu()` readings. */
export function postgresCpuSince(before: Map<number, number>, after = postgresCpu()): number {
  let s = 0
  for (const [pid, t] of after) s += t - (before.get(pid) ?? 0)
  return s
}

/** The machine's idle CPU time (idle + iowait, all CPUs) so far, seconds, from /proc/stat. */
export function idleCpuSeconds(): number {
  const f = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').split(/\s+/)
  return (Number(f[4]) + Number(f[5])) / 100
}

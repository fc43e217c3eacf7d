import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'

/**
 * The power-cut filesystem (lazyfs.py beside this file, a FUSE filesystem in Python on Debian's
 * python3-fusepy) driven from the tests: mount it, cut the power (everything not fsynced is gone,
 * the processes using it are killed, it is mounted again on what survived), slow its fsyncs down.
 */

const SCRIPT = path.join(import.meta.dirname, 'lazyfs.py')
// Debian's python3-fusepy is installed for Debian's python, not for another python3 on the PATH
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3'

let unavailable: string | null | undefined

/** Why the power-cut filesystem cannot run on this machine, or null when it can (checked once, by mounting it). */
export function lazyFsUnavailable(): string | null {
  if (unavailable !== undefined) return unavailable
  unavailable = probe()
  return unavailable
}

function probe(): string | null {
  if (process.platform !== 'linux') return `FUSE power-cut tests need Linux (this is ${process.platform})`
  if (!existsSync('/dev/fuse')) return 'no /dev/fuse on this machine (FUSE is not available)'
  const imp = spawnSync(PYTHON, ['-c', 'try:\n import fusepy\nexcept ImportError:\n import fuse'], {
    encoding: 'utf8',
  })
  if (imp.status !== 0)
    return `${PYTHON} cannot import fusepy (apt-get install fuse3 python3-fusepy): ${(imp.stderr ?? imp.error?.message ?? '').trim().split('\n').pop()}`
  const dir = path.join(os.tmpdir(), `lazyfs-probe-${process.pid}`)
  const r = spawnSync(PYTHON, [SCRIPT, '--probe', dir], { encoding: 'utf8', timeout: 30_000 })
  rmSync(dir, { recursive: true, force: true })
  if (r.status !== 0)
    return `a FUSE filesystem cannot be mounted here: ${(r.stderr || r.error?.message || `exit ${r.status}`).trim()}`
  return null
}

/** What a cut did. */
export interface CutReport {
  /** processes killed with SIGKILL (they had files open on the mount, or were named by the caller) */
  killed: number[]
  /** bytes written but never fsynced: thrown away (before `torn` kept about half of them) */
  droppedBytes: number
}

/** Counters of the filesystem, summed over its mounts. */
export interface LazyFsStats {
  writes: number
  fsyncs: number
  dirsyncs: number
  bytesPersisted: number
  droppedBytes: number
  tornPages: number
}

/** A mounted power-cut filesystem. */
export interface LazyFs {
  readonly mountpoint: string
  /**
   * Cut the power: the disk freezes (what was fsynced stays, nothing else ever will), the processes
   * using the mount (and `pids`) are killed with SIGKILL, and it is mounted again on what survived.
   * `torn`: a random half of the pending pages of each file had been written back before the cut.
   */
  cut(opts?: { torn?: boolean; pids?: number[] }): Promise<CutReport>
  /** Each fsync (file or directory) waits a random loMs..hiMs first, as on an SD card; 0, 0 for none. */
  setFsyncDelay(loMs: number, hiMs: number): Promise<void>
  /** A disk that lies: fsync succeeds and makes nothing durable (to show that the tests catch it). */
  ignoreFsync(on: boolean): Promise<void>
  stats(): Promise<LazyFsStats>
  /** The daemon's process id (for a failure message that shows where it is). */
  daemonPid(): number | undefined
  /** Kill what still uses it and unmount it (the tests' afterAll). */
  unmount(): Promise<void>
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
/** LAZYFS_DEBUG=1: the daemon's stderr and each step of a cut on the test's stderr */
const DEBUG = process.env['LAZYFS_DEBUG'] === '1'
const debug = (msg: string) => {
  if (DEBUG) process.stderr.write(`lazyfs: ${msg}\n`)
}

/** One command line to the filesystem's control socket, and its answer. */
function control(socketPath: string, command: string, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(socketPath)
    let buf = ''
    const timer = setTimeout(() => {
      s.destroy()
      reject(new Error(`lazyfs control: no answer to '${command}' within ${timeoutMs} ms`))
    }, timeoutMs)
    s.on('connect', () => s.write(`${command}\n`))
    s.on('data', (b) => {
      buf += b.toString()
      const nl = buf.indexOf('\n')
      if (nl < 0) return
      clearTimeout(timer)
      s.destroy()
      const answer = buf.slice(0, nl)
      if (answer.startsWith('error')) reject(new Error(`lazyfs control '${command}': ${answer}`))
      else resolve(answer)
    })
    s.on('error', (err) => {
      clearTimeout(timer)
      reject(err)
    })
  })
}

/**
 * The processes with a file, a mapping, a working directory or a root on the mount (what a power
 * cut takes down with the disk). Read from /proc without touching the mount itself (it is frozen).
 */
export function processesUsing(mountpoint: string): number[] {
  const inside = (p: string) => p === mountpoint || p.startsWith(`${mountpoint}/`)
  const out: number[] = []
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    const pid = Number(name)
    try {
      const links = ['cwd', 'root']
      try {
        for (const fd of readdirSync(`/proc/${pid}/fd`)) links.push(`fd/${fd}`)
      } catch {
        // gone, or not ours to read
      }
      let uses = links.some((l) => {
        try {
          return inside(readlinkSync(`/proc/${pid}/${l}`))
        } catch {
          return false
        }
      })
      if (!uses) uses = readFileSync(`/proc/${pid}/maps`, 'utf8').includes(` ${mountpoint}/`)
      if (uses) out.push(pid)
    } catch {
      // the process ended while we looked
    }
  }
  return out
}

/**
 * Where each thread of a process is (its state and the kernel function it waits in, and the
 * kernel stack when readable): what a process stuck on the mount shows, for a failure message.
 */
export function threadsOf(pid: number | undefined): string {
  if (pid === undefined) return 'no process'
  const read = (p: string) => {
    try {
      return readFileSync(p, 'utf8').trim()
    } catch {
      return '?'
    }
  }
  try {
    return readdirSync(`/proc/${pid}/task`)
      .map((tid) => {
        const stat = read(`/proc/${pid}/task/${tid}/stat`)
        const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0]
        const comm = read(`/proc/${pid}/task/${tid}/comm`)
        const stack = read(`/proc/${pid}/task/${tid}/stack`).split('\n').slice(0, 6).join(' < ')
        return `thread ${tid} ${comm}: ${state} in ${read(`/proc/${pid}/task/${tid}/wchan`)} [${stack}]`
      })
      .join('\n')
  } catch {
    return `process ${pid} gone`
  }
}

/** true while the process exists and is not a zombie (a zombie holds no files any more). */
function alive(pid: number): boolean {
  try {
    const st = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return !/\) Z /.test(st)
  } catch {
    return false
  }
}

const isMounted = (mountpoint: string) =>
  readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .some((l) => l.split(' ')[1] === mountpoint)

/** Mount a fresh power-cut filesystem under `base` (base/mnt, with its state in base/state). */
export async function mountLazyFs(base: string): Promise<LazyFs> {
  const mountpoint = path.join(base, 'mnt')
  const state = path.join(base, 'state')
  const ctl = path.join(state, 'ctl')
  mkdirSync(mountpoint, { recursive: true })
  mkdirSync(state, { recursive: true })
  let daemon: ChildProcess | null = null
  let daemonExited: Promise<unknown> = Promise.resolve()
  let log = ''
  const total: LazyFsStats = {
    writes: 0,
    fsyncs: 0,
    dirsyncs: 0,
    bytesPersisted: 0,
    droppedBytes: 0,
    tornPages: 0,
  }

  const start = async () => {
    rmSync(ctl, { force: true })
    const d = spawn(PYTHON, [SCRIPT, state, mountpoint], { stdio: ['ignore', 'ignore', 'pipe'] })
    d.stderr?.on('data', (b: Buffer) => {
      log = (log + b.toString()).slice(-20_000)
      debug(b.toString().trimEnd())
    })
    daemon = d
    daemonExited = new Promise((r) => d.once('exit', r))
    const until = Date.now() + 30_000
    while (Date.now() < until) {
      if (d.exitCode !== null) throw new Error(`lazyfs exited (${d.exitCode}) before it was mounted:\n${log}`)
      if (existsSync(ctl) && (await control(ctl, 'ping').catch(() => '')) === 'ok') return
      await sleep(50)
    }
    throw new Error(`lazyfs was not mounted within 30 s:\n${log}`)
  }

  const readStats = async (): Promise<LazyFsStats> => JSON.parse(await control(ctl, 'stats')) as LazyFsStats

  /** Kill the processes using the mount, then unmount it and wait for the daemon to end. */
  const takeDown = async (pids: number[]): Promise<number[]> => {
    const victims = [...new Set([...pids, ...processesUsing(mountpoint)])].filter(
      (p) => p !== daemon?.pid && alive(p),
    )
    if (victims.includes(process.pid))
      throw new Error(
        'the test process itself has files open on the lazyfs mount: it would be killed by a cut',
      )
    for (const p of victims) {
      try {
        process.kill(p, 'SIGKILL')
      } catch {
        // already gone
      }
    }
    debug(`killed ${victims.join(' ')}`)
    const until = Date.now() + 10_000
    while (victims.some(alive) && Date.now() < until) await sleep(20)
    debug(`dead: ${victims.filter((p) => !alive(p)).join(' ')}; unmounting`)
    for (let i = 0; isMounted(mountpoint); i++) {
      const u = spawnSync('fusermount', ['-u', mountpoint], { encoding: 'utf8' })
      if (u.status === 0) break
      if (i >= 50) {
        // still busy after 5 s: detach it, and end the daemon (its users get ENOTCONN)
        spawnSync('umount', ['-l', mountpoint])
        daemon?.kill('SIGKILL')
        break
      }
      await sleep(100)
    }
    debug('unmounted; waiting for the daemon')
    await Promise.race([daemonExited, sleep(10_000)])
    if (daemon && daemon.exitCode === null && daemon.signalCode === null) daemon.kill('SIGKILL')
    await daemonExited
    daemon = null
    return victims
  }

  const addStats = (s: LazyFsStats) => {
    for (const k of Object.keys(total) as Array<keyof LazyFsStats>) total[k] += s[k]
  }

  await start()
  return {
    mountpoint,
    async cut(opts = {}) {
      debug(`cut${opts.torn ? ' torn' : ''}`)
      await control(ctl, opts.torn ? 'cut torn' : 'cut')
      const s = await readStats()
      addStats(s)
      const killed = await takeDown(opts.pids ?? [])
      await start()
      debug('mounted again')
      return { killed, droppedBytes: s.droppedBytes }
    },
    async setFsyncDelay(loMs, hiMs) {
      await control(ctl, `delay ${loMs} ${hiMs}`)
    },
    async ignoreFsync(on) {
      await control(ctl, `ignore-fsync ${on ? 1 : 0}`)
    },
    async stats() {
      const s = await readStats()
      const out = { ...total }
      for (const k of Object.keys(out) as Array<keyof LazyFsStats>) out[k] += s[k]
      return out
    },
    daemonPid() {
      return daemon?.pid
    },
    async unmount() {
      if (!daemon) return
      addStats(await readStats().catch(() => zero))
      await takeDown([])
    },
  }
}

const zero: LazyFsStats = {
  writes: 0,
  fsyncs: 0,
  dirsyncs: 0,
  bytesPersisted: 0,
  droppedBytes: 0,
  tornPages: 0,
}

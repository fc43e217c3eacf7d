import { execFile } from 'node:child_process'
import { readdirSync, readFileSync, realpathSync, statfsSync } from 'node:fs'
import path from 'node:path'
import { errorMessage } from '../../shared/errors.js'
import type { Scheduling } from '../../shared/status.js'
import { describeScheduling } from '../lifecycle/scheduling.js'

/** One doctor check: pass, warn (works but watch it) or fail (the gate cannot work), and how to fix it. */
export interface CheckResult {
  name: string
  status: 'pass' | 'warn' | 'fail'
  detail: string
  fix?: string
}

/** What the checks read from the machine; injected so every branch can be tested without hardware. */
export interface SystemProbes {
  readdir(dir: string): string[]
  readFile(file: string): string
  statfs(dir: string): { bsize: number; blocks: number; bavail: number }
  uid(): number
  realpath(file: string): string
  /** run a program; null when it is not installed */
  run(cmd: string, args: string[]): Promise<{ code: number; stdout: string } | null>
  now(): number
  nodePath: string
}

/** The probes on the real machine: its files, its /proc, its commands. */
export const realProbes: SystemProbes = {
  readdir: (d) => readdirSync(d),
  readFile: (f) => readFileSync(f, 'utf8'),
  statfs: (dir) => {
    const stats = statfsSync(dir)
    return { bsize: stats.bsize, blocks: stats.blocks, bavail: stats.bavail }
  },
  uid: () => process.getuid?.() ?? -1,
  realpath: (p) => realpathSync(p),
  run: (cmd, args) =>
    new Promise((resolve) => {
      execFile(cmd, args, { timeout: 5_000 }, (err, stdout) => {
        if (err && (err as NodeJS.ErrnoException).code === 'ENOENT') return resolve(null)
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0
        resolve({ code, stdout: String(stdout) })
      })
    }),
  now: () => Date.now(),
  nodePath: process.execPath,
}

const CAP_NET_ADMIN = 12
const CAP_NET_RAW = 13
const MB = 1024 * 1024

const SETCAP_FIX =
  'sudo setcap cap_net_raw,cap_net_admin+eip "$(readlink -f "$(command -v node)")", or run the agent from deploy/systemd/gate-agent.service (it grants both as AmbientCapabilities)'

/**
 * The daemon's event-loop thread should be realtime on a gate: at normal priority, a decision whose
 * commit has returned can wait for a CPU behind other processes for a scheduler tick or more
 * (measured: docs/benchmarks.md). The systemd unit sets it; a warning, not a failure, as the gate works.
 */
export function checkScheduling(scheduling: Scheduling | null | undefined): CheckResult {
  const name = 'event-loop scheduling'
  if (!scheduling)
    return { name, status: 'warn', detail: 'unknown (no /proc/thread-self/stat on this system)' }
  if (scheduling.policy === 'rr' || scheduling.policy === 'fifo')
    return { name, status: 'pass', detail: describeScheduling(scheduling) }
  return {
    name,
    status: 'warn',
    detail: `${describeScheduling(scheduling)}: under CPU load a decision can wait for the CPU after its commit`,
    fix: 'run the agent from deploy/systemd/gate-agent.service (its ExecStartPost makes the event loop SCHED_RR 5), or: sudo chrt --rr --reset-on-fork --pid 5 "$(systemctl show -p MainPID --value gate-agent)"',
  }
}

/** A Bluetooth adapter (hciN) is present. */
export function checkAdapter(probes: SystemProbes): CheckResult {
  let hcis: string[]
  try {
    hcis = probes.readdir('/sys/class/bluetooth').filter((d) => /^hci\d+$/.test(d))
  } catch {
    hcis = []
  }
  if (hcis.length === 0) {
    return {
      name: 'bluetooth adapter',
      status: 'fail',
      detail: 'no Bluetooth adapter found (/sys/class/bluetooth has no hciN)',
      fix: 'plug in a BLE 4.0+ USB adapter, or on a Raspberry Pi make sure config.txt has no dtoverlay=disable-bt and the hciuart service runs; for tests without a radio use --source sim',
    }
  }
  return { name: 'bluetooth adapter', status: 'pass', detail: `found ${hcis.join(', ')}` }
}

/** No rfkill switch blocks the Bluetooth radio. */
export function checkRfkill(probes: SystemProbes): CheckResult {
  let entries: string[]
  try {
    entries = probes.readdir('/sys/class/rfkill')
  } catch {
    return {
      name: 'radio not blocked (rfkill)',
      status: 'pass',
      detail: 'no rfkill switches on this machine',
    }
  }
  const blocked: string[] = []
  let bluetooth = 0
  for (const entry of entries) {
    const dir = path.join('/sys/class/rfkill', entry)
    let type: string
    try {
      type = probes.readFile(path.join(dir, 'type')).trim()
    } catch {
      continue
    }
    if (type !== 'bluetooth') continue
    bluetooth++
    const read = (file: string) => {
      try {
        return probes.readFile(path.join(dir, file)).trim()
      } catch {
        return '0'
      }
    }
    if (read('hard') === '1') blocked.push(`${entry} (hard: a hardware switch)`)
    else if (read('soft') === '1') blocked.push(`${entry} (soft)`)
  }
  if (blocked.length > 0) {
    return {
      name: 'radio not blocked (rfkill)',
      status: 'fail',
      detail: `Bluetooth is blocked: ${blocked.join(', ')}`,
      fix: 'sudo rfkill unblock bluetooth (a hard block needs the switch)',
    }
  }
  return {
    name: 'radio not blocked (rfkill)',
    status: 'pass',
    detail: bluetooth === 0 ? 'no Bluetooth rfkill switch' : 'Bluetooth not blocked',
  }
}

/** Capability bits from /proc/self/status (CapEff is hex). */
export function parseCapEff(status: string): bigint | null {
  const match = /^CapEff:\s*([0-9a-fA-F]+)$/m.exec(status)
  return match?.[1] ? BigInt(`0x${match[1]}`) : null
}

/** The agent may scan: root, or CAP_NET_RAW and CAP_NET_ADMIN held by this process or set on the node binary. */
export async function checkRadioPermission(probes: SystemProbes): Promise<CheckResult> {
  const name = 'radio permissions (CAP_NET_RAW, CAP_NET_ADMIN)'
  if (probes.uid() === 0) return { name, status: 'pass', detail: 'running as root' }
  const eff = (() => {
    try {
      return parseCapEff(probes.readFile('/proc/self/status'))
    } catch {
      return null
    }
  })()
  const has = (bits: bigint | null) =>
    bits !== null &&
    (bits & (1n << BigInt(CAP_NET_RAW))) !== 0n &&
    (bits & (1n << BigInt(CAP_NET_ADMIN))) !== 0n
  if (has(eff)) return { name, status: 'pass', detail: 'this process holds both capabilities' }
  let node = probes.nodePath
  try {
    node = probes.realpath(probes.nodePath)
  } catch {
    // keep the path as given
  }
  const getcap = await probes.run('getcap', [node])
  if (getcap && /cap_net_admin/.test(getcap.stdout) && /cap_net_raw/.test(getcap.stdout)) {
    return {
      name,
      status: 'pass',
      detail: `${node} has file capabilities: ${getcap.stdout.trim().split(/\s+/).slice(1).join(' ')}`,
    }
  }
  return {
    name,
    status: 'fail',
    detail: `not root and ${node} lacks cap_net_raw/cap_net_admin${getcap === null ? ' (getcap not installed: apt-get install libcap2-bin)' : ''}: noble would open the adapter and then see nothing, without any error`,
    fix: SETCAP_FIX,
  }
}

/** The nearest existing directory at or above `dir` (the data directory may not exist yet). */
function existingAncestor(probes: SystemProbes, dir: string): string {
  let candidate = path.resolve(dir)
  for (;;) {
    try {
      probes.statfs(candidate)
      return candidate
    } catch {
      const up = path.dirname(candidate)
      if (up === candidate) return candidate
      candidate = up
    }
  }
}

/** Free space where the data directory is (or will be): a warning under 500 MB or 10 %, a failure under 100 MB or 5 %. */
export function checkDisk(probes: SystemProbes, dataDir: string): CheckResult {
  const dir = existingAncestor(probes, dataDir)
  const space = probes.statfs(dir)
  const free = space.bavail * space.bsize
  const total = space.blocks * space.bsize
  const pct = total > 0 ? (100 * free) / total : 0
  const detail = `${Math.round(free / MB)} MB free of ${Math.round(total / MB)} MB (${pct.toFixed(1)}%) at ${dir}`
  const fix =
    'free space on the SD card (journalctl --vacuum-size=50M, apt-get clean); synced check-ins are pruned after outbox.retentionDays'
  if (free < 100 * MB || pct < 5) return { name: 'disk space', status: 'fail', detail, fix }
  if (free < 500 * MB || pct < 10) return { name: 'disk space', status: 'warn', detail, fix }
  return { name: 'disk space', status: 'pass', detail }
}

/** The wall clock is plausible (a Pi without a real-time clock starts in the past) and NTP-synchronised. */
export async function checkClock(probes: SystemProbes): Promise<CheckResult> {
  const now = new Date(probes.now())
  if (now.getUTCFullYear() < 2025) {
    return {
      name: 'clock',
      status: 'fail',
      detail: `the clock says ${now.toISOString()}: a Raspberry Pi has no real-time clock and NTP has not set it; check-ins would carry wrong times`,
      fix: 'connect the gate to a network with NTP (timedatectl set-ntp true), or add an RTC module; the cloud flags skewed check-ins',
    }
  }
  const result = await probes.run('timedatectl', ['show', '-p', 'NTPSynchronized', '--value'])
  const synced = result?.code === 0 ? result.stdout.trim() : ''
  if (synced === 'yes')
    return { name: 'clock', status: 'pass', detail: `${now.toISOString()}, NTP synchronized` }
  if (synced === 'no') {
    return {
      name: 'clock',
      status: 'warn',
      detail: `${now.toISOString()}, NTP not synchronized`,
      fix: 'timedatectl set-ntp true; check the network reaches an NTP server',
    }
  }
  return {
    name: 'clock',
    status: 'pass',
    detail: `${now.toISOString()} (NTP state unknown: timedatectl unavailable)`,
  }
}

/** Whether BlueZ's bluetoothd runs: it shares the adapter with the agent (a warning when it does). */
export function checkBluetoothd(probes: SystemProbes): CheckResult {
  let running = false
  try {
    for (const pid of probes.readdir('/proc')) {
      if (!/^\d+$/.test(pid)) continue
      try {
        if (probes.readFile(`/proc/${pid}/comm`).trim() === 'bluetoothd') {
          running = true
          break
        }
      } catch {
        // the process went away
      }
    }
  } catch {
    return { name: 'bluetoothd', status: 'pass', detail: 'cannot list processes' }
  }
  return running
    ? {
        name: 'bluetoothd',
        status: 'warn',
        detail: 'BlueZ (bluetoothd) is running and shares the adapter with the agent',
        fix: 'if the adapter stays poweredOff or scans stall: sudo systemctl disable --now bluetooth; sudo hciconfig hci0 up',
      }
    : { name: 'bluetoothd', status: 'pass', detail: 'not running (the agent has the adapter to itself)' }
}

/** Every machine check for a gate; a check that cannot run says so as a warning, never throws. */
export async function runSystemChecks(opts: {
  dataDir: string
  probes?: SystemProbes
}): Promise<CheckResult[]> {
  const probes = opts.probes ?? realProbes
  const checks: Array<[string, () => CheckResult | Promise<CheckResult>]> = [
    ['bluetooth adapter', () => checkAdapter(probes)],
    ['radio not blocked (rfkill)', () => checkRfkill(probes)],
    ['radio permissions (CAP_NET_RAW, CAP_NET_ADMIN)', () => checkRadioPermission(probes)],
    ['bluetoothd', () => checkBluetoothd(probes)],
    ['disk space', () => checkDisk(probes, opts.dataDir)],
    ['clock', () => checkClock(probes)],
  ]
  const out: CheckResult[] = []
  for (const [name, fn] of checks) {
    try {
      out.push(await fn())
    } catch (err) {
      out.push({ name, status: 'warn', detail: `could not check: ${errorMessage(err)}` })
    }
  }
  return out
}

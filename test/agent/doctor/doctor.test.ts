import { spawn, spawnSync } from 'node:child_process'
import os from 'node:os'
import { describe, expect, it } from 'vitest'
import {
  checkAdapter,
  checkClock,
  checkDisk,
  checkRadioPermission,
  checkRfkill,
  checkScheduling,
  parseCapEff,
  runSystemChecks,
  type SystemProbes,
} from '../../../agent/doctor/system-checks.js'
import { parseScheduling, readScheduling } from '../../../agent/lifecycle/scheduling.js'
import { tempDir } from '../../support/helpers.js'

const MB = 1024 * 1024

/** A machine described by a few files; everything else is absent. */
function machine(
  over: Partial<SystemProbes> & { files?: Record<string, string>; dirs?: Record<string, string[]> } = {},
): SystemProbes {
  const files = over.files ?? {}
  const dirs = over.dirs ?? {}
  return {
    readdir: (d) => {
      const e = dirs[d]
      if (!e) throw Object.assign(new Error(`ENOENT ${d}`), { code: 'ENOENT' })
      return e
    },
    readFile: (f) => {
      const c = files[f]
      if (c === undefined) throw Object.assign(new Error(`ENOENT ${f}`), { code: 'ENOENT' })
      return c
    },
    statfs: () => ({ bsize: 4096, blocks: (16_000 * MB) / 4096, bavail: (8_000 * MB) / 4096 }),
    uid: () => 1000,
    realpath: (p) => p,
    run: async () => null,
    now: () => Date.UTC(2026, 10, 25),
    nodePath: '/usr/bin/node',
    ...over,
  }
}

describe('gatectl doctor system checks', () => {
  it('fails without an adapter and passes with one', () => {
    expect(checkAdapter(machine())).toMatchObject({
      status: 'fail',
      fix: expect.stringMatching(/--source sim/),
    })
    expect(checkAdapter(machine({ dirs: { '/sys/class/bluetooth': ['hci0'] } }))).toMatchObject({
      status: 'pass',
      detail: 'found hci0',
    })
  })

  it('fails when rfkill blocks Bluetooth and says how to unblock', () => {
    const m = machine({
      dirs: { '/sys/class/rfkill': ['rfkill0', 'rfkill1'] },
      files: {
        '/sys/class/rfkill/rfkill0/type': 'wlan\n',
        '/sys/class/rfkill/rfkill0/soft': '1\n',
        '/sys/class/rfkill/rfkill1/type': 'bluetooth\n',
        '/sys/class/rfkill/rfkill1/soft': '1\n',
        '/sys/class/rfkill/rfkill1/hard': '0\n',
      },
    })
    expect(checkRfkill(m)).toMatchObject({
      status: 'fail',
      detail: expect.stringMatching(/rfkill1 \(soft\)/),
      fix: expect.stringMatching(/rfkill unblock bluetooth/),
    })
  })

  it('knows when the radio would be silently useless: no root, no capabilities', async () => {
    const none = machine({
      files: { '/proc/self/status': 'Name:\tnode\nCapEff:\t0000000000000000\n' },
      run: async () => ({ code: 0, stdout: '' }),
    })
    const r = await checkRadioPermission(none)
    expect(r.status).toBe('fail')
    expect(r.detail).toMatch(/see nothing/)
    expect(r.fix).toMatch(/setcap cap_net_raw,cap_net_admin\+eip/)
    // capabilities on the node binary (setcap) are enough
    const filecaps = machine({
      run: async () => ({ code: 0, stdout: '/usr/bin/node cap_net_admin,cap_net_raw=eip\n' }),
    })
    expect(await checkRadioPermission(filecaps)).toMatchObject({ status: 'pass' })
    // and so are ambient capabilities of this process (bits 12 and 13 of CapEff)
    const ambient = machine({ files: { '/proc/self/status': 'CapEff:\t0000000000003000\n' } })
    expect(await checkRadioPermission(ambient)).toMatchObject({ status: 'pass' })
    expect(await checkRadioPermission(machine({ uid: () => 0 }))).toMatchObject({
      status: 'pass',
      detail: 'running as root',
    })
    expect(parseCapEff('CapEff:\t000001ffffffffff')).toBe(0x1ffffffffffn)
  })

  it('grades free disk space', () => {
    const disk = (freeMb: number, totalMb = 16_000) =>
      checkDisk(
        machine({ statfs: () => ({ bsize: 1024, blocks: totalMb * 1024, bavail: freeMb * 1024 }) }),
        '/var/lib/gate-agent',
      ).status
    expect(disk(8_000)).toBe('pass')
    expect(disk(400, 2_000)).toBe('warn') // under 500 MB
    expect(disk(50)).toBe('fail')
    expect(disk(700, 8_000)).toBe('warn') // under 10%
  })

  it('fails a clock still in 1970 and warns when NTP is not synchronized', async () => {
    expect(await checkClock(machine({ now: () => 0 }))).toMatchObject({
      status: 'fail',
      detail: expect.stringMatching(/1970/),
    })
    const unsynced = machine({ run: async () => ({ code: 0, stdout: 'no\n' }) })
    expect(await checkClock(unsynced)).toMatchObject({
      status: 'warn',
      fix: expect.stringMatching(/set-ntp/),
    })
    const synced = machine({ run: async () => ({ code: 0, stdout: 'yes\n' }) })
    expect(await checkClock(synced)).toMatchObject({ status: 'pass' })
  })

  it('runs every check on this machine without throwing, and a broken probe becomes a warning', async () => {
    const t = tempDir()
    try {
      const real = await runSystemChecks({ dataDir: t.dir })
      expect(real.map((r) => r.name)).toEqual([
        'bluetooth adapter',
        'radio not blocked (rfkill)',
        'radio permissions (CAP_NET_RAW, CAP_NET_ADMIN)',
        'bluetoothd',
        'disk space',
        'clock',
      ])
      for (const r of real) expect(['pass', 'warn', 'fail']).toContain(r.status)
      const broken = await runSystemChecks({
        dataDir: t.dir,
        probes: machine({
          statfs: () => {
            throw new Error('statfs exploded')
          },
        }),
      })
      expect(broken.find((r) => r.name === 'disk space')).toMatchObject({
        status: 'warn',
        detail: expect.stringMatching(/could not check: statfs exploded/),
      })
    } finally {
      t.cleanup()
    }
  })
})

describe('event-loop scheduling (gatectl status, gatectl doctor)', () => {
  // a stat line whose command name holds spaces and parentheses, SCHED_RR priority 5, nice -10
  const fields = (nice: number, rt: number, policy: number) =>
    [
      'S',
      ...Array.from({ length: 15 }, (_, i) => String(i + 4)),
      String(nice),
      ...Array.from({ length: 20 }, () => '0'),
      String(rt),
      String(policy),
      '0',
    ].join(' ')

  it('reads policy, realtime priority and nice from a /proc stat line', () => {
    expect(parseScheduling(`4242 (node (gate) x) ${fields(-10, 5, 2)}`)).toEqual({
      policy: 'rr',
      rtPriority: 5,
      nice: -10,
    })
    expect(parseScheduling(`7 (node) ${fields(0, 0, 0)}`)).toEqual({
      policy: 'normal',
      rtPriority: 0,
      nice: 0,
    })
    expect(parseScheduling('not a stat line')).toBeNull()
    expect(parseScheduling('1 (x) S 2 3')).toBeNull()
  })

  it("reads this thread's own scheduling from the kernel", () => {
    expect(readScheduling()).toEqual({ policy: 'normal', rtPriority: 0, nice: os.getPriority() })
  })

  it('warns, with the fix, unless the event loop is realtime', () => {
    expect(checkScheduling({ policy: 'rr', rtPriority: 5, nice: -10 })).toEqual({
      name: 'event-loop scheduling',
      status: 'pass',
      detail: 'realtime (SCHED_RR 5)',
    })
    expect(checkScheduling({ policy: 'normal', rtPriority: 0, nice: -10 })).toMatchObject({
      status: 'warn',
      detail: expect.stringMatching(/^normal, nice -10: /),
      fix: expect.stringMatching(/chrt --rr --reset-on-fork --pid 5/),
    })
    expect(checkScheduling(null)).toMatchObject({ status: 'warn', detail: expect.stringMatching(/unknown/) })
  })

  // what the unit's ExecStartPost does to the running agent; setting a realtime policy needs root
  it.runIf(process.getuid?.() === 0)(
    "the unit's chrt makes the event loop realtime and leaves threads started afterwards normal",
    async () => {
      const child = spawn(
        process.execPath,
        [
          '-e',
          `const fs = require('node:fs'); const { Worker } = require('node:worker_threads')
           process.stdin.once('data', () => {
             const main = fs.readFileSync('/proc/thread-self/stat', 'utf8')
             const w = new Worker("require('node:worker_threads').parentPort.postMessage(require('node:fs').readFileSync('/proc/thread-self/stat', 'utf8'))", { eval: true })
             w.once('message', (worker) => { console.log(JSON.stringify({ main, worker })); w.terminate(); process.exit(0) })
           })`,
        ],
        { stdio: ['pipe', 'pipe', 'inherit'] },
      )
      let out = ''
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString()
      })
      const exited = new Promise((r) => child.once('exit', r))
      const chrt = spawnSync('chrt', ['--rr', '--reset-on-fork', '--pid', '5', String(child.pid)])
      expect(chrt.status, String(chrt.stderr)).toBe(0)
      child.stdin.write('go\n')
      await exited
      const seen = JSON.parse(out) as { main: string; worker: string }
      expect(parseScheduling(seen.main)).toEqual({ policy: 'rr', rtPriority: 5, nice: os.getPriority() })
      expect(parseScheduling(seen.worker)).toMatchObject({ policy: 'normal', rtPriority: 0 })
    },
  )
})

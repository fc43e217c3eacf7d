import { execFileSync } from 'node:child_process'
import { closeSync, fsyncSync, mkdirSync, openSync, rmSync, writeSync } from 'node:fs'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { tempDir } from '../support/helpers.js'
import { tempDatabase } from '../support/pg-helpers.js'
import { eventually, gatectl } from '../support/process-helpers.js'
import {
  account,
  type Cloud,
  decided,
  drained,
  gateStatus,
  sleep,
  startCloud,
  startTailedGate,
  stopGate,
  type TailedGate,
  writeGateConfig,
} from './gates.js'
import { writeResults } from './harness.js'

const run = (cmd: string, args: string[]) => execFileSync(cmd, args, { stdio: 'pipe', timeout: 30_000 })

/**
 * A filesystem of `mb` MB mounted on `dir`: ext4 in a loop-mounted image (a real block filesystem,
 * fsync and all), or a tmpfs where loop devices are not available. Needs root. Returns its kind.
 */
function mountSmall(dir: string, image: string, mb: number): string {
  try {
    run('truncate', ['-s', `${mb}M`, image])
    // no blocks reserved for root: the agent runs as root here and would use them
    run('mkfs.ext4', ['-q', '-F', '-m', '0', image])
    run('mount', ['-o', 'loop', image, dir])
    return 'ext4 on a loop device'
  } catch {
    run('mount', ['-t', 'tmpfs', '-o', `size=${mb}m`, 'tmpfs', dir])
    return 'tmpfs'
  }
}

/** Fill the filesystem of `file` to the last byte; returns the bytes written. */
function fill(file: string): number {
  const fd = openSync(file, 'w')
  let written = 0
  try {
    for (const size of [1 << 20, 1 << 12, 1 << 9]) {
      const chunk = Buffer.alloc(size, 0xa5)
      for (;;) {
        try {
          written += writeSync(fd, chunk)
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOSPC') break
          throw err
        }
      }
    }
    try {
      fsyncSync(fd)
    } catch {
      // a short final block may fail to flush on a full disk; the filesystem is full either way
    }
  } finally {
    closeSync(fd)
  }
  return written
}

/**
 * Disk full: a real gate whose data directory is on a small filesystem decides at load while the
 * test fills that filesystem. The README's promise: the gate fails closed (no decision emitted
 * while its commit cannot be written), the error is logged and counted, the write is retried
 * every 500 ms with the decisions waiting in memory, and the process keeps running. Checked: no
 * decision emitted while the disk is full although badges keep arriving, `gatectl status` shows the
 * commit errors, the gate recovers by itself once space is freed, and every decision it emitted,
 * before, during and after, is in its file and in Postgres exactly once.
 */
describe('chaos: the gate data disk full', () => {
  const tmp = tempDir('gate-diskfull-')
  const mnt = path.join(tmp.dir, 'mnt')
  let mounted = false
  let db: Awaited<ReturnType<typeof tempDatabase>> | null = null
  let cloud: Cloud | null = null
  let gate: TailedGate | null = null

  afterAll(async () => {
    if (gate) await stopGate(gate).catch(() => {})
    await cloud?.stop('SIGKILL')
    await db?.drop().catch(() => {})
    if (mounted) {
      // a lazy unmount if anything still holds it open: the mount never outlives the test
      try {
        run('umount', [mnt])
      } catch {
        run('umount', ['-l', mnt])
      }
    }
    tmp.cleanup()
  }, 60_000)

  it('fails closed while the disk is full, recovers by itself, loses nothing emitted', async () => {
    mkdirSync(mnt)
    const fsKind = mountSmall(mnt, path.join(tmp.dir, 'disk.img'), 32)
    mounted = true
    db = await tempDatabase()
    cloud = await startCloud(db.url)
    const key = await cloud.addGate('full-a')
    const dataDir = path.join(mnt, 'gate')
    const cloudConfig = { batchSize: 50, syncIntervalMs: 200, baseBackoffMs: 100, maxBackoffMs: 1_000 }
    const crowd = writeGateConfig(tmp.dir, 'full-a', {
      source: { sim: { participants: 2000, arrivalSpreadMs: 20_000, seed: 31, loop: true } },
      dedup: { windowMs: 5_000 },
      cloud: cloudConfig,
    })
    const args = (config: string) => ['--config', config, '--source', 'sim', '--demo', '--log-level', 'error']
    const env = { GATE_CLOUD_URL: cloud.url, GATE_KEY: key }
    const emitted = new Map<string, number>()
    gate = await startTailedGate(dataDir, args(crowd), env, emitted)
    await eventually(
      async () => emitted.size > 50 && ((await gateStatus(dataDir))?.sync?.accepted ?? 0) > 0,
      60_000,
      200,
    )

    // fill the disk while the crowd goes on arriving
    const filler = path.join(mnt, 'filler')
    const filled = fill(filler)
    const full = await eventually(
      async () => {
        const s = await gateStatus(dataDir)
        return (s?.writes?.commitErrors ?? 0) > 0 ? s : null
      },
      30_000,
      100,
    )
    const fullAt = Date.now()
    // a decision already on the control socket's wire when the first commit failed may arrive just after
    await sleep(5_000)
    const during = await gateStatus(dataDir)
    const emittedWhileFull = [...emitted.values()].filter((t) => t > fullAt + 300).length
    const shown = await gatectl(['--data-dir', dataDir, 'status'])
    const arrivalsWhileFull = (during?.counters?.arrivals ?? 0) - (full.counters?.arrivals ?? 0)
    const retries = (during?.writes?.commitErrors ?? 0) - (full.writes?.commitErrors ?? 0)

    // free the space: the gate must pick up again by itself
    rmSync(filler)
    const freedAt = Date.now()
    await eventually(() => [...emitted.values()].some((t) => t > freedAt), 30_000, 50).catch(() => {
      throw new Error('the gate did not decide again within 30 s of the space being freed')
    })
    const recoveryMs = Math.min(...[...emitted.values()].filter((t) => t > freedAt)) - freedAt
    const afterFree = await gateStatus(dataDir)
    await sleep(3_000)
    const later = await gateStatus(dataDir)
    const alive = gate.agent.child.exitCode === null && gate.agent.child.signalCode === null

    // the end: the last decisions uploaded with the crowd gone (a start without one), then the account
    await stopGate(gate)
    const quiet = writeGateConfig(tmp.dir, 'full-a-quiet', {
      gateId: 'full-a',
      source: { sim: { participants: 0, revoked: 0, unknown: 0, foreign: 0, seed: 31 } },
      cloud: cloudConfig,
    })
    gate = await startTailedGate(dataDir, args(quiet), env, emitted)
    await drained(dataDir)
    await stopGate(gate)
    gate = null
    const a = await account(db.url, 'full-a', dataDir, emitted.keys())

    writeResults('diskfull', [
      {
        what: `the gate's data disk (${fsKind}, 32 MB) filled while it decides at load (${Math.round(filled / 1e6)} MB written), 5 s full, then freed`,
        tried: 1,
        outcome:
          `${arrivalsWhileFull} arrivals while full, ${emittedWhileFull} decisions emitted (fail closed: 0), ` +
          `${retries} commit retries, process ${alive ? 'up' : 'DOWN'}, gatectl status ${/COMMIT ERRORS/.test(shown.stdout) ? 'showed' : 'did NOT show'} COMMIT ERRORS; ` +
          `deciding again ${(recoveryMs / 1000).toFixed(1)} s after space was freed; ` +
          `${a.emitted} decisions emitted in all: ${a.lostFromFile} missing from the file, ${a.lostFromCloud} from Postgres, ${a.doubled} stored twice`,
        lost: a.lost,
      },
    ])

    expect(arrivalsWhileFull, 'badges kept arriving while the disk was full').toBeGreaterThan(0)
    expect(emittedWhileFull, 'decisions emitted while no commit could be written').toBe(0)
    expect(retries, 'the failed commit retried').toBeGreaterThan(2)
    expect(during?.daemon, 'the daemon answers while the disk is full').toBe('running')
    expect(shown.code).toBe(0)
    expect(shown.stdout).toMatch(/COMMIT ERRORS/)
    // and says the disk is failing now, with the decisions dropped for waiting too long
    expect(shown.stdout).toMatch(/DISK FAILING/)
    expect(during?.writes?.expired ?? 0, 'decisions dropped after waiting past 2 s').toBeGreaterThan(0)
    expect(alive, 'the process kept running').toBe(true)
    expect(decided(later)).toBeGreaterThan(decided(afterFree))
    expect(later?.writes?.commitErrors, 'no commit error once space is back').toBe(
      afterFree?.writes?.commitErrors,
    )
    expect(a.lostFromFile, 'emitted decisions missing from the file').toBe(0)
    expect(a.lostFromCloud, 'emitted decisions missing from Postgres').toBe(0)
    expect(a.doubled, 'records stored twice').toBe(0)
    expect(a.notSynced, 'rows of the file not in Postgres').toBe(0)
    expect(a.foreign, 'records in Postgres the file does not hold').toBe(0)
    expect(a.integrity).toBe('ok')
  }, 240_000)
})

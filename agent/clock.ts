import { readFileSync } from 'node:fs'
import { performance } from 'node:perf_hooks'

/** Time as the agent sees it. Injected everywhere so tests and the simulator can use virtual time. */
export interface Clock {
  /** wall-clock time, ms since the Unix epoch (can jump: NTP, no RTC on a Raspberry Pi) */
  now(): number
  /** monotonic time, ms since an arbitrary origin (never jumps; use it for windows and latencies) */
  mono(): number
  /**
   * where mono() 0 lies on the machine's monotonic clock, which runs on across restarts of the agent
   * until the machine reboots (null or absent: unknown, as for a virtual clock)
   */
  machine?(): MachineMono | null
}

/** A place on the machine's monotonic clock: the kernel's boot id, and CLOCK_MONOTONIC in ms. */
export interface MachineMono {
  boot: string
  originMs: number
}

/** The real clock. */
export const systemClock: Clock = {
  now: () => Date.now(),
  mono: () => performance.now(),
  machine: () => {
    let boot: string
    try {
      boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()
    } catch {
      return null
    }
    // performance.now() counts on libuv's hrtime (CLOCK_MONOTONIC) from the process's start; the
    // second reading, the first one paying for the calls' warm-up
    const origin = () => Number(process.hrtime.bigint()) / 1e6 - performance.now()
    origin()
    return boot ? { boot, originMs: origin() } : null
  },
}

/** A clock the test moves by hand. */
export class FakeClock implements Clock {
  constructor(
    private wall = Date.UTC(2026, 10, 25, 9, 0, 0),
    private monoMs = 1_000,
  ) {}
  now(): number {
    return this.wall
  }
  mono(): number {
    return this.monoMs
  }
  /** move both clocks forward, ms */
  advance(ms: number): void {
    this.wall += ms
    this.monoMs += ms
  }
  /** move the wall clock only (an NTP step), ms */
  stepWall(ms: number): void {
    this.wall += ms
  }
}

/**
 * Something scheduled on the next turn of the event loop or later, remembered with its kind: a
 * Timeout must never go to clearImmediate (on Node 20 that lowers the count of pending immediates,
 * and a lone setImmediate then waits for another one to be scheduled: the gate stopped committing
 * decisions after one failed commit, whose retry was a Timeout).
 */
export type Scheduled = { immediate: NodeJS.Immediate } | { timeout: NodeJS.Timeout }

/**
 * Run `fn` on the next turn of the event loop (ms <= 0) or after `ms`; `unref`: it does not keep
 * the process alive by itself.
 */
export function schedule(fn: () => void, ms: number, opts: { unref?: boolean } = {}): Scheduled {
  if (ms <= 0) {
    const immediate = setImmediate(fn)
    if (opts.unref) immediate.unref()
    return { immediate }
  }
  const timeout = setTimeout(fn, ms)
  if (opts.unref) timeout.unref()
  return { timeout }
}

/** Cancel what `schedule` set up (null: nothing). */
export function cancel(scheduled: Scheduled | null): void {
  if (scheduled === null) return
  if ('immediate' in scheduled) clearImmediate(scheduled.immediate)
  else clearTimeout(scheduled.timeout)
}

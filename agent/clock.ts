import { performance } from 'node:perf_hooks'

/** Time as the agent sees it. Injected everywhere so tests and the simulator can use virtual time. */
export interface Clock {
  /** wall-clock time, ms since the Unix epoch (can jump: NTP, no RTC on a Raspberry Pi) */
  now(): number
  /** monotonic time, ms since an arbitrary origin (never jumps; use it for windows and latencies) */
  mono(): number
}

/** The real clock. */
export const systemClock: Clock = {
  now: () => Date.now(),
  mono: () => performance.now(),
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

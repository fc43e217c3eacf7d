import type { Logger } from 'pino'

/** What the guard needs: the stop itself, where it is, and how the process ends. */
export interface StopGuardDeps {
  /** stops every part; resolves once they are stopped */
  stop: () => Promise<void>
  /** the step the stop is in, for the log when the deadline passes */
  step: () => string | null
  log: Pick<Logger, 'error' | 'warn' | 'info' | 'flush'>
  /** ends the process (process.exit; a test passes its own) */
  exit: (code: number) => void
  /** the whole stop may take this long, ms, then the process exits with `failureCode` */
  deadlineMs: number
  /** once stopped, the process may stay this long, ms, before it exits anyway with code 0 */
  lingerMs: number
  failureCode: number
}

/**
 * Stop, and make sure the process ends: systemd waits TimeoutStopSec and then kills, so a stop
 * that hangs, or a process kept by a handle something forgot after everything stopped (a socket a
 * peer no longer reads, a library's timer), would hold the gate's restart for that long. Past the
 * deadline the process exits and names the step it was in; after a clean stop it exits once
 * `lingerMs` have passed and names the handles that kept it. Both timers are unref'd: a process
 * that ends by itself is never held by them. Resolves when the parts are stopped.
 */
export async function stopWithin(deps: StopGuardDeps): Promise<void> {
  const { log } = deps
  const deadline = setTimeout(() => {
    log.error({ deadlineMs: deps.deadlineMs, step: deps.step() }, 'stop deadline passed; exiting anyway')
    log.flush()
    deps.exit(deps.failureCode)
  }, deps.deadlineMs)
  deadline.unref()
  await deps.stop()
  clearTimeout(deadline)
  log.info('stopped')
  log.flush()
  setTimeout(() => {
    const handles = process.getActiveResourcesInfo().filter((h) => h !== 'Timeout')
    log.warn({ handles }, 'stopped, but something kept the process; exiting')
    log.flush()
    deps.exit(0)
  }, deps.lingerMs).unref()
}

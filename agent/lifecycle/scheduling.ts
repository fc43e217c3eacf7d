import { readFileSync } from 'node:fs'
import type { Scheduling } from '../../shared/status.js'

// sched(7) policy numbers, as /proc/<pid>/stat field 41 gives them
const POLICIES: Record<number, Scheduling['policy']> = {
  0: 'normal',
  1: 'fifo',
  2: 'rr',
  3: 'batch',
  5: 'idle',
  6: 'deadline',
}

/**
 * The scheduling fields of a /proc/<pid>/stat line (proc(5)): nice is field 19, rt_priority 40,
 * policy 41. Fields are counted after the command name, which is in parentheses and may itself hold
 * spaces and parentheses. Null when the line is not one.
 */
export function parseScheduling(stat: string): Scheduling | null {
  const close = stat.lastIndexOf(')')
  if (close < 0) return null
  // fields[0] is field 3 (state)
  const fields = stat
    .slice(close + 1)
    .trim()
    .split(/\s+/)
  const nice = Number(fields[19 - 3])
  const rtPriority = Number(fields[40 - 3])
  const policy = POLICIES[Number(fields[41 - 3])]
  if (!policy || !Number.isInteger(nice) || !Number.isInteger(rtPriority)) return null
  return { policy, rtPriority, nice }
}

/**
 * The calling thread's scheduling (/proc/thread-self/stat), or null where /proc is not there. Called
 * on the event loop it tells whether decisions are realtime: the systemd unit makes the event-loop
 * thread SCHED_RR so that a decision whose commit returns is not left waiting for a CPU behind other
 * processes (docs/benchmarks.md); the helper threads it starts stay normal (reset on fork).
 */
export function readScheduling(): Scheduling | null {
  try {
    return parseScheduling(readFileSync('/proc/thread-self/stat', 'utf8'))
  } catch {
    return null
  }
}

/** "realtime (SCHED_RR 5)" or "normal, nice -10" */
export function describeScheduling(scheduling: Scheduling): string {
  return scheduling.policy === 'rr' || scheduling.policy === 'fifo'
    ? `realtime (SCHED_${scheduling.policy.toUpperCase()} ${scheduling.rtPriority})`
    : `${scheduling.policy}, nice ${scheduling.nice}`
}

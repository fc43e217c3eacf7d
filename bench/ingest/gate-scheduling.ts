import { execFileSync } from 'node:child_process'
import os from 'node:os'

/**
 * This process scheduled as a gate's agent is. The gate's agent runs with Nice=-10 under systemd
 * (deploy/systemd/gate-agent.service), and its ExecStartPost makes the event-loop thread SCHED_RR 5
 * (reset on fork: threads started later stay normal). Here it shares two cores with the service and
 * Postgres, so it gets the same. Without the realtime policy a decision whose commit had returned
 * waited behind Postgres for a CPU for up to a scheduler tick (README, Benchmark); BENCH_AGENT_RT=0
 * measures that, BENCH_AGENT_NICE another nice value (0: left alone).
 */
export function scheduleAsAGate(): {
  /** whether the event loop runs SCHED_RR */
  realtime: boolean
  /** the same policy for another process (one the drain is compared with) */
  sameFor: (pid: number) => void
  /** how the event loop ran, for the report */
  describe: () => string
} {
  const rt = process.env['BENCH_AGENT_RT'] ?? '5'
  const schedule = (what: string, set: () => void): boolean => {
    try {
      set()
      return true
    } catch {
      process.stderr.write(`cannot set ${what} (not root?); drain latency will include CPU contention\n`)
      return false
    }
  }
  const chrt = (args: string[]) => () => execFileSync('chrt', args, { stdio: 'pipe' })
  if (process.env['BENCH_AGENT_NICE'] !== '0')
    schedule('the agent nice', () => os.setPriority(Number(process.env['BENCH_AGENT_NICE'] ?? -10)))
  const realtime =
    rt !== '0' && schedule('SCHED_RR', chrt(['--rr', '--reset-on-fork', '--pid', rt, String(process.pid)]))
  return {
    realtime,
    sameFor: (pid) => {
      if (realtime) schedule('SCHED_RR on the disk baseline', chrt(['--rr', '--pid', rt, String(pid)]))
    },
    describe: () => (realtime ? `SCHED_RR ${rt}` : `nice ${os.getPriority()}, not realtime`),
  }
}

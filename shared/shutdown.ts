import type { Logger } from 'pino'

/** One part's stop. */
export interface StopStep {
  /** what stops, for the log */
  name: string
  stop: () => unknown
  /** how long it may take before the next step runs anyway, ms */
  timeoutMs?: number
}

/** Where a failed or late step is reported. */
export type StopLog = Pick<Logger, 'error'>

/** What did not stop cleanly: the steps that threw or rejected, and those past their deadline. */
export interface StopReport {
  failed: string[]
  overran: string[]
}

/**
 * Run `steps` one after the other, each on its own: a step that throws or rejects is logged and the
 * next one runs anyway, and a step still running at its deadline is left behind (logged) so that
 * the next one runs. A pool closed last is closed even when something before it would not stop.
 */
export async function stopInOrder(
  steps: readonly StopStep[],
  o: { log: StopLog; timeoutMs: number },
): Promise<StopReport> {
  const report: StopReport = { failed: [], overran: [] }
  for (const step of steps) {
    const timeoutMs = step.timeoutMs ?? o.timeoutMs
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), timeoutMs)
    })
    try {
      const outcome = await Promise.race([Promise.resolve().then(step.stop), late])
      if (outcome === 'late') {
        report.overran.push(step.name)
        o.log.error({ step: step.name, timeoutMs }, 'did not stop within its deadline; going on')
      }
    } catch (err) {
      report.failed.push(step.name)
      o.log.error({ err, step: step.name }, 'error while stopping')
    } finally {
      clearTimeout(timer)
    }
  }
  return report
}

/**
 * The parts of a program as they start, to be stopped in reverse: what started last stops first,
 * each step on its own (see stopInOrder).
 */
export class Shutdown {
  private readonly steps: StopStep[] = []

  /** A part has started: `stop` will stop it, within `timeoutMs` (the default deadline otherwise). */
  started(name: string, stop: () => unknown, timeoutMs?: number): void {
    this.steps.push({ name, stop, ...(timeoutMs === undefined ? {} : { timeoutMs }) })
  }

  /** Stop every part started, the last first. */
  stop(o: { log: StopLog; timeoutMs: number }): Promise<StopReport> {
    return stopInOrder([...this.steps].reverse(), o)
  }
}

import type { Logger } from 'pino'
import type { DecisionEvent } from '../../shared/control.js'
import type { Actuator } from './actuator.js'

/** Writes every decision as one log line at info level (journald keeps them on a gate). */
export class LogActuator implements Actuator {
  readonly name = 'log'
  private fired = 0
  constructor(private readonly log: Logger) {}
  fire(decision: DecisionEvent): void {
    this.fired++
    const fields = {
      id: decision.id,
      token: decision.token,
      participantId: decision.participantId,
      reason: decision.reason,
      rssi: decision.rssi,
      latencyMs: Number(decision.latencyMs.toFixed(2)),
    }
    if (decision.decision === 'admit') this.log.info(fields, 'admit')
    else this.log.info(fields, 'deny')
  }
  async stop(): Promise<void> {}
  stats(): Record<string, number> {
    return { fired: this.fired }
  }
}

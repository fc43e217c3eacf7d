import type { Logger } from 'pino'
import type { DecisionEvent } from '../../shared/control.js'
import type { Actuator } from './actuator.js'
import { CommandActuator, type CommandActuatorOptions, type OnAdmitHookEnd } from './command-actuator.js'
import { LogActuator } from './log-actuator.js'

/**
 * The actuators a gate's configuration asks for, fired together: the log line always, the command
 * hook when one is set. One that throws is logged and the others still fire.
 */
export class Actuators {
  private readonly all: Actuator[]

  constructor(
    config: CommandActuatorOptions,
    private readonly log: Logger,
    onAdmitEnd?: OnAdmitHookEnd,
  ) {
    this.all = [new LogActuator(log.child({ component: 'decision' }))]
    if (config.onAdmit || config.onDeny) {
      this.all.push(new CommandActuator(config, log.child({ component: 'actuator' }), onAdmitEnd))
    }
  }

  /** Fire every actuator for a durable decision (a record annulling an admit opens and lights nothing). */
  fire(decision: DecisionEvent): void {
    for (const actuator of this.all) {
      // an annulment, and a check-out by hand (the person is already out), open nothing: logged only
      if ((decision.annuls !== undefined || decision.checkout === true) && actuator.name !== 'log') continue
      try {
        actuator.fire(decision)
      } catch (err) {
        this.log.error({ err, actuator: actuator.name }, 'actuator failed')
      }
    }
  }

  /** Stop every actuator (each waits for its running work, within its own timeout). */
  async stop(): Promise<void> {
    await Promise.all(this.all.map((a) => a.stop()))
  }
}

import type { DecisionEvent } from '../../shared/control.js'

/**
 * The port a decision goes out through: a log line, a relay pulsed by a command (gpioset), a light...
 * `fire` is called after the check-in is durable; it must return at once (slow work is queued).
 */
export interface Actuator {
  readonly name: string
  fire(decision: DecisionEvent): void
  /** Wait for running work (bounded by the actuator's own timeout) and release resources. */
  stop(): Promise<void>
  /** counters for status */
  stats(): Record<string, number>
}

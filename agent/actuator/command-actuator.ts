import { type ChildProcess, spawn } from 'node:child_process'
import type { Logger } from 'pino'
import type { DecisionEvent } from '../../shared/control.js'
import type { Actuator } from './actuator.js'

/** Settings of the command hook. */
export interface CommandActuatorOptions {
  /** argv run on admit, e.g. ['gpioset', '-t', '500ms', 'gpiochip0', '17=1'] */
  onAdmit?: readonly string[] | undefined
  /** argv run on deny */
  onDeny?: readonly string[] | undefined
  /** kill a hook still running after this, ms */
  timeoutMs: number
  /** hooks waiting beyond this many are dropped and counted */
  maxQueue: number
}

/** How an admit's hook ended: true when it exited 0 (with passage confirmation: the person went through). */
export type OnAdmitHookEnd = (decision: DecisionEvent, succeeded: boolean) => void

/**
 * Runs a command per decision, one at a time (a turnstile relay takes one pulse at a time), without a
 * shell: placeholders {decision} {token} {participant} {reason} are replaced inside arguments, so a
 * hostile token cannot inject anything. Hooks that outlive timeoutMs are killed; a full queue drops.
 */
export class CommandActuator implements Actuator {
  readonly name = 'command'
  private readonly queue: Array<{ argv: string[]; decision: DecisionEvent }> = []
  private running: ChildProcess | null = null
  private idle: Promise<void> = Promise.resolve()
  private resolveIdle: (() => void) | null = null
  private counts = { run: 0, failed: 0, timedOut: 0, dropped: 0 }
  private stopped = false

  constructor(
    private readonly opts: CommandActuatorOptions,
    private readonly log: Logger,
    /** told how each admit's hook ended (passage confirmation) */
    private readonly onAdmitEnd?: OnAdmitHookEnd,
  ) {}

  fire(decision: DecisionEvent): void {
    const argv = decision.decision === 'admit' ? this.opts.onAdmit : this.opts.onDeny
    if (!argv || this.stopped) return
    if (this.queue.length >= this.opts.maxQueue) {
      this.counts.dropped++
      this.log.warn({ queued: this.queue.length }, 'actuator queue full; hook dropped')
      if (decision.decision === 'admit') this.onAdmitEnd?.(decision, false)
      return
    }
    const values: Record<string, string> = {
      decision: decision.decision,
      token: decision.token,
      participant: decision.participantId ?? '',
      reason: decision.reason ?? '',
    }
    this.queue.push({
      argv: argv.map((arg) => arg.replace(/\{(decision|token|participant|reason)\}/g, (_, k) => values[k]!)),
      decision,
    })
    if (this.running === null) this.next()
  }

  private next(): void {
    const queued = this.queue.shift()
    if (!queued) {
      this.resolveIdle?.()
      this.resolveIdle = null
      return
    }
    if (this.resolveIdle === null) this.idle = new Promise((r) => (this.resolveIdle = r))
    const [cmd, ...args] = queued.argv as [string, ...string[]]
    let timedOut = false
    // the hook gets a plain environment, never the agent's (GATE_KEY, MQTT_PASSWORD and
    // GATE_CMD_SECRET come from the environment, and a failing hook's stderr is logged)
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], env: hookEnv() })
    this.running = child
    let stderr = ''
    child.stderr?.on('data', (chunk: Buffer) => {
      if (stderr.length < 2048) stderr += chunk.toString()
    })
    const timer = setTimeout(() => {
      timedOut = true
      child.kill('SIGKILL')
    }, this.opts.timeoutMs)
    let finished = false
    const done = (code: number | null, err?: Error) => {
      if (finished) return // 'error' and 'close' can both arrive for one child
      finished = true
      clearTimeout(timer)
      this.running = null
      this.counts.run++
      if (timedOut) {
        this.counts.timedOut++
        this.log.warn({ cmd, timeoutMs: this.opts.timeoutMs }, 'actuator hook timed out; killed')
      } else if (err || code !== 0) {
        this.counts.failed++
        this.log.warn({ cmd, code, err, stderr: stderr.trim() }, 'actuator hook failed')
      }
      if (queued.decision.decision === 'admit')
        this.onAdmitEnd?.(queued.decision, !timedOut && !err && code === 0)
      this.next()
    }
    child.once('error', (err) => done(null, err))
    child.once('close', (code) => done(code))
  }

  async stop(): Promise<void> {
    this.stopped = true
    // admits whose hook never ran are left as they are: the next start counts them as passed
    this.queue.length = 0
    if (this.running) await this.idle
  }

  stats(): Record<string, number> {
    return { ...this.counts, queued: this.queue.length }
  }
}

/** What an actuator hook inherits: where programs are, the locale and the home, nothing else. */
function hookEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const k of ['PATH', 'LANG', 'LC_ALL', 'HOME', 'TZ'])
    if (process.env[k] !== undefined) env[k] = process.env[k]
  return env
}

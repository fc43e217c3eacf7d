import { type ChildProcess, spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import type { Logger } from 'pino'
import { lineShower } from './log-lines.js'

/** the children's lines, readable on a terminal (log-lines.ts) */
const show = lineShower(process.stdout.isTTY === true)

/** A child program whose output lines are shown with its name in front; restarted if it dies. */
export class Child {
  private proc: ChildProcess | null = null
  private stopping = false
  private restarts = 0

  constructor(
    private readonly name: string,
    private readonly args: string[],
    private readonly env: NodeJS.ProcessEnv,
    private readonly log: Logger,
  ) {}

  /** Start the program (again, after it died). */
  start(): void {
    // its own process group: Ctrl-C reaches the demo alone, which stops the children in order
    // and an IPC channel: if the demo dies, even by SIGKILL, the channel closes and the child stops itself
    const p = spawn(process.execPath, this.args, {
      env: this.env,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      detached: true,
    })
    this.proc = p
    for (const stream of [p.stdout, p.stderr]) {
      if (stream)
        createInterface({ input: stream }).on('line', (l) => process.stdout.write(show(this.name, l)))
    }
    p.on('exit', (code, signal) => {
      if (this.stopping) return
      this.restarts++
      const delay = Math.min(30_000, 1_000 * 2 ** Math.min(this.restarts, 5))
      this.log.warn(
        { program: this.name, code, signal, restartInMs: delay },
        'a program exited; restarting it',
      )
      setTimeout(() => {
        if (!this.stopping) this.start()
      }, delay).unref()
    })
  }

  /** SIGTERM, then SIGKILL after `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    this.stopping = true
    const p = this.proc
    if (!p || p.exitCode !== null || p.signalCode !== null) return
    const exited = new Promise<void>((r) => p.once('exit', () => r()))
    p.kill('SIGTERM')
    const timer = setTimeout(() => p.kill('SIGKILL'), graceMs)
    await exited
    clearTimeout(timer)
  }

  /** SIGKILL at once (the demo itself is exiting). */
  kill(): void {
    this.stopping = true
    if (this.proc && this.proc.exitCode === null) this.proc.kill('SIGKILL')
  }
}

/** Whether `url` answers 2xx within `ms`, asked every 250 ms. */
export async function waitFor(url: string, ms: number): Promise<boolean> {
  const until = Date.now() + ms
  while (Date.now() < until) {
    try {
      if ((await fetch(url)).ok) return true
    } catch {
      // not yet
    }
    await new Promise((r) => setTimeout(r, 250))
  }
  return false
}

import { execFile } from 'node:child_process'
import { createRequire } from 'node:module'
import type { Logger } from 'pino'

interface DgramSocket {
  send(buf: Buffer, offset: number, length: number, path: string, callback?: (err?: Error) => void): void
  close(): void
  on(event: 'error', listener: (err: Error) => void): void
}

/**
 * systemd notify (READY=1, WATCHDOG=1, STOPPING=1, STATUS=...) over $NOTIFY_SOCKET, as sd_notify(3) does.
 * Node has no Unix datagram sockets, so the optional native `unix-dgram` is used; without it, systemd's
 * `systemd-notify` program sends each message; when not run by systemd every call is a no-op.
 */
export class SystemdNotifier {
  private sock: DgramSocket | null = null
  /** unix-dgram is missing: messages go through the systemd-notify program */
  private viaCli = false
  private watchdog: NodeJS.Timeout | null = null
  private readonly path: string | undefined

  constructor(
    env: NodeJS.ProcessEnv,
    private readonly log: Logger,
    private readonly watchdogUsec = Number(env['WATCHDOG_USEC'] ?? 0),
    /** how unix-dgram is loaded (tests pass one that fails) */
    private readonly loadDgram: () => { createSocket(type: 'unix_dgram'): DgramSocket } = () =>
      createRequire(import.meta.url)('unix-dgram'),
  ) {
    this.path = env['NOTIFY_SOCKET']
  }

  /** Whether the process runs under systemd with a notify socket. */
  get enabled(): boolean {
    return this.path !== undefined && this.path !== ''
  }

  /** Connect, send READY=1 and start the watchdog pings (every half of WatchdogSec). */
  ready(status: string): void {
    if (!this.enabled) return
    try {
      this.sock = this.loadDgram().createSocket('unix_dgram')
      this.sock.on('error', (err) => this.log.debug({ err }, 'sd_notify socket error'))
    } catch (err) {
      // without READY=1 a Type=notify unit would be killed and restarted every 90 s: systemd's own
      // systemd-notify sends the messages instead (the unit allows its children: NotifyAccess=all)
      this.log.warn(
        { err: (err as Error).message },
        'NOTIFY_SOCKET is set but unix-dgram is not installed; notifying systemd through systemd-notify',
      )
      this.viaCli = true
    }
    this.send(`READY=1\nSTATUS=${status}`)
    if (this.watchdogUsec > 0) {
      const everyMs = Math.max(1000, Math.floor(this.watchdogUsec / 2000))
      this.watchdog = setInterval(() => this.send('WATCHDOG=1'), everyMs)
      this.watchdog.unref()
      this.log.info({ everyMs }, 'systemd watchdog enabled')
    }
  }

  /** Tell systemd what the agent is doing (shown by systemctl status). */
  status(text: string): void {
    this.send(`STATUS=${text}`)
  }

  /** STOPPING=1 and release the socket. */
  stopping(): void {
    if (this.watchdog) clearInterval(this.watchdog)
    this.watchdog = null
    this.send('STOPPING=1')
    this.sock?.close()
    this.sock = null
    this.viaCli = false
  }

  private send(msg: string): void {
    if (this.viaCli && this.path) {
      execFile('systemd-notify', msg.split('\n'), { timeout: 5_000 }, (err) => {
        if (err) this.log.warn({ err: err.message }, 'systemd-notify failed')
      })
      return
    }
    if (!this.sock || !this.path) return
    // An abstract socket ('@name') is addressed with a leading NUL byte.
    const target = this.path.startsWith('@') ? `\0${this.path.slice(1)}` : this.path
    const buf = Buffer.from(msg)
    try {
      this.sock.send(buf, 0, buf.length, target, (err) => {
        if (err) this.log.debug({ err }, 'sd_notify send failed')
      })
    } catch (err) {
      this.log.debug({ err }, 'sd_notify send failed')
    }
  }
}

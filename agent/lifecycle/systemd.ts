import { createRequire } from 'node:module'
import type { Logger } from 'pino'

interface DgramSocket {
  send(buf: Buffer, offset: number, length: number, path: string, cb?: (err?: Error) => void): void
  close(): void
  on(event: 'error', cb: (err: Error) => void): void
}

/**
 * systemd notify (READY=1, WATCHDOG=1, STOPPING=1, STATUS=...) over $NOTIFY_SOCKET, as sd_notify(3) does.
 * Node has no Unix datagram sockets, so the optional native `unix-dgram` is used; without it, or when not
 * run by systemd, every call is a no-op (soft failure, as Zigbee2MQTT's helper does).
 */
export class SystemdNotifier {
  private sock: DgramSocket | null = null
  private watchdog: NodeJS.Timeout | null = null
  private readonly path: string | undefined

  constructor(
    env: NodeJS.ProcessEnv,
    private readonly log: Logger,
    private readonly watchdogUsec = Number(env['WATCHDOG_USEC'] ?? 0),
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
      const require = createRequire(import.meta.url)
      const unix = require('unix-dgram') as { createSocket(type: 'unix_dgram'): DgramSocket }
      this.sock = unix.createSocket('unix_dgram')
      this.sock.on('error', (err) => this.log.debug({ err }, 'sd_notify socket error'))
    } catch (err) {
      this.log.warn({ err }, 'NOTIFY_SOCKET is set but unix-dgram is not installed; systemd notify disabled')
      return
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
  }

  private send(msg: string): void {
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

import pg from 'pg'
import type { Logger } from 'pino'

/**
 * LISTEN on a Postgres channel with its own connection, reconnecting with backoff. After a
 * reconnect `onChange` runs once too: notifications sent while the connection was down are lost.
 */
export class ChangeListener {
  private client: pg.Client | null = null
  private stopped = false
  private retryTimer: NodeJS.Timeout | null = null
  private failures = 0

  constructor(
    private readonly databaseUrl: string,
    private readonly channel: string,
    private readonly onChange: () => void,
    private readonly log: Logger,
  ) {
    if (!/^[a-z_][a-z0-9_]*$/.test(channel)) throw new Error(`bad channel name ${channel}`)
  }

  async start(): Promise<void> {
    await this.connect(false)
  }

  async stop(): Promise<void> {
    this.stopped = true
    if (this.retryTimer) clearTimeout(this.retryTimer)
    const client = this.client
    this.client = null
    await client?.end().catch(() => {})
  }

  private async connect(reconnecting: boolean): Promise<void> {
    if (this.stopped) return
    const client = new pg.Client({
      connectionString: this.databaseUrl,
      application_name: 'gate-cloud-listen',
    })
    client.on('error', (err) => {
      this.log.warn({ err: err.message, channel: this.channel }, 'change listener connection lost')
    })
    client.on('end', () => {
      if (this.client === client) {
        this.client = null
        this.retry()
      }
    })
    client.on('notification', (notification) => {
      if (notification.channel === this.channel) this.onChange()
    })
    try {
      await client.connect()
      // the channel name is a fixed identifier checked above, never input
      await client.query(`LISTEN ${this.channel}`)
      this.client = client
      this.failures = 0
      if (reconnecting) {
        this.log.info({ channel: this.channel }, 'change listener reconnected')
        this.onChange()
      }
    } catch (err) {
      await client.end().catch(() => {})
      this.log.warn({ err: (err as Error).message, channel: this.channel }, 'change listener cannot connect')
      this.retry()
    }
  }

  private retry(): void {
    if (this.stopped || this.retryTimer) return
    const delay = Math.min(30_000, 250 * 2 ** Math.min(this.failures++, 7))
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null
      void this.connect(true)
    }, delay)
    this.retryTimer.unref()
  }
}

import type { Logger } from 'pino'
import type { AccessStep } from '../access/access-step.js'
import type { CloudClient } from './cloud-client.js'

/**
 * Reports this gate's zone tallies to the cloud and keeps the allotments it answers with: soon
 * after each passage (`intervalMs`), so that the cloud's occupancy follows within about that, and
 * every `refreshMs` regardless, so that places freed by exits at other gates reach this one. Only
 * while an access policy is in force; a failure is retried at the next turn (the tallies only grow,
 * so a report lost or sent twice changes nothing).
 */
export class OccupancySync {
  private timer: NodeJS.Timeout | null = null
  private sentChanges = -1
  private lastSentAt = 0
  private sending = false

  constructor(
    private readonly deps: {
      access: AccessStep
      client: CloudClient
      log: Logger
      intervalMs: number
      refreshMs: number
    },
  ) {}

  start(): void {
    if (this.timer) return
    this.timer = setInterval(() => void this.turn(), this.deps.intervalMs)
    this.timer.unref()
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer)
    this.timer = null
  }

  /** Send now if anything moved or the refresh is due; true when the cloud answered. */
  async turn(force = false): Promise<boolean> {
    const { access, client, log } = this.deps
    if (this.sending || access.policy() === null) return false
    const changes = access.tallies.changes
    if (!force && changes === this.sentChanges && Date.now() - this.lastSentAt < this.deps.refreshMs)
      return false
    this.sending = true
    try {
      const res = await client.sendTallies(access.tallies.report())
      if (!res.ok) {
        log.debug({ err: res.message }, 'occupancy report failed; the next turn tries again')
        return false
      }
      this.sentChanges = changes
      this.lastSentAt = Date.now()
      if (res.value.policyVersion === access.version()) access.tallies.allot(res.value.allotments)
      return true
    } finally {
      this.sending = false
    }
  }
}

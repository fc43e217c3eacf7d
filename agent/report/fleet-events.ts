import { v4 as uuidv4 } from 'uuid'
import type { EventPayload, GateEventKind } from '../../shared/fleet.js'
import type { Clock } from '../clock.js'
import type { Db } from '../store/db.js'

/** Events sent per round of a flush; rounds go on until fewer are left. */
const FLUSH_BATCH = 500

/** An event as it is kept: what the broker gets, but the header of the message that carries it. */
export type KeptEvent = Pick<EventPayload, 'id' | 'at' | 'kind' | 'detail'>

/** How a flush sends: `send` resolves once the broker has the event; `sent` counts it once it is removed. */
export interface EventSender {
  send(event: KeptEvent): Promise<void>
  sent(): void
}

/**
 * The gate's fleet events, kept in SQLite (fleet_events) from the moment they are raised until the
 * broker has acknowledged each one, so an event raised while the broker is away is sent when it is
 * back, and one the broker never acknowledged is sent again after a restart.
 */
export class FleetEventQueue {
  private flushing = false
  /** an event was added while a flush ran: that flush goes round again before it ends */
  private flushAgain = false

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
  ) {}

  /** Keep an event until it is sent. */
  add(kind: GateEventKind, detail: Record<string, unknown>): void {
    this.db
      .prepare('INSERT INTO fleet_events (id, at, kind, detail) VALUES (?, ?, ?, ?)')
      .run(uuidv4(), Math.round(this.clock.now()), kind, JSON.stringify(detail))
  }

  /**
   * Send every kept event, oldest first, `FLUSH_BATCH` at a time until none is left (and again for
   * any added meanwhile); each is removed once `send` resolves. A flush already under way takes
   * what is added instead of a second one. Rejects with what `send` threw; the rest stays kept.
   */
  async flush(sender: EventSender): Promise<void> {
    if (this.flushing) {
      this.flushAgain = true
      return
    }
    this.flushing = true
    try {
      for (;;) {
        this.flushAgain = false
        const sent = await this.sendSome(sender)
        if (sent < FLUSH_BATCH && !this.flushAgain) break
      }
    } finally {
      this.flushing = false
    }
  }

  /** Send up to `FLUSH_BATCH` kept events, oldest first; how many were sent. */
  private async sendSome(sender: EventSender): Promise<number> {
    const rows = this.db
      .prepare(`SELECT id, at, kind, detail FROM fleet_events ORDER BY at LIMIT ${FLUSH_BATCH}`)
      .all() as Array<{
      id: string
      at: number
      kind: GateEventKind
      detail: string
    }>
    for (const row of rows) {
      await sender.send({ id: row.id, at: row.at, kind: row.kind, detail: JSON.parse(row.detail) })
      // the broker has it (PUBACK): only now is it removed from the gate
      this.db.prepare('DELETE FROM fleet_events WHERE id = ?').run(row.id)
      sender.sent()
    }
    return rows.length
  }
}

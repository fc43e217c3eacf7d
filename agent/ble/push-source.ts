import { GateError } from '../../shared/errors.js'
import type { Advert, BleSource, SourceHandlers, SourceStatus } from './source.js'

/**
 * A source driven by code: whoever holds it pushes adverts in. Used by the benchmark and by tests that
 * run the whole agent in virtual time; not selectable from the configuration.
 */
export class PushSource implements BleSource {
  readonly kind = 'sim' as const
  private handlers: SourceHandlers | null = null
  private restarts = 0
  private adverts = 0
  private lastAdvertAt: number | null = null

  async start(handlers: SourceHandlers): Promise<void> {
    if (this.handlers) throw new GateError('E_INTERNAL', 'the push source is already started')
    this.handlers = handlers
    handlers.state?.('poweredOn')
  }

  async stop(): Promise<void> {
    this.handlers = null
  }

  async restartScan(): Promise<void> {
    this.restarts++
  }

  /** Deliver one advert now (dropped when the source is not started). */
  push(advert: Advert): void {
    const handlers = this.handlers
    if (!handlers) return
    this.adverts++
    this.lastAdvertAt = advert.ts
    handlers.advert(advert)
  }

  status(): SourceStatus {
    const running = this.handlers !== null
    return {
      kind: 'sim',
      adapterState: 'poweredOn',
      scanning: running,
      radio: running ? 'scanning' : 'off',
      scanRestarts: this.restarts,
      lastAdvertAt: this.lastAdvertAt,
      adverts: this.adverts,
      detail: 'pushed by code',
    }
  }
}

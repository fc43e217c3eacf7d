import { GateError } from '../../../shared/errors.js'
import type { Clock } from '../../clock.js'
import type { DecodersConfig, SimConfig } from '../../config/schema.js'
import type { BleSource, SourceHandlers, SourceStatus } from '../source.js'
import { Crowd } from './crowd.js'

/** Nothing heard for this long means a quiet hall (the simulated radio itself cannot fail). */
const QUIET_AFTER_MS = 5_000
/** How often the simulated radio delivers what the crowd broadcast since the last tick, ms. */
const TICK_MS = 20
/** Most adverts delivered in one tick, so a stalled event loop does not come back to a flood. */
const MAX_PER_TICK = 20_000
/** At most one warning about a throwing handler per this many ms. */
const WARN_EVERY_MS = 10_000

/**
 * The simulated source: a synthetic crowd (agent/ble/sim/crowd.ts) played in real time. Adverts are
 * stamped with the agent's monotonic clock when delivered, as a radio would stamp them.
 */
export class SimSource implements BleSource {
  readonly kind = 'sim' as const
  private crowd: Crowd | null = null
  private handlers: SourceHandlers | null = null
  private timer: NodeJS.Timeout | null = null
  private startMono = 0
  private restarts = 0
  private adverts = 0
  private lastAdvertAt: number | null = null
  private handlerErrors = 0
  private lastWarnAt = Number.NEGATIVE_INFINITY
  private ended = false

  constructor(
    private readonly sim: SimConfig,
    private readonly decoders: DecodersConfig,
    private readonly deps: { clock: Clock },
  ) {}

  async start(handlers: SourceHandlers): Promise<void> {
    if (this.handlers) throw new GateError('E_INTERNAL', 'the simulated source is already started')
    this.crowd = new Crowd(this.sim, this.decoders)
    this.handlers = handlers
    this.ended = false
    this.startMono = this.deps.clock.mono()
    handlers.state?.('poweredOn')
    this.timer = setInterval(() => this.tick(), TICK_MS)
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer)
    this.timer = null
    this.handlers = null
    this.crowd = null
  }

  async restartScan(): Promise<void> {
    this.restarts++
  }

  status(): SourceStatus {
    const running = this.handlers !== null
    const quiet = this.lastAdvertAt === null || this.deps.clock.mono() - this.lastAdvertAt > QUIET_AFTER_MS
    return {
      kind: 'sim',
      adapterState: 'poweredOn',
      scanning: running,
      radio: !running ? 'off' : quiet ? 'quiet' : 'scanning',
      scanRestarts: this.restarts,
      lastAdvertAt: this.lastAdvertAt,
      adverts: this.adverts,
      detail: this.crowd
        ? `${this.crowd.badgeCount} badges, ${this.crowd.devices - this.crowd.badgeCount} foreign devices, seed ${this.sim.seed}`
        : undefined,
    }
  }

  private tick(): void {
    const crowd = this.crowd
    const handlers = this.handlers
    if (!crowd || !handlers) return
    const clock = this.deps.clock
    const vt = clock.mono() - this.startMono
    crowd.advance(
      vt,
      (device, rssi) => {
        if (this.handlers !== handlers) return // stopped by a handler
        const ts = clock.mono()
        this.adverts++
        this.lastAdvertAt = ts
        try {
          handlers.advert(crowd.advert(device, rssi, ts))
        } catch (err) {
          this.handlerErrors++
          if (ts - this.lastWarnAt >= WARN_EVERY_MS) {
            this.lastWarnAt = ts
            handlers.warn?.(
              new GateError('E_INTERNAL', `advert handler threw (${this.handlerErrors} so far)`, {
                cause: err,
              }),
            )
          }
        }
      },
      MAX_PER_TICK,
    )
    if (crowd.done && !this.ended) {
      this.ended = true
      handlers.end?.()
    }
  }
}

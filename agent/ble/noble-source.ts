// The noble source is one state machine over one set of fields: the adapter's state as noble
// reports it, scans that stop by themselves, the stall watchdog, restarts and their back-off. Split,
// its transitions would be spread over files; what is about noble itself (loading it, its errors,
// its caches, its addresses) is in noble.ts.
import type { Logger } from 'pino'
import { errorMessage, GateError } from '../../shared/errors.js'
import type { Clock } from '../clock.js'
import type { NobleConfig } from '../config/schema.js'
import {
  classifyNobleError,
  defaultLoadNoble,
  FIX_PERMISSION,
  type LoadNoble,
  type NobleLike,
  type NoblePeripheral,
  normalizeAddress,
  sweepNobleCaches,
} from './noble.js'
import type { AdapterState, Advert, BleSource, RadioHealth, SourceHandlers, SourceStatus } from './source.js'

/** Most time to wait for the adapter's first state at start, ms. */
const FIRST_STATE_TIMEOUT_MS = 10_000
/** The longest the stall watchdog backs off to while the hall stays quiet, ms. */
const MAX_BACKOFF_MS = 600_000

/**
 * A real adapter through @abandonware/noble.
 *
 * Traps handled: noble is imported only when chosen (loading it opens an HCI socket and fails on a
 * machine without Bluetooth); duplicates are allowed so RSSI keeps flowing; NOBLE_REPORT_ALL_HCI_EVENTS
 * is set so badges that never answer scan requests are reported; noble's per-peripheral caches are
 * swept so months of uptime stay flat; a scan that stops by itself (scanStop we did not ask for) is
 * restarted and counted; a watchdog restarts a scan that delivered nothing for stallTimeoutMs, and
 * tells a quiet hall (the adapter confirms the restart) from a dead radio (it does not), backing off
 * while the hall stays quiet.
 */
export class NobleSource implements BleSource {
  readonly kind = 'noble' as const
  private noble: NobleLike | null = null
  private handlers: SourceHandlers | null = null
  private state: AdapterState = 'unknown'
  private scanning = false
  private radio: RadioHealth = 'off'
  private restarts = 0
  private adverts = 0
  private lastAdvertAt: number | null = null
  /** when scanning last (re)started, monotonic ms */
  private scanStartedAt = 0
  private restarting = false
  private stopping = false
  private backoffMs: number
  private watchdog: NodeJS.Timeout | null = null
  private sweeper: NodeJS.Timeout | null = null
  private swept = 0
  private lastError: string | undefined
  private listeners: Array<[string, (...args: unknown[]) => void]> = []
  private readonly loadNoble: LoadNoble

  constructor(
    private readonly cfg: NobleConfig,
    private readonly deps: { clock: Clock; log: Logger; loadNoble?: LoadNoble },
  ) {
    this.loadNoble = deps.loadNoble ?? defaultLoadNoble(cfg)
    this.backoffMs = cfg.stallTimeoutMs
  }

  async start(handlers: SourceHandlers): Promise<void> {
    if (this.handlers) throw new GateError('E_INTERNAL', 'the noble source is already started')
    let noble: NobleLike
    try {
      noble = await this.loadNoble()
    } catch (err) {
      throw classifyNobleError(err)
    }
    this.noble = noble
    this.handlers = handlers
    this.stopping = false
    const first = new Promise<AdapterState>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new GateError(
              'E_BLE_ADAPTER_UNAVAILABLE',
              `the Bluetooth adapter reported no state within ${FIRST_STATE_TIMEOUT_MS / 1000} s; check it with \`gatectl doctor\` and \`hciconfig -a\`, or run with --source sim`,
            ),
          ),
        FIRST_STATE_TIMEOUT_MS,
      )
      this.once('stateChange', (state: string) => {
        clearTimeout(timer)
        resolve(state as AdapterState)
      })
    })
    this.on('stateChange', (s: string) => this.onState(s as AdapterState))
    this.on('scanStart', () => this.onScanStart())
    this.on('scanStop', () => this.onScanStop())
    this.on('discover', (p: NoblePeripheral) => this.onDiscover(p))
    this.on('warning', (m: string) => this.deps.log.warn({ noble: m }, 'noble warning'))
    const initial = noble.state ?? noble._state
    if (initial && initial !== 'unknown') setImmediate(() => noble.emit('stateChange', initial))

    let state: AdapterState
    try {
      state = await first
    } catch (err) {
      await this.stop()
      throw err
    }
    if (state === 'unsupported') {
      await this.stop()
      throw new GateError(
        'E_BLE_UNSUPPORTED',
        'the Bluetooth adapter does not support Bluetooth Low Energy scanning (noble state "unsupported"); use a BLE 4.0+ adapter, or --source sim',
      )
    }
    if (state === 'unauthorized') {
      await this.stop()
      throw new GateError(
        'E_BLE_PERMISSION',
        `the Bluetooth adapter refused this process (noble state "unauthorized"): ${FIX_PERMISSION}`,
      )
    }
    const tick = Math.max(250, Math.min(5_000, Math.floor(this.cfg.stallTimeoutMs / 4)))
    this.watchdog = setInterval(() => this.checkStall(), tick)
    this.watchdog.unref()
    this.sweeper = setInterval(() => this.sweep(), this.cfg.cacheSweepIntervalMs)
    this.sweeper.unref()
  }

  async stop(): Promise<void> {
    this.stopping = true
    if (this.watchdog) clearInterval(this.watchdog)
    if (this.sweeper) clearInterval(this.sweeper)
    this.watchdog = null
    this.sweeper = null
    const noble = this.noble
    if (noble && this.scanning) {
      try {
        await withTimeout(noble.stopScanningAsync(), this.cfg.restartTimeoutMs)
      } catch (err) {
        this.deps.log.warn({ err: errorMessage(err) }, 'could not stop scanning cleanly')
      }
    }
    if (noble) for (const [event, fn] of this.listeners) noble.removeListener(event, fn)
    this.listeners = []
    this.scanning = false
    this.radio = 'off'
    this.handlers = null
  }

  async restartScan(): Promise<void> {
    await this.restart('requested')
  }

  status(): SourceStatus {
    const parts: string[] = []
    if (this.lastError) parts.push(this.lastError)
    if (this.swept > 0) parts.push(`${this.swept} cached peripherals swept`)
    return {
      kind: 'noble',
      adapterState: this.state,
      scanning: this.scanning,
      radio: this.handlers ? this.radio : 'off',
      scanRestarts: this.restarts,
      lastAdvertAt: this.lastAdvertAt,
      adverts: this.adverts,
      detail: parts.length > 0 ? parts.join('; ') : undefined,
    }
  }

  private on(event: string, fn: (...args: never[]) => void): void {
    const listener = fn as (...args: unknown[]) => void
    this.noble?.on(event, listener)
    this.listeners.push([event, listener])
  }

  private once(event: string, fn: (arg: string) => void): void {
    const wrapped = (arg: string) => {
      this.noble?.removeListener(event, wrapped)
      fn(arg)
    }
    this.on(event, wrapped as (...args: never[]) => void)
  }

  private onState(state: AdapterState): void {
    const log = this.deps.log
    const prev = this.state
    this.state = state
    this.handlers?.state?.(state)
    if (state === prev) return
    switch (state) {
      case 'poweredOn':
        log.info({ from: prev }, 'Bluetooth adapter powered on; starting scan')
        void this.startScan()
        break
      case 'poweredOff':
        this.scanning = false
        this.radio = 'off'
        log.error(
          'Bluetooth adapter powered off: no badge can be seen (bluetoothctl power on; rfkill unblock bluetooth)',
        )
        break
      case 'unauthorized':
        this.scanning = false
        this.radio = 'off'
        log.error(`Bluetooth adapter unauthorized: ${FIX_PERMISSION}`)
        break
      case 'unsupported':
        this.scanning = false
        this.radio = 'off'
        log.error('Bluetooth adapter unsupported: it cannot scan for BLE adverts')
        break
      default:
        log.warn({ state: state }, 'Bluetooth adapter state changed')
    }
  }

  private async startScan(): Promise<void> {
    const noble = this.noble
    if (!noble || this.stopping) return
    try {
      this.scanStartedAt = this.deps.clock.mono()
      await withTimeout(noble.startScanningAsync([], true), this.cfg.restartTimeoutMs)
      this.scanning = true
      if (this.radio === 'off') this.radio = 'quiet'
      this.lastError = undefined
    } catch (err) {
      const classified = classifyNobleError(err)
      this.lastError = classified.message
      this.radio = 'unresponsive'
      this.deps.log.error({ err: errorMessage(err), code: classified.code }, 'could not start scanning')
      this.handlers?.warn?.(classified)
    }
  }

  private onScanStart(): void {
    this.scanning = true
    this.scanStartedAt = this.deps.clock.mono()
  }

  private onScanStop(): void {
    this.scanning = false
    if (this.stopping || this.restarting || this.state !== 'poweredOn') return
    // noble's HCI scan can stop on its own (controller reset, another process, a kernel hiccup)
    this.deps.log.warn('scan stopped without being asked; restarting it')
    void this.restart('scanStop')
  }

  private onDiscover(peripheral: NoblePeripheral): void {
    const handlers = this.handlers
    if (!handlers) return
    const ts = this.deps.clock.mono()
    this.adverts++
    this.lastAdvertAt = ts
    if (this.radio !== 'scanning') {
      if (this.radio === 'quiet' || this.radio === 'stalled' || this.radio === 'unresponsive') {
        this.deps.log.info({ was: this.radio }, 'adverts arriving')
      }
      this.radio = 'scanning'
      this.backoffMs = this.cfg.stallTimeoutMs
    }
    try {
      const adv = peripheral.advertisement ?? {}
      const advert: Advert = {
        address: normalizeAddress(peripheral.address, peripheral.id),
        rssi: peripheral.rssi,
        manufacturerData: adv.manufacturerData,
        serviceData: adv.serviceData,
        localName: adv.localName,
        txPower: adv.txPowerLevel,
        ts,
      }
      handlers.advert(advert)
    } catch (err) {
      this.deps.log.debug({ err: errorMessage(err) }, 'advert dropped: handler or peripheral threw')
    }
  }

  /** The watchdog: nothing heard for too long while powered on. */
  private checkStall(): void {
    if (this.stopping || this.restarting || this.state !== 'poweredOn') return
    const now = this.deps.clock.mono()
    const last = Math.max(this.lastAdvertAt ?? 0, this.scanStartedAt)
    if (now - last < this.backoffMs) return
    const wasScanning = this.radio === 'scanning'
    this.radio = 'stalled'
    this.deps.log.warn(
      { silentForS: Math.round((now - last) / 1000), restarts: this.restarts + 1 },
      wasScanning
        ? 'no advert for a while: the scan may have stalled; restarting it'
        : 'still nothing heard; restarting the scan again',
    )
    void this.restart('stall').then((confirmed) => {
      if (!confirmed) return
      // the adapter answered: the hall is quiet, the radio is not dead. Back off so an empty hall at
      // night does not restart the scan every few seconds.
      if (this.radio === 'stalled') this.radio = 'quiet'
      this.backoffMs = Math.min(this.backoffMs * 2, MAX_BACKOFF_MS)
    })
  }

  /** Stop and start the scan; true when the adapter confirmed the new scan in time. */
  private async restart(reason: 'requested' | 'stall' | 'scanStop'): Promise<boolean> {
    const noble = this.noble
    if (!noble || this.restarting) return false
    this.restarting = true
    this.restarts++
    try {
      if (this.scanning) {
        try {
          await withTimeout(noble.stopScanningAsync(), this.cfg.restartTimeoutMs)
        } catch {
          // a stalled controller may not confirm the stop either; start again regardless
        }
      }
      if (this.state !== 'poweredOn' || this.stopping) return false
      this.scanStartedAt = this.deps.clock.mono()
      await withTimeout(noble.startScanningAsync([], true), this.cfg.restartTimeoutMs)
      this.scanning = true
      this.lastError = undefined
      this.deps.log.info({ reason, restarts: this.restarts }, 'scan restarted')
      return true
    } catch (err) {
      this.radio = 'unresponsive'
      this.lastError = `scan restart failed: ${errorMessage(err)}`
      this.deps.log.error(
        { reason, err: errorMessage(err), restarts: this.restarts },
        'the adapter did not confirm the scan restart: the radio is unresponsive (check `hciconfig -a`, dmesg; power-cycle the adapter)',
      )
      return false
    } finally {
      this.restarting = false
    }
  }

  /** Forget noble's cached peripherals (see sweepNobleCaches). */
  private sweep(): void {
    if (!this.noble) return
    try {
      this.swept += sweepNobleCaches(this.noble)
    } catch (err) {
      this.deps.log.warn({ err: errorMessage(err) }, 'could not sweep noble caches')
    }
  }
}

/** `pending`, or a rejection once it has not settled within `ms`. */
function withTimeout<T>(pending: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)
    pending.then(
      (value) => {
        clearTimeout(timer)
        resolve(value)
      },
      (err) => {
        clearTimeout(timer)
        reject(err)
      },
    )
  })
}

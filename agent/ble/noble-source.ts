import type { EventEmitter } from 'node:events'
import type { Logger } from 'pino'
import { errorMessage, GateError } from '../../shared/errors.js'
import type { Clock } from '../clock.js'
import type { NobleConfig } from '../config/schema.js'
import type { AdapterState, Advert, BleSource, RadioHealth, SourceHandlers, SourceStatus } from './source.js'

/** The part of a noble peripheral the agent reads. */
export interface NoblePeripheral {
  id: string
  address: string
  rssi: number
  advertisement: {
    localName?: string
    txPowerLevel?: number
    manufacturerData?: Buffer
    serviceData?: Array<{ uuid: string; data: Buffer }>
  }
}

/** The part of noble's API the agent uses (a fake radio implements it in tests). */
export interface NobleLike extends EventEmitter {
  readonly state?: string
  _state?: string
  startScanningAsync(serviceUuids?: string[], allowDuplicates?: boolean): Promise<void>
  stopScanningAsync(): Promise<void>
}

/** How noble is loaded; injected so tests can hand in a fake radio. */
export type LoadNoble = () => Promise<NobleLike>

/** Most time to wait for the adapter's first state at start, ms. */
const FIRST_STATE_TIMEOUT_MS = 10_000
/** The longest the stall watchdog backs off to while the hall stays quiet, ms. */
const MAX_BACKOFF_MS = 600_000

const FIX_PERMISSION =
  'run the agent as root, or give node the capabilities: sudo setcap cap_net_raw,cap_net_admin+eip "$(readlink -f "$(command -v node)")" (the systemd unit grants them as AmbientCapabilities)'

/** Turn what loading or starting noble threw into an error that names the cause and the fix. */
export function classifyNobleError(err: unknown): GateError {
  const code = (err as NodeJS.ErrnoException | null)?.code
  const msg = errorMessage(err)
  if (code === 'EAFNOSUPPORT' || /EAFNOSUPPORT|Address family not supported/i.test(msg)) {
    return new GateError(
      'E_BLE_ADAPTER_UNAVAILABLE',
      'no Bluetooth adapter: this kernel cannot open a Bluetooth HCI socket (EAFNOSUPPORT). ' +
        'On a gate, check that the adapter exists (ls /sys/class/bluetooth, `gatectl doctor`) and is not blocked (rfkill unblock bluetooth); ' +
        'for development and tests without a radio, run with --source sim (or --source replay --replay FILE).',
      { cause: err },
    )
  }
  if (code === 'EPERM' || code === 'EACCES' || /EPERM|EACCES|not permitted/i.test(msg)) {
    return new GateError(
      'E_BLE_PERMISSION',
      `not permitted to use the Bluetooth adapter (${code ?? msg}): ${FIX_PERMISSION}`,
      {
        cause: err,
      },
    )
  }
  if (code === 'ENODEV' || /ENODEV|No such device/i.test(msg)) {
    return new GateError(
      'E_BLE_ADAPTER_UNAVAILABLE',
      `the configured HCI device does not exist (${msg}); list adapters with \`hciconfig -a\` or ls /sys/class/bluetooth and set source.noble.hciDevice, or run with --source sim`,
      { cause: err },
    )
  }
  return new GateError(
    'E_BLE_UNSUPPORTED',
    `the BLE library could not be loaded: ${msg}; reinstall with \`npm ci\` on the gate, or run with --source sim`,
    {
      cause: err,
    },
  )
}

/** Load @abandonware/noble lazily (only when the noble source is chosen), with the environment it reads at load. */
export function defaultLoadNoble(cfg: NobleConfig): LoadNoble {
  return async () => {
    if (cfg.reportAllHciEvents) process.env['NOBLE_REPORT_ALL_HCI_EVENTS'] = '1'
    if (cfg.hciDevice !== undefined) process.env['NOBLE_HCI_DEVICE_ID'] = String(cfg.hciDevice)
    const mod = (await import('@abandonware/noble')) as unknown as { default?: NobleLike } & NobleLike
    return mod.default ?? mod
  }
}

interface NobleCaches {
  _peripherals?: Record<string, unknown>
  _services?: Record<string, unknown>
  _characteristics?: Record<string, unknown>
  _descriptors?: Record<string, unknown>
  _discoveredPeripheralUUids?: Record<string, unknown>
  _bindings?: {
    _addresses?: Record<string, unknown>
    _addresseTypes?: Record<string, unknown>
    _connectable?: Record<string, unknown>
    _gap?: { _discoveries?: Record<string, unknown> }
  }
}

/**
 * Forget what noble remembers about every peripheral it has heard. With duplicates allowed these maps
 * gain an entry per address and never lose one; phones rotate random addresses every ~15 minutes, so
 * at a venue they grow without bound. The agent never connects, so nothing else refers to them.
 * Returns how many peripherals were forgotten.
 */
export function sweepNobleCaches(noble: unknown): number {
  const caches = noble as NobleCaches
  const forgotten = caches._peripherals ? Object.keys(caches._peripherals).length : 0
  for (const k of [
    '_peripherals',
    '_services',
    '_characteristics',
    '_descriptors',
    '_discoveredPeripheralUUids',
  ] as const) {
    if (caches[k] && typeof caches[k] === 'object') caches[k] = {}
  }
  const bindings = caches._bindings
  if (bindings && typeof bindings === 'object') {
    for (const k of ['_addresses', '_addresseTypes', '_connectable'] as const) {
      if (bindings[k] && typeof bindings[k] === 'object') bindings[k] = {}
    }
    if (bindings._gap && typeof bindings._gap === 'object' && bindings._gap._discoveries)
      bindings._gap._discoveries = {}
  }
  return forgotten
}

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

  private sweep(): void {
    if (!this.noble) return
    try {
      this.swept += sweepNobleCaches(this.noble)
    } catch (err) {
      this.deps.log.warn({ err: errorMessage(err) }, 'could not sweep noble caches')
    }
  }
}

/** noble gives 'aa:bb:..' on Linux and sometimes 'unknown' with only an id (macOS): always return a MAC-like string. */
function normalizeAddress(address: string | undefined, id: string): string {
  if (address && /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(address)) return address.toLowerCase()
  const hex = (id ?? '')
    .replace(/[^0-9a-fA-F]/g, '')
    .toLowerCase()
    .padEnd(12, '0')
    .slice(0, 12)
  return hex.match(/../g)?.join(':') ?? '00:00:00:00:00:00'
}

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

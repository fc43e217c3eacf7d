// noble itself, for the noble source: the part of its API the agent uses, how it is loaded (the
// only place that imports it), what its errors mean, its caches swept and its addresses normalised.
import type { EventEmitter } from 'node:events'
import { errorMessage, GateError } from '../../shared/errors.js'
import type { NobleConfig } from '../config/schema.js'

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

/** How to give the agent the adapter: said by every permission error. */
export const FIX_PERMISSION =
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

/** noble's per-peripheral maps, which grow with every address it hears. */
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

/** noble gives 'aa:bb:..' on Linux and sometimes 'unknown' with only an id (macOS): always return a MAC-like string. */
export function normalizeAddress(address: string | undefined, id: string): string {
  if (address && /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(address)) return address.toLowerCase()
  const hex = (id ?? '')
    .replace(/[^0-9a-fA-F]/g, '')
    .toLowerCase()
    .padEnd(12, '0')
    .slice(0, 12)
  return hex.match(/../g)?.join(':') ?? '00:00:00:00:00:00'
}

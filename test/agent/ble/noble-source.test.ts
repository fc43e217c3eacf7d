import { EventEmitter } from 'node:events'
import { describe, expect, it } from 'vitest'
import {
  classifyNobleError,
  defaultLoadNoble,
  type NobleLike,
  sweepNobleCaches,
} from '../../../agent/ble/noble.js'
import { NobleSource } from '../../../agent/ble/noble-source.js'
import type { Advert } from '../../../agent/ble/source.js'
import { systemClock } from '../../../agent/clock.js'
import type { NobleConfig } from '../../../agent/config/schema.js'
import { isGateError } from '../../../shared/errors.js'
import { bleSourceContract } from '../../contract/ble-source.contract.js'
import { silentLog } from '../../support/helpers.js'

/**
 * A fake radio with noble's surface: it answers scan start/stop like the HCI bindings do and, while
 * `broadcasting`, reports a peripheral every few ms. Switches let a test make it stall, stop on its
 * own, or stop answering.
 */
class FakeRadio extends EventEmitter implements NobleLike {
  _state = 'poweredOn'
  scanning = false
  broadcasting = true
  /** the controller stops confirming scan starts (a wedged adapter) */
  deaf = false
  starts = 0
  allowDuplicates: boolean | undefined
  _peripherals: Record<string, unknown> = {}
  _discoveredPeripheralUUids: Record<string, unknown> = {}
  _services: Record<string, unknown> = {}
  _characteristics: Record<string, unknown> = {}
  _descriptors: Record<string, unknown> = {}
  _bindings = {
    _addresses: {} as Record<string, unknown>,
    _gap: { _discoveries: {} as Record<string, unknown> },
  }
  private timer: NodeJS.Timeout
  private n = 0

  constructor(everyMs = 5) {
    super()
    this.timer = setInterval(() => this.tick(), everyMs)
    this.timer.unref()
  }

  get state(): string {
    return this._state
  }

  async startScanningAsync(_uuids?: string[], allowDuplicates?: boolean): Promise<void> {
    if (this.deaf) return new Promise(() => {})
    this.starts++
    this.allowDuplicates = allowDuplicates
    this.scanning = true
    setImmediate(() => this.emit('scanStart'))
  }

  async stopScanningAsync(): Promise<void> {
    this.scanning = false
    setImmediate(() => this.emit('scanStop'))
  }

  setState(s: string): void {
    this._state = s
    this.emit('stateChange', s)
  }

  /** the controller drops the scan without being asked */
  dropScan(): void {
    this.scanning = false
    this.emit('scanStop')
  }

  dispose(): void {
    clearInterval(this.timer)
  }

  private tick(): void {
    if (!this.scanning || !this.broadcasting) return
    const id = `c0ffee0000${(this.n++ % 256).toString(16).padStart(2, '0')}`
    const p = {
      id,
      address: id.match(/../g)?.join(':') ?? '',
      rssi: -60,
      advertisement: { manufacturerData: Buffer.from('4c001005aabbccddee', 'hex'), localName: 'phone' },
    }
    this._peripherals[id] = p
    this._discoveredPeripheralUUids[id] = true
    this._bindings._addresses[id] = p.address
    this._bindings._gap._discoveries[p.address] = {}
    this.emit('discover', p)
  }
}

const cfg = (over: Partial<NobleConfig> = {}): NobleConfig => ({
  stallTimeoutMs: 300,
  restartTimeoutMs: 200,
  reportAllHciEvents: true,
  cacheSweepIntervalMs: 60_000,
  ...over,
})

const make = (radio: FakeRadio, over: Partial<NobleConfig> = {}) =>
  new NobleSource(cfg(over), { clock: systemClock, log: silentLog, loadNoble: async () => radio })

const waitFor = async (cond: () => boolean, ms = 5_000) => {
  const until = Date.now() + ms
  while (!cond()) {
    if (Date.now() > until) throw new Error('timed out waiting')
    await new Promise((r) => setTimeout(r, 10))
  }
}

bleSourceContract('noble (fake radio)', () => {
  const radio = new FakeRadio()
  return { source: make(radio), cleanup: () => radio.dispose() }
})

describe('noble source', () => {
  it('scans with duplicates allowed and turns peripherals into adverts', async () => {
    const radio = new FakeRadio()
    const src = make(radio)
    const got: Advert[] = []
    await src.start({ advert: (a) => got.push(a) })
    await waitFor(() => got.length >= 3)
    expect(radio.allowDuplicates).toBe(true)
    expect(got[0]).toMatchObject({ rssi: -60, localName: 'phone', address: 'c0:ff:ee:00:00:00' })
    expect(got[0]?.manufacturerData?.toString('hex')).toBe('4c001005aabbccddee')
    await src.stop()
    radio.dispose()
  })

  it('restarts a scan that stopped by itself, and counts it', async () => {
    const radio = new FakeRadio()
    const src = make(radio)
    let n = 0
    await src.start({ advert: () => n++ })
    await waitFor(() => n > 0)
    radio.dropScan()
    await waitFor(() => src.status().scanRestarts === 1 && radio.scanning)
    const mark = n
    await waitFor(() => n > mark)
    expect(radio.starts).toBe(2)
    await src.stop()
    radio.dispose()
  })

  it('restarts a stalled scan, then calls a silent but answering adapter quiet, not dead', async () => {
    const radio = new FakeRadio()
    const src = make(radio)
    let n = 0
    await src.start({ advert: () => n++ })
    await waitFor(() => n > 0)
    expect(src.status().radio).toBe('scanning')
    radio.broadcasting = false // the hall empties (or the scan stalled: the watchdog cannot tell yet)
    await waitFor(() => src.status().scanRestarts >= 1, 3_000)
    await waitFor(() => src.status().radio === 'quiet', 3_000)
    expect(radio.starts).toBeGreaterThanOrEqual(2)
    // it backs off while quiet: not another restart every stallTimeoutMs
    const restarts = src.status().scanRestarts
    await new Promise((r) => setTimeout(r, 450))
    expect(src.status().scanRestarts).toBeLessThanOrEqual(restarts + 1)
    radio.broadcasting = true
    await waitFor(() => src.status().radio === 'scanning')
    await src.stop()
    radio.dispose()
  })

  it('says unresponsive when the adapter does not confirm a restart', async () => {
    const radio = new FakeRadio()
    const src = make(radio)
    let n = 0
    await src.start({ advert: () => n++ })
    await waitFor(() => n > 0)
    radio.broadcasting = false
    radio.deaf = true
    await waitFor(() => src.status().radio === 'unresponsive', 3_000)
    expect(src.status().detail).toMatch(/scan restart failed/)
    await src.stop()
    radio.dispose()
  })

  it('follows the adapter: powered off stops scanning, powered on scans again', async () => {
    const radio = new FakeRadio()
    const src = make(radio)
    const states: string[] = []
    let n = 0
    await src.start({ advert: () => n++, state: (s) => states.push(s) })
    await waitFor(() => n > 0)
    radio.scanning = false
    radio.setState('poweredOff')
    expect(src.status()).toMatchObject({ adapterState: 'poweredOff', scanning: false, radio: 'off' })
    radio.setState('poweredOn')
    await waitFor(() => src.status().scanning)
    expect(states).toEqual(['poweredOn', 'poweredOff', 'poweredOn'])
    await src.stop()
    radio.dispose()
  })

  it('refuses to start on an unauthorized or unsupported adapter, naming the fix', async () => {
    const radio = new FakeRadio()
    radio._state = 'unauthorized'
    await expect(make(radio).start({ advert: () => {} })).rejects.toSatisfy(
      (e: unknown) =>
        isGateError(e, 'E_BLE_PERMISSION') && /setcap cap_net_raw,cap_net_admin/.test((e as Error).message),
    )
    radio._state = 'unsupported'
    await expect(make(radio).start({ advert: () => {} })).rejects.toSatisfy((e: unknown) =>
      isGateError(e, 'E_BLE_UNSUPPORTED'),
    )
    expect(radio.listenerCount('discover')).toBe(0)
    radio.dispose()
  })

  it("sweeps noble's per-peripheral caches so memory stays flat with duplicates allowed", async () => {
    const radio = new FakeRadio(1)
    const src = make(radio, { cacheSweepIntervalMs: 100 })
    let n = 0
    await src.start({ advert: () => n++ })
    await waitFor(() => n > 300)
    await waitFor(
      () =>
        Object.keys(radio._peripherals).length < 100 &&
        Object.keys(radio._bindings._gap._discoveries).length < 100,
    )
    expect(src.status().detail).toMatch(/cached peripherals swept/)
    await src.stop()
    radio.dispose()
    expect(sweepNobleCaches({ _peripherals: { a: 1, b: 2 } })).toBe(2)
  })

  it('removes its listeners on stop', async () => {
    const radio = new FakeRadio()
    const src = make(radio)
    await src.start({ advert: () => {} })
    await src.stop()
    for (const e of ['discover', 'stateChange', 'scanStop', 'scanStart'])
      expect(radio.listenerCount(e)).toBe(0)
    radio.dispose()
  })

  it('on a machine without Bluetooth, the real noble fails with a clear cause and fix', async () => {
    let err: unknown
    try {
      await defaultLoadNoble(cfg())()
    } catch (e) {
      err = e
    }
    // badges that never answer scan requests are only reported with this set before noble loads
    expect(process.env['NOBLE_REPORT_ALL_HCI_EVENTS']).toBe('1')
    // this machine has no Bluetooth: loading noble throws EAFNOSUPPORT; on a gate it would load
    if (err === undefined) return
    const g = classifyNobleError(err)
    expect(g.code).toBe('E_BLE_ADAPTER_UNAVAILABLE')
    expect(g.message).toMatch(/EAFNOSUPPORT/)
    expect(g.message).toMatch(/--source sim/)
    const src = new NobleSource(cfg(), { clock: systemClock, log: silentLog })
    await expect(src.start({ advert: () => {} })).rejects.toSatisfy((e: unknown) =>
      isGateError(e, 'E_BLE_ADAPTER_UNAVAILABLE'),
    )
  })

  it('classifies permission errors with the setcap fix', () => {
    const e = classifyNobleError(
      Object.assign(new Error('EPERM, Operation not permitted'), { code: 'EPERM' }),
    )
    expect(e.code).toBe('E_BLE_PERMISSION')
    expect(e.message).toMatch(/setcap/)
  })
})

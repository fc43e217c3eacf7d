import type { GateError } from '../../shared/errors.js'
import type { CapturableAdvert } from '../../shared/replay.js'

/**
 * One BLE advertisement as seen by a source: the advert's fields (shared/replay.ts, where a capture
 * stores the same ones) and when it was received. Buffers are owned by the receiver once delivered.
 * This is the only shape that crosses from a radio (or a simulation, or a capture) into the pipeline.
 */
export interface Advert extends CapturableAdvert {
  /** when it was received: monotonic milliseconds from the agent's Clock.mono() */
  ts: number
}

/** Adapter states, as noble names them. Simulated and replay sources report 'poweredOn'. */
export type AdapterState =
  | 'unknown'
  | 'resetting'
  | 'unsupported'
  | 'unauthorized'
  | 'poweredOff'
  | 'poweredOn'

/**
 * What the radio is doing, as a technician needs to hear it:
 * - `scanning`: adverts are arriving;
 * - `quiet`: the adapter answers and scanning is on, but nothing has been heard for a while (an empty hall);
 * - `stalled`: scanning was on yet nothing arrived, so the scan was restarted (noble scans stall after hours);
 * - `unresponsive`: a scan restart was asked for and the adapter never confirmed it (a dead radio);
 * - `off`: the adapter is not powered on, or the source is stopped.
 */
export type RadioHealth = 'scanning' | 'quiet' | 'stalled' | 'unresponsive' | 'off'

/** A snapshot of a source, for status, doctor and MQTT metrics. */
export interface SourceStatus {
  kind: 'noble' | 'sim' | 'replay'
  adapterState: AdapterState
  scanning: boolean
  radio: RadioHealth
  /** how many times the scan was restarted (stall watchdog, scanStop, or on request) */
  scanRestarts: number
  /** monotonic ms of the last advert, or null when none yet */
  lastAdvertAt: number | null
  /** adverts delivered since start */
  adverts: number
  /** free text for humans, such as the replay file or the adapter's error */
  detail?: string | undefined
}

/** Callbacks a source delivers to. `advert` is hot: it must not throw and must not be slow. */
export interface SourceHandlers {
  advert(advert: Advert): void
  /** adapter state transitions (also delivered for the initial state) */
  state?(state: AdapterState): void
  /** a finite source (replay without loop) has delivered everything */
  end?(): void
  /** a non-fatal problem worth a log line (fatal ones reject start()) */
  warn?(err: GateError): void
}

/**
 * The port every BLE source implements: noble (a real adapter), sim (a synthetic crowd), replay (a capture).
 * Every adapter passes the shared contract suite in test/contract/ble-source.contract.ts.
 */
export interface BleSource {
  readonly kind: SourceStatus['kind']
  /**
   * Start delivering adverts to `handlers`. Resolves once scanning has started (or, for noble,
   * once the adapter has reported a state). Rejects with a GateError whose code names the cause
   * (E_BLE_ADAPTER_UNAVAILABLE, E_BLE_PERMISSION, E_BLE_UNSUPPORTED, E_REPLAY_FILE).
   * Calling start() twice without stop() rejects.
   */
  start(handlers: SourceHandlers): Promise<void>
  /** Stop delivering, release radios, timers and files. Idempotent; after it resolves no advert is delivered. */
  stop(): Promise<void>
  /** Restart scanning (asked by a technician or by the cloud). Counts as a scan restart. */
  restartScan(): Promise<void>
  /** A cheap snapshot; safe to call at any time, also before start() and after stop(). */
  status(): SourceStatus
}

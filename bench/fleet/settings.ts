/**
 * The fleet benchmark's settings (from the environment, the same in every one of its processes) and
 * what its processes say to each other: the orchestrator forks this benchmark again as each share
 * of the simulated fleet and as the baseline subscriber.
 */
import type { ChildProcess } from 'node:child_process'

/** the broker (the local Mosquitto) */
export const MQTT_URL = process.env['MQTT_URL'] ?? 'mqtt://127.0.0.1:1883'
/** the Redis database the monitor keeps the fleet's state in, flushed at the end */
export const REDIS_DB_URL = process.env['BENCH_REDIS_URL'] ?? 'redis://127.0.0.1:6379/7'
/** simulated gates */
export const GATES = Number(process.env['BENCH_FLEET_GATES'] ?? 10_000)
/** simulator processes the gates are shared out to */
export const WORKERS = 2
/** each gate's metrics report, ms */
export const INTERVAL_MS = 10_000
/** each gate's MQTT keep-alive, s */
export const KEEPALIVE_S = Number(process.env['BENCH_FLEET_KEEPALIVE_S'] ?? 10)
export const WILL_DELAY_S = 0 // MQTT 3.1.1, as the agent connects: the will goes out when the broker gives up
/** each steady-state measuring window, s */
export const STEADY_S = Number(process.env['BENCH_FLEET_STEADY_S'] ?? 60)
/** gates whose link is cut silently (the first worker's first ones) */
export const VICTIMS = 100

/** What the orchestrator tells a worker. */
export type ToWorker = { type: 'cut' } | { type: 'stop' }
/** What a worker tells the orchestrator. */
export type FromWorker =
  | { type: 'connected'; n: number }
  | { type: 'ready' }
  | { type: 'cut'; at: Record<string, number>; lastIn: Record<string, number> }
  | { type: 'stopped'; published: number }

/** A worker's share of the fleet: gates `from` .. `from + count - 1`, the first `victims` behind the proxy. */
export interface WorkerInit {
  prefix: string
  from: number
  count: number
  victims: number
}

/** Gate i of the run's fleet (ids under the run's own prefix). */
export const gateIdOf = (prefix: string, i: number): string => `${prefix}-${String(i).padStart(5, '0')}`

/** Resolves after `ms`. */
export const sleep = (ms: number): Promise<unknown> => new Promise((r) => setTimeout(r, ms))

/** The child's next message of `type`. */
export function once<T extends { type: string }>(child: ChildProcess, type: T['type']): Promise<T> {
  return new Promise((resolve) => {
    const on = (m: T) => {
      if (m.type !== type) return
      child.off('message', on)
      resolve(m)
    }
    child.on('message', on)
  })
}

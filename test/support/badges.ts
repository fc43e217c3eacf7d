import type { PushSource } from '../../agent/ble/push-source.js'
import { systemClock } from '../../agent/clock.js'

/** Manufacturer data of a badge with the default company and prefix, carrying `token` (hex, padded to 16). */
const mfgData = (token: string) =>
  Buffer.concat([Buffer.from('ffffca11', 'hex'), Buffer.from(token.padStart(16, '0'), 'hex')])

/** Push three loud adverts of a badge at a gate: enough for one arrival and one decision. */
export function walkUp(source: PushSource, token: string): void {
  const manufacturerData = mfgData(token)
  for (let i = 0; i < 3; i++)
    source.push({ address: 'c0:00:00:00:00:01', rssi: -50, manufacturerData, ts: systemClock.mono() })
}

/**
 * A badge broadcasting `token` from `t` ms for 600 ms, as lines of a capture file (the replay
 * source's format).
 */
export function visit(token: string, address: string, t: number): string[] {
  const lines: string[] = []
  for (let dt = 0; dt <= 600; dt += 100)
    lines.push(JSON.stringify({ t: t + dt, address, rssi: -50, mfg: `ffffca11${token}` }))
  return lines
}

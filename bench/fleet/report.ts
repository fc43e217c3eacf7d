/** The fleet benchmark's table, baseline and monitor side by side, and its line of targets. */
import { fmt, printTable } from '../harness.js'
import { lowerMedian as median } from '../support/stats.js'
import type { LinkLoss } from './link-loss.js'
import { GATES, STEADY_S, VICTIMS } from './settings.js'

/** A consumer in steady state over STEADY_S: the plain subscriber's or the monitor's. */
export interface Steady {
  /** messages it received over the window */
  messages: number
  /** its CPU, cores */
  cores: number
  rssBytes: number
  /** the broker's CPU meanwhile, cores */
  brokerCores: number
}

/** Prints the table and the targets. */
export function printReport(r: {
  baseline: Steady
  monitor: Steady
  /** gates online in the monitor and heard within 2 intervals */
  fresh: number
  /** seconds from the service's start until every gate was tracked */
  trackedAfterS: number
  loss: LinkLoss
}): void {
  const { baseline: sub, monitor: mon, fresh, loss } = r
  const { delays, fromLastPacket, keepAliveDelays, brokerDelays, aheadOfWill, limitS } = loss
  const maxDelay = delays.length ? Math.max(...delays) : Number.NaN
  const rows: string[][] = [
    ['measure', 'broker + plain subscriber (baseline)', 'broker + gate-cloud fleet monitor'],
    ['gates tracked (online, heard within 2 intervals)', '-', `${fmt(fresh)} / ${fmt(GATES)}`],
    ['all gates tracked after start, s', '-', fmt(r.trackedAfterS, 1)],
    ['messages/s received', fmt(sub.messages / STEADY_S, 0), fmt(mon.messages / STEADY_S, 0)],
    ['consumer CPU, cores (median of 3 windows)', fmt(sub.cores, 3), fmt(mon.cores, 3)],
    ['consumer RSS, MB', fmt(sub.rssBytes / 1e6, 0), fmt(mon.rssBytes / 1e6, 0)],
    ['broker CPU, cores', fmt(sub.brokerCores, 3), fmt(mon.brokerCores, 3)],
    [
      `silent link loss (cut) to offline in the monitor, s (${VICTIMS} gates)`,
      '-',
      `median ${fmt(median(delays), 1)}, max ${fmt(maxDelay, 1)} (${delays.length}/${VICTIMS} seen)`,
    ],
    [
      `gate's last packet to offline in the monitor, s (limit ${limitS} s)`,
      '-',
      `median ${fmt(median(fromLastPacket), 1)}, max ${fmt(Math.max(...fromLastPacket), 1)}`,
    ],
    ["  offline by the monitor's silence rule / by the will", '-', `${loss.bySilence} / ${loss.byWill}`],
    [
      "  for reference: gate's last packet to the broker's will, s",
      '-',
      `median ${fmt(median(keepAliveDelays), 1)}, max ${fmt(Math.max(...keepAliveDelays), 1)} (${keepAliveDelays.length} wills)`,
    ],
    [
      '  for reference: cut to the will, s',
      '-',
      `median ${fmt(median(brokerDelays), 1)}, max ${fmt(Math.max(...brokerDelays), 1)}`,
    ],
    [
      '  the monitor ahead of the will, s',
      '-',
      `median ${fmt(median(aheadOfWill), 1)}, min ${fmt(Math.min(...aheadOfWill), 1)}`,
    ],
  ]
  console.log('')
  printTable(rows)
  console.log('')
  const cpuOk = mon.cores < 0.5
  const worst = Math.max(...fromLastPacket)
  const detectOk = delays.length === VICTIMS && worst <= limitS
  console.log(
    `targets: every gate tracked ${fresh === GATES ? 'met' : 'MISSED'}; monitor under half a core ${cpuOk ? 'met' : 'MISSED'} (${fmt(mon.cores, 3)} cores, ${fmt(mon.cores / sub.cores, 1)}x the plain subscriber); offline within 1.5 keep-alive + will delay ${detectOk ? 'met' : 'MISSED'} (max ${fmt(worst, 1)} s from the gate's last packet against ${limitS} s; ${loss.bySilence} of ${loss.seen} by the monitor's silence rule; the broker's will max ${fmt(Math.max(...keepAliveDelays), 1)} s after the last packet)`,
  )
}

import { execFileSync } from 'node:child_process'
import { performance } from 'node:perf_hooks'
import { cpuSeconds } from '../harness.js'
import { lowerMedian } from '../support/stats.js'
import { sleep } from './settings.js'

/** The local Mosquitto's pid; 0 if it is not running here. */
export function mosquittoPid(): number {
  try {
    return Number(execFileSync('pidof', ['mosquitto'], { encoding: 'utf8' }).trim().split(/\s+/)[0])
  } catch {
    return 0
  }
}

/**
 * CPU used by processes over `seconds`, in cores (1.0 = one core busy all the time): the median of
 * three equal windows (this machine is noisy), for each process.
 */
export async function cores(pids: number[], seconds: number): Promise<number[]> {
  const windows: number[][] = []
  for (let w = 0; w < 3; w++) {
    const t0 = performance.now()
    const a = pids.map((p) => (p ? cpuSeconds(p) : 0))
    await sleep((seconds * 1000) / 3)
    const wall = (performance.now() - t0) / 1000
    windows.push(pids.map((p, k) => (p ? (cpuSeconds(p) - (a[k] as number)) / wall : Number.NaN)))
  }
  return pids.map((_, k) => lowerMedian(windows.map((w) => w[k] as number)))
}

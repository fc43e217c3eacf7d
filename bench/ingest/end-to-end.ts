/** The ingest benchmark's first phase: the gates' prepared batches uploaded concurrently, end to end. */
import { performance } from 'node:perf_hooks'
import { cpuSeconds, fmt, idleCpuSeconds, postgresCpu, postgresCpuSince } from '../harness.js'

/** What the phase measured. */
export interface EndToEnd {
  /** each batch's round trip, ms */
  latencies: number[]
  stored: number
  failed: number
  /** gates that ran out of prepared batches before the time was up */
  exhausted: number
  seconds: number
  rate: number
  /** CPU per 1,000 records stored (service, Postgres, this run's sessions), and the CPUs left idle */
  cpu: { service: string; pg: string; own: string; idle: string }
}

/**
 * Each gate uploads its batches (`bodies[g]`, with `keys[g]`) one after another to the service at
 * `url` for `seconds`, all gates at once.
 */
export async function endToEnd(o: {
  url: string
  keys: string[]
  bodies: Buffer[][]
  seconds: number
  servicePid: number
  dbName: string
}): Promise<EndToEnd> {
  const latencies: number[] = []
  let stored = 0
  let failed = 0
  let exhausted = 0
  // where the machine's CPU goes in this phase: the service, Postgres, and what was left idle
  const cpu0 = {
    service: cpuSeconds(o.servicePid),
    pg: postgresCpu(),
    own: postgresCpu(o.dbName),
    idle: idleCpuSeconds(),
  }
  const t0 = performance.now()
  const until = t0 + o.seconds * 1000
  await Promise.all(
    o.bodies.map(async (list, g) => {
      for (let b = 0; performance.now() < until; b++) {
        const body = list[b]
        if (!body) {
          exhausted++
          break
        }
        const s = performance.now()
        const res = await fetch(`${o.url}/v1/sync/checkins`, {
          method: 'POST',
          headers: {
            authorization: `Bearer ${o.keys[g]}`,
            'content-type': 'application/json',
            'content-encoding': 'gzip',
          },
          body,
        })
        const answer = (await res.json()) as { accepted?: number }
        latencies.push(performance.now() - s)
        if (res.ok) stored += answer.accepted ?? 0
        else failed++
      }
    }),
  )
  const seconds = (performance.now() - t0) / 1000
  const perK = (cpu: number) => `${fmt((cpu * 1e6) / stored, 1)} ms`
  return {
    latencies,
    stored,
    failed,
    exhausted,
    seconds,
    rate: stored / seconds,
    cpu: {
      service: perK(cpuSeconds(o.servicePid) - cpu0.service),
      pg: perK(postgresCpuSince(cpu0.pg)),
      own: perK(postgresCpuSince(cpu0.own, postgresCpu(o.dbName))),
      idle: fmt((idleCpuSeconds() - cpu0.idle) / seconds, 2),
    },
  }
}

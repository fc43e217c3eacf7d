import { PerformanceObserver } from 'node:perf_hooks'
import v8 from 'node:v8'
import { describe, expect, it } from 'vitest'
import { agentConfigSchema } from '../../../agent/config/schema.js'
import { exposedGc, startHeapCompaction } from '../../../agent/lifecycle/heap.js'
import { silentLog } from '../../support/helpers.js'

const used = () => v8.getHeapStatistics().used_heap_size
const mb = (n: number) => n / 1048576

describe('heap compaction (memory.majorGcEveryS)', () => {
  it('gets the collector without a command-line flag', () => {
    expect(exposedGc()).toBeTypeOf('function')
  })

  it('gives back garbage the heap would otherwise keep: a full collection on its interval', async () => {
    const majors: number[] = []
    const obs = new PerformanceObserver((list) => {
      // kind 4: NODE_PERFORMANCE_GC_MAJOR (mark-sweep-compact)
      for (const e of list.getEntries())
        if ((e as unknown as { detail?: { kind?: number } }).detail?.kind === 4) majors.push(e.startTime)
    })
    obs.observe({ entryTypes: ['gc'] })
    // 40 MB that lives long enough to reach the old space, then is dropped
    let junk: number[][] | null = Array.from({ length: 400 }, () =>
      Array.from({ length: 12_500 }, (_, i) => i + 0.5),
    )
    await new Promise((r) => setTimeout(r, 50))
    const withJunk = used()
    junk = null
    expect(junk).toBeNull()
    const stop = startHeapCompaction(300, silentLog)
    try {
      const t0 = performance.now()
      while (performance.now() - t0 < 5_000 && used() > withJunk - 30 * 1048576)
        await new Promise((r) => setTimeout(r, 50))
      expect(mb(withJunk - used())).toBeGreaterThan(30)
      expect(majors.length).toBeGreaterThan(0)
    } finally {
      stop()
      obs.disconnect()
    }
  })

  it('is on by default every 30 s, and 0 turns it off', () => {
    const base = { gateId: 'g1', dataDir: '/tmp/x' }
    expect(agentConfigSchema.parse(base).memory.majorGcEveryS).toBe(30)
    expect(agentConfigSchema.parse({ ...base, memory: { majorGcEveryS: 0 } }).memory.majorGcEveryS).toBe(0)
    expect(agentConfigSchema.safeParse({ ...base, memory: { majorGcEveryS: -1 } }).success).toBe(false)
    const stop = startHeapCompaction(0, silentLog)
    expect(stop).toBeTypeOf('function')
    stop()
  })
})

import { Counter, Gauge, Histogram, type Registry } from 'prom-client'

/** The cache's Prometheus metrics. */
export interface CacheMetrics {
  requests: Counter<'layer' | 'result'>
  latency: Histogram<'layer' | 'op'>
  loads: Counter<'result'>
  circuit: Gauge
  l1Entries: Gauge
  l1Bytes: Gauge
  invalidations: Counter<'kind'>
  /** count one look-up of `layer` (a hit, a miss or a stale entry) */
  lookup(layer: 'l1' | 'l2', result: 'hit' | 'miss' | 'stale'): void
  /** one L1 look-up took this long, s */
  l1Get(seconds: number): void
}

/** Register the cache's metrics; `l1` is read when they are collected. */
export function cacheMetrics(
  registry: Registry,
  l1: { readonly size: number; readonly calculatedSize: number },
): CacheMetrics {
  const requests = new Counter({
    name: 'cache_requests_total',
    help: 'Cache look-ups by layer and result (hit, miss, stale)',
    labelNames: ['layer', 'result'],
    registers: [registry],
  })
  const latency = new Histogram({
    name: 'cache_operation_duration_seconds',
    help: 'Cache operation latency by layer',
    labelNames: ['layer', 'op'],
    buckets: [0.00005, 0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5],
    registers: [registry],
  })
  const loads = new Counter({
    name: 'cache_loads_total',
    help: 'Loader calls by result (ok, error, failsafe: a stale value served instead)',
    labelNames: ['result'],
    registers: [registry],
  })
  const circuit = new Gauge({
    name: 'cache_l2_circuit_open',
    help: '1 while the circuit to Redis is open (L2 skipped)',
    registers: [registry],
  })
  const l1Entries: Gauge = new Gauge({
    name: 'cache_l1_entries',
    help: 'Entries in L1',
    registers: [registry],
    collect: () => l1Entries.set(l1.size),
  })
  const l1Bytes: Gauge = new Gauge({
    name: 'cache_l1_bytes',
    help: 'Approximate bytes of values in L1',
    registers: [registry],
    collect: () => l1Bytes.set(l1.calculatedSize),
  })
  const invalidations = new Counter({
    name: 'cache_invalidations_total',
    help: 'Invalidations by kind (key, tag, prefix, bus: received from another node)',
    labelNames: ['kind'],
    registers: [registry],
  })
  // label children are resolved once: hashing a label object per look-up costs more than the look-up
  const lookups = new Map<string, { inc(): void }>()
  const l1GetLatency = latency.labels('l1', 'get')
  return {
    requests,
    latency,
    loads,
    circuit,
    l1Entries,
    l1Bytes,
    invalidations,
    lookup: (layer, result) => {
      let counter = lookups.get(`${layer}:${result}`)
      if (!counter) {
        counter = requests.labels(layer, result)
        lookups.set(`${layer}:${result}`, counter)
      }
      counter.inc()
    },
    l1Get: (seconds) => l1GetLatency.observe(seconds),
  }
}

import { collectDefaultMetrics, Registry } from 'prom-client'

/** A registry with the process metrics (CPU, memory, event-loop lag, GC, handles) of this node. */
export function createRegistry(): Registry {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  return registry
}

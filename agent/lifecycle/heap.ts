import v8 from 'node:v8'
import vm from 'node:vm'
import type { Logger } from 'pino'

type Gc = (options?: { type?: 'major' | 'minor'; execution?: 'sync' | 'async' }) => void | Promise<void>

let cached: Gc | null | undefined

/**
 * V8's garbage collector as a function. `--expose-gc` set at run time and fetched from a fresh
 * context, as jest's leak detector does: the agent's unit and `npm start` need no extra flag, and
 * nothing else in the process sees a global `gc`. Null when this V8 refuses.
 */
export function exposedGc(): Gc | null {
  if (cached !== undefined) return cached
  try {
    v8.setFlagsFromString('--expose-gc')
    const gc = vm.runInNewContext('gc') as unknown
    cached = typeof gc === 'function' ? (gc as Gc) : null
  } catch {
    cached = null
  }
  return cached
}

/**
 * A full, incremental collection every `everyMs`. Under steady load V8 lets the old space grow
 * well past what is live before it collects (measured: it went on growing for minutes while what
 * is live stayed the same; docs/benchmarks.md), and the pages it grew stay resident. An `async` major GC marks
 * concurrently and in small steps on the main thread, so it does not stop decisions for a full
 * mark-compact; it only collects earlier than V8 would have. Returns the stop function.
 */
export function startHeapCompaction(everyMs: number, log: Logger): () => void {
  if (everyMs <= 0) return () => {}
  const gc = exposedGc()
  if (!gc) {
    log.warn('this Node does not let the agent run the garbage collector; memory is left to V8')
    return () => {}
  }
  const timer = setInterval(() => {
    try {
      void gc({ type: 'major', execution: 'async' })
    } catch (err) {
      log.debug({ err: (err as Error).message }, 'garbage collection request refused')
    }
  }, everyMs)
  timer.unref()
  return () => clearInterval(timer)
}

import { describe, expect, it } from 'vitest'
import { Shutdown } from '../../shared/shutdown.js'

/** A log that keeps what it is told. */
function recordingLog(): { error: (obj: unknown, msg?: string) => void; lines: string[] } {
  const lines: string[] = []
  return {
    lines,
    error: (obj, msg) => {
      lines.push(`${msg ?? ''} ${JSON.stringify(obj)}`)
    },
  }
}

/**
 * The server's parts as `gate-cloud serve` starts them (the pool first, the HTTP app after the
 * clients it is built on), each recording its stop.
 */
function serverParts(stopped: string[], overrides: Record<string, () => unknown> = {}): Shutdown {
  const shutdown = new Shutdown()
  for (const name of ['pool', 'perf', 'redis', 'cache', 'replicas', 'fleet', 'http', 'maintenance', 'alerts'])
    shutdown.started(name, async () => {
      await overrides[name]?.()
      stopped.push(name)
    })
  return shutdown
}

describe('stopping in reverse order, each step on its own', () => {
  it('stops what started last first, the pool last', async () => {
    const stopped: string[] = []
    const report = await serverParts(stopped).stop({ log: recordingLog(), timeoutMs: 1_000 })
    expect(stopped).toEqual([
      'alerts',
      'maintenance',
      'http',
      'fleet',
      'replicas',
      'cache',
      'redis',
      'perf',
      'pool',
    ])
    expect(report).toEqual({ failed: [], overran: [] })
  })

  it('a step that fails does not keep the later ones from running: the pool is still closed', async () => {
    const stopped: string[] = []
    const log = recordingLog()
    const report = await serverParts(stopped, {
      http: () => Promise.reject(new Error('close failed')),
      cache: () => {
        throw new Error('cache stop threw')
      },
    }).stop({ log, timeoutMs: 1_000 })
    expect(stopped).toEqual(['alerts', 'maintenance', 'fleet', 'replicas', 'redis', 'perf', 'pool'])
    expect(report.failed).toEqual(['http', 'cache'])
    expect(log.lines.join('\n')).toMatch(/error while stopping.*"step":"http"/)
  })

  it('a step that hangs is left behind at its deadline, and the later ones run', async () => {
    const stopped: string[] = []
    const log = recordingLog()
    const t0 = Date.now()
    const report = await serverParts(stopped, { fleet: () => new Promise(() => {}) }).stop({
      log,
      timeoutMs: 100,
    })
    expect(Date.now() - t0).toBeLessThan(1_000)
    expect(stopped).toEqual(['alerts', 'maintenance', 'http', 'replicas', 'cache', 'redis', 'perf', 'pool'])
    expect(report.overran).toEqual(['fleet'])
    expect(log.lines.join('\n')).toMatch(/did not stop within its deadline.*"step":"fleet"/)
  })
})

import { describe, expect, it } from 'vitest'
import { type StopGuardDeps, stopWithin } from '../../../agent/lifecycle/stop-guard.js'

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/** A guard whose exits and log lines are recorded instead of ending the test's process. */
function guarded(stop: () => Promise<void>, step: () => string | null = () => null) {
  const exits: Array<{ code: number; at: number }> = []
  const lines: Array<{ level: string; obj: Record<string, unknown>; msg: string }> = []
  const t0 = performance.now()
  const rec = (level: string) => (obj: unknown, msg?: unknown) => {
    lines.push(
      typeof obj === 'string'
        ? { level, obj: {}, msg: obj }
        : { level, obj: obj as Record<string, unknown>, msg: String(msg) },
    )
  }
  const deps: StopGuardDeps = {
    stop,
    step,
    log: {
      error: rec('error'),
      warn: rec('warn'),
      info: rec('info'),
      flush: () => {},
    } as StopGuardDeps['log'],
    exit: (code) => {
      exits.push({ code, at: performance.now() - t0 })
    },
    deadlineMs: 300,
    lingerMs: 100,
    failureCode: 1,
  }
  return { deps, exits, lines }
}

describe('the stop guard: the gate process ends after a stop, whatever holds it', () => {
  it('exits with 0 once stopped when a forgotten handle keeps the process, and names the handle', async () => {
    const g = guarded(async () => {})
    const forgotten = setInterval(() => {}, 1_000) // what a library left behind
    try {
      await stopWithin(g.deps)
      expect(g.exits).toEqual([])
      await sleep(250)
      expect(g.exits.map((e) => e.code)).toEqual([0])
      expect(g.exits[0]?.at).toBeGreaterThanOrEqual(90)
      const warn = g.lines.find((l) => l.level === 'warn')
      expect(warn?.msg).toMatch(/kept the process/)
      expect(warn?.obj['handles']).toEqual(expect.any(Array))
    } finally {
      clearInterval(forgotten)
    }
  })

  it('exits with the failure code at the deadline when a step never ends, and names the step', async () => {
    const g = guarded(
      () => new Promise<void>(() => {}),
      () => 'reporter',
    )
    void stopWithin(g.deps)
    await sleep(150)
    expect(g.exits).toEqual([])
    await sleep(300)
    expect(g.exits.map((e) => e.code)).toEqual([1])
    const error = g.lines.find((l) => l.level === 'error')
    expect(error?.obj).toMatchObject({ deadlineMs: 300, step: 'reporter' })
  })

  it('does not exit at the deadline once the stop finished in time', async () => {
    const g = guarded(() => sleep(50))
    await stopWithin(g.deps)
    await sleep(400)
    expect(g.exits.map((e) => e.code)).toEqual([0]) // the linger exit alone, never the deadline's 1
    expect(g.lines.some((l) => l.level === 'error')).toBe(false)
  })
})

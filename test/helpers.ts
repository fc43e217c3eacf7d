import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { pino } from 'pino'

/** A temporary directory removed by the returned cleanup. */
export function tempDir(prefix = 'gate-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix))
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) }
}

/** A logger that discards everything (tests assert behaviour, not log lines). */
export const silentLog = pino({ level: 'silent' })

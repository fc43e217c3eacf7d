import { existsSync, readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { CONFIG_IN_USE } from '../config/in-use.js'
import { DB_NAME } from '../store/open-agent-db.js'

/** A gate's data directory found on this machine. */
export interface FoundDataDir {
  dir: string
  /** the gate's id, when its agent left its configuration in use */
  gateId?: string
}

/** Where gates keep their data: the Pi install's, the default, and the demo's gates (`npm start`). */
function candidates(cwd: string): string[] {
  const out = ['/var/lib/gate-agent', path.join(cwd, 'data'), path.join(cwd, 'data', 'agent')]
  for (const parent of [path.join(cwd, 'data', 'gates'), path.join(cwd, 'data')]) {
    try {
      for (const entry of readdirSync(parent, { withFileTypes: true }))
        if (entry.isDirectory()) out.push(path.join(parent, entry.name))
    } catch {
      // no such directory, or not ours to read: nothing found there
    }
  }
  return [...new Set(out)]
}

function gateIdIn(dir: string): string | undefined {
  try {
    const config = JSON.parse(readFileSync(path.join(dir, CONFIG_IN_USE), 'utf8')) as { gateId?: unknown }
    return typeof config.gateId === 'string' ? config.gateId : undefined
  } catch {
    return undefined
  }
}

/** The directories near `cwd` (and the Pi's) that hold a gate's database. */
export function findDataDirs(cwd = process.cwd()): FoundDataDir[] {
  return candidates(cwd)
    .filter((dir) => existsSync(path.join(dir, DB_NAME)))
    .map((dir) => {
      const gateId = gateIdIn(dir)
      return gateId === undefined ? { dir } : { dir, gateId }
    })
}

/** "No gate data in DIR", and the directories that do hold some, with the command to use one. */
export function noDataMessage(dir: string, found: readonly FoundDataDir[], cwd = process.cwd()): string {
  const head = `no gate data in ${dir} (no ${DB_NAME}): is this the gate's data directory?`
  if (found.length === 0)
    return `${head} No gate data found in ./data or /var/lib/gate-agent either; give the gate's with --data-dir DIR (or GATE_DATA_DIR).`
  const shown = found.map((f) => {
    const rel = path.relative(cwd, f.dir)
    const name = rel === '' || rel.startsWith('..') ? f.dir : rel
    return `  ${name}${f.gateId ? `  (gate ${f.gateId})` : ''}`
  })
  const first = shown[0]?.trim().split(/\s+/)[0]
  return `${head} Gate data found here:\n${shown.join('\n')}\nfor example: gatectl --data-dir ${first} status`
}

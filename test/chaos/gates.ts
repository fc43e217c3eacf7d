import { type ChildProcess, spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import Database from 'better-sqlite3'
import pg from 'pg'
import { ControlClient, SOCKET_NAME } from '../../agent/control/client.js'
import type { Checkin } from '../../shared/checkin.js'
import type { AgentStatus } from '../../shared/status.js'
import { freePort } from '../support/helpers.js'
import {
  type AgentProcess,
  CLOUD_BIN,
  cleanEnv,
  cloudCli,
  eventually,
  spawnAgent,
  waitForAgent,
} from '../support/process-helpers.js'

// The pieces the disk-full, clock and soak tests share: a `gate-cloud serve` of their own on the
// real Postgres, gates whose every emitted decision is collected live, and the final account of
// what the gate emitted, kept in its file and got to Postgres. The servers are never restarted here.

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** The ops token of the clouds started here. */
export const OPS_TOKEN = 'chaos-ops-token-0123456789abcdef'

/** A `gate-cloud serve` on a database of its own, started and stopped by the test. */
export interface Cloud {
  port: number
  url: string
  /** stop it (SIGKILL or SIGTERM) and wait for the exit */
  stop(signal?: NodeJS.Signals): Promise<void>
  /** a gate key for a new gate */
  addGate(gateId: string): Promise<string>
}

/** Start `gate-cloud serve` on `databaseUrl` (no Redis, no broker: the tests look at the check-ins). */
export async function startCloud(databaseUrl: string, env: Record<string, string> = {}): Promise<Cloud> {
  const port = await freePort()
  const child: ChildProcess = spawn(process.execPath, [CLOUD_BIN, 'serve'], {
    env: cleanEnv({
      DATABASE_URL: databaseUrl,
      PORT: String(port),
      LOG_LEVEL: 'error',
      PARTITION_INTERVAL: 'month',
      OPS_TOKEN: OPS_TOKEN,
      ...env,
    }),
    stdio: 'ignore',
  })
  const exited = new Promise((r) => child.once('exit', r))
  await eventually(
    async () => (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => null))?.ok,
    60_000,
    200,
  )
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
      await exited
    },
    addGate: async (gateId) => {
      const r = await cloudCli(['gates', 'add', gateId], { DATABASE_URL: databaseUrl })
      if (r.code !== 0) throw new Error(`gates add ${gateId}: ${r.stderr}`)
      return r.stdout.trim()
    },
  }
}

/** A running gate and the ids of the decisions it emitted, as `gatectl tail` sees them. */
export interface TailedGate {
  agent: AgentProcess
  /** every decision emitted on the control socket, id -> when it was received (Date.now()) */
  emitted: Map<string, number>
  close(): void
}

/** Write a gate's config file; returns its path. */
export function writeGateConfig(dir: string, gateId: string, config: Record<string, unknown>): string {
  const file = path.join(dir, `${gateId}.json`)
  writeFileSync(file, JSON.stringify({ gateId, ...config }))
  return file
}

/**
 * Start `gate-agent run` and collect every decision it emits into `emitted` (shared across the
 * gate's restarts, so that a kill never hides what was emitted before it).
 */
export async function startTailedGate(
  dataDir: string,
  args: string[],
  env: Record<string, string>,
  emitted: Map<string, number> = new Map(),
  onDecision?: (d: Checkin) => void,
): Promise<TailedGate> {
  const agent = spawnAgent(dataDir, args, env)
  await waitForAgent(agent, 60_000)
  const tail = await ControlClient.connect(path.join(dataDir, SOCKET_NAME), 5_000)
  await tail.subscribe(['decisions'], (_s, d) => {
    emitted.set((d as Checkin).id, Date.now())
    onDecision?.(d as Checkin)
  })
  return { agent, emitted, close: () => tail.close() }
}

/** The daemon's status, or null when it does not answer. */
export async function gateStatus(dataDir: string): Promise<AgentStatus | null> {
  try {
    const c = await ControlClient.connect(path.join(dataDir, SOCKET_NAME), 2_000)
    try {
      return (await c.request('status', undefined, 5_000)) as AgentStatus
    } finally {
      c.close()
    }
  } catch {
    return null
  }
}

/** Decisions the gate has emitted since it started (admits and denials). */
export function decided(s: AgentStatus | null): number {
  const c = s?.counters
  return c ? c.admit + Object.values(c.deny).reduce((x, y) => x + y, 0) : -1
}

/** Stop a gate with SIGTERM (a clean stop flushes and checkpoints) and wait for it. */
export async function stopGate(g: TailedGate | AgentProcess): Promise<void> {
  const a = 'agent' in g ? g.agent : g
  if ('close' in g) g.close()
  if (a.child.exitCode === null && a.child.signalCode === null) a.child.kill('SIGTERM')
  await a.exited
}

/** What one gate emitted, kept and got to the cloud. */
export interface Account {
  emitted: number
  /** rows in the gate's SQLite file */
  inFile: number
  /** emitted decisions missing from the file */
  lostFromFile: number
  /** emitted decisions missing from Postgres */
  lostFromCloud: number
  /** emitted decisions missing from the file or from Postgres (the table's "records lost") */
  lost: number
  /** records stored twice in Postgres */
  doubled: number
  /** rows of the file not in Postgres (still pending, or lost on the way) and not refused */
  notSynced: number
  /** records in Postgres the file does not hold */
  foreign: number
  /** the file's PRAGMA quick_check */
  integrity: string
}

/** Compare what the gate emitted, its file (the daemon stopped) and Postgres. */
export async function account(
  databaseUrl: string,
  gateId: string,
  dataDir: string,
  emitted: Iterable<string>,
): Promise<Account> {
  const local = new Database(path.join(dataDir, 'agent.db'), { readonly: true })
  let file: Array<{ id: string; refused: number }>
  let integrity: string
  try {
    file = local.prepare('SELECT id, sync_error IS NOT NULL AS refused FROM checkins').all() as typeof file
    integrity = String(local.pragma('quick_check', { simple: true }))
  } finally {
    local.close()
  }
  const sql = new pg.Client({ connectionString: databaseUrl })
  await sql.connect()
  let rows: Array<{ id: string; n: string }>
  try {
    rows = (
      await sql.query<{ id: string; n: string }>(
        'SELECT id::text, count(*) AS n FROM attendance_records WHERE gate_id = $1 GROUP BY id',
        [gateId],
      )
    ).rows
  } finally {
    await sql.end()
  }
  const inFile = new Set(file.map((r) => r.id))
  const inPg = new Set(rows.map((r) => r.id))
  const seen = [...emitted]
  return {
    emitted: seen.length,
    inFile: inFile.size,
    lostFromFile: seen.filter((id) => !inFile.has(id)).length,
    lostFromCloud: seen.filter((id) => !inPg.has(id)).length,
    lost: seen.filter((id) => !inFile.has(id) || !inPg.has(id)).length,
    doubled: rows.filter((r) => Number(r.n) > 1).length,
    notSynced: file.filter((r) => !r.refused && !inPg.has(r.id)).length,
    foreign: [...inPg].filter((id) => !inFile.has(id)).length,
    integrity,
  }
}

/** Wait until the gate has nothing pending or in flight. */
export async function drained(dataDir: string, timeoutMs = 90_000): Promise<void> {
  await eventually(
    async () => {
      const s = await gateStatus(dataDir)
      return s !== null && s.buffer.pending === 0 && s.buffer.inFlight === 0
    },
    timeoutMs,
    250,
  )
}

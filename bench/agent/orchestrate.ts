/**
 * The parent side of the agent benchmark: each phase in a child process of its own (this same
 * benchmark with --phase), one after the other, then the report.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import type { CrowdAlone } from './crowd-alone.js'
import { type AgentBenchOptions, optionArgs } from './options.js'
import type { BaselineResult } from './phase.js'
import { printReport } from './report.js'
import type { RunResult } from './run-agent.js'

/** Runs phase `name` as `node <entry> --phase name`, and reads its result (the last line it prints). */
function runPhase<T>(
  entry: string,
  name: string,
  dir: string,
  o: AgentBenchOptions,
  nodeArgs: string[] = [],
): T {
  const out = execFileSync(
    process.execPath,
    [...process.execArgv, ...nodeArgs, entry, '--phase', name, '--dir', dir, ...optionArgs(o)],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
      maxBuffer: 16 * 1024 * 1024,
      // as deploy/systemd/gate-agent.service runs the agent (glibc reads it when the process starts)
      env: { ...process.env, MALLOC_ARENA_MAX: process.env['MALLOC_ARENA_MAX'] ?? '2' },
    },
  ).toString()
  const last = out.trim().split('\n').pop() ?? ''
  return JSON.parse(last) as T
}

/** The whole benchmark; `entry` is the benchmark's own script, run again for each phase. */
export function main(entry: string, o: AgentBenchOptions): void {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'gate-bench-'))
  try {
    console.log(
      `bench:agent  node ${process.version} ${process.execArgv.join(' ')}, ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), ${os.platform()} ${os.release()}`,
    )
    console.log(
      `crowd: ${o.participants} participants + 50 revoked + 50 unknown + 40 foreign devices; ${o.minutes} min per agent phase; each phase in its own process; ${o.zones > 0 ? `access policy of ${o.zones} zones and ${o.rules} rules` : 'no access policy'}\n`,
    )
    process.stderr.write(`flat out for ${o.minutes} min ...\n`)
    const flat = runPhase<RunResult>(entry, 'flat', dir, o)
    process.stderr.write(`steady venue load: ${o.paced} adverts/s for ${o.minutes} min ...\n`)
    const paced = runPhase<RunResult>(entry, 'paced', dir, o)
    process.stderr.write(
      'baseline: raw better-sqlite3 inserts (WAL, synchronous=FULL), 3 runs of 2 s each ...\n',
    )
    const base = runPhase<BaselineResult>(entry, 'baseline', dir, o)
    process.stderr.write('the simulated crowd alone, in a process of its own ...\n')
    const crowd = runPhase<CrowdAlone>(entry, 'crowd', dir, o, ['--expose-gc'])
    printReport(o, flat, paced, base, crowd)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/**
 * npm run bench:agent [-- --minutes 10 --participants 5000]
 *
 * The whole agent (decode -> proximity -> dedup -> validate -> durable outbox -> decision event ->
 * log actuator) in one process, fed as fast as it will go by a simulated crowd, with the raw
 * better-sqlite3 insert rate measured in the same run as the baseline for the buffer.
 *
 * The crowd runs in virtual time (the pipeline's clock follows the adverts, so proximity, dedup
 * windows and absence work as at a real gate); throughput and latency are measured in real time.
 * Latency is from the moment an advert is handed to the agent to the moment its decision is emitted,
 * which the agent only does after the check-in is committed with synchronous=FULL.
 *
 * This script is the parent (agent/orchestrate.ts) and, run again with --phase, each phase's child
 * (agent/phase.ts); each side is imported only where it runs, so a phase's process loads the agent
 * and nothing of the parent's (pg, the report) into the memory it measures.
 */
import { mkdtempSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseOptions } from './agent/options.js'

const { options, phase, dir } = parseOptions()
if (phase) {
  const { phase: runPhase } = await import('./agent/phase.js')
  const result = await runPhase(phase, dir ?? mkdtempSync(path.join(os.tmpdir(), 'gate-bench-')), options)
  process.stdout.write(`${JSON.stringify(result)}\n`)
} else {
  const { main } = await import('./agent/orchestrate.js')
  main(new URL(import.meta.url).pathname, options)
}

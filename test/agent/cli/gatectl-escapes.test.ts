import { mkdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { demoRosterFor } from '../../../agent/ble/create-source.js'
import { systemClock } from '../../../agent/clock.js'
import { loadAgentConfig } from '../../../agent/config/load.js'
import { openDatabase } from '../../../agent/store/db.js'
import { RosterStore } from '../../../agent/store/roster-store.js'
import type { DecisionEvent } from '../../../shared/control.js'
import { tempDir } from '../../support/helpers.js'
import { type AgentProcess, gatectl, spawnAgent, waitForAgent } from '../../support/process-helpers.js'

/** A crowd that reaches the gate within seconds. */
const FAST_CROWD = {
  source: { sim: { participants: 40, revoked: 0, unknown: 0, foreign: 0, arrivalSpreadMs: 1_000, seed: 5 } },
}

// what a hostile roster line holds: set the window title (OSC 0 ... BEL), clear the screen (CSI 2 J),
// C1's single-byte CSI (0x9b) and DEL, and a line break that would forge a line of output
const EVIL = '\u001b]0;owned\u0007\u001b[2J\u009b31m\u007f\nADMIT forged'
const evilId = (i: number) => `P${i}${EVIL}`

/**
 * Control characters that must never reach the terminal: C0 but the line break, DEL, C1. In --json
 * output too: JSON escapes C0 itself, but not DEL and C1.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is looked for
const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/

describe('gatectl shows names and ids from the roster without their control characters', () => {
  const tmp = tempDir()
  const dataDir = path.join(tmp.dir, 'data')
  let agent: AgentProcess
  let token: string

  beforeAll(async () => {
    const configFile = path.join(tmp.dir, 'agent.json')
    writeFileSync(configFile, JSON.stringify(FAST_CROWD))
    // the sim crowd's own tokens, held by participants with hostile ids and names
    const config = loadAgentConfig({ file: configFile, overrides: { dataDir } })
    const entries = demoRosterFor(config).map((e, i) => ({
      ...e,
      participantId: evilId(i),
      name: `Name${EVIL}`,
    }))
    token = entries[0]!.token
    mkdirSync(dataDir)
    const db = openDatabase(path.join(dataDir, 'agent.db'))
    new RosterStore(db, systemClock).importEntries(entries)
    db.close()
    agent = spawnAgent(dataDir, ['--config', configFile, '--source', 'sim'])
    await waitForAgent(agent)
  })

  afterAll(async () => {
    if (agent.child.exitCode === null) {
      agent.child.kill('SIGKILL')
      await agent.exited
    }
    tmp.cleanup()
  })

  it('roster lookup, tail, status and checkins: escaped in human output, exact in --json', async () => {
    const lookup = await gatectl(['--data-dir', dataDir, 'roster', 'lookup', token])
    expect(lookup.code, lookup.stderr).toBe(0)
    expect(lookup.stdout).not.toMatch(RAW_CONTROL)
    expect(lookup.stdout).toContain('P0\\x1b]0;owned\\x07\\x1b[2J\\x9b31m\\x7f\\nADMIT forged')
    expect(lookup.stdout).not.toMatch(/^ADMIT forged/m)

    const lookupJson = await gatectl(['--data-dir', dataDir, '--json', 'roster', 'lookup', token])
    expect(lookupJson.stdout).not.toMatch(RAW_CONTROL)
    const report = JSON.parse(lookupJson.stdout) as { roster: { participantId: string; name: string } }
    expect(report.roster).toMatchObject({ participantId: evilId(0), name: `Name${EVIL}` })

    const tail = await gatectl(
      ['--data-dir', dataDir, 'tail', '-n', '3', '--count', '1', '--timeout', '60'],
      {},
      70_000,
    )
    expect(tail.code, tail.stderr).toBe(0)
    expect(tail.stdout).toMatch(/ADMIT .*P\d+\\x1b\]0;owned/)
    expect(tail.stdout).not.toMatch(RAW_CONTROL)
    expect(tail.stdout).not.toMatch(/^ADMIT forged/m)

    const tailJson = await gatectl(
      ['--data-dir', dataDir, '--json', 'tail', '-n', '1', '--count', '1', '--timeout', '60'],
      {},
      70_000,
    )
    expect(tailJson.stdout).not.toMatch(RAW_CONTROL)
    const events = tailJson.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as DecisionEvent)
    expect(events.every((e) => e.participantId?.endsWith(EVIL))).toBe(true)

    for (const args of [['status'], ['checkins'], ['checkins', 'export', '--format', 'csv']]) {
      const r = await gatectl(['--data-dir', dataDir, ...args])
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0)
      expect(r.stdout, args.join(' ')).not.toMatch(RAW_CONTROL)
    }
    const list = await gatectl(['--data-dir', dataDir, 'checkins'])
    expect(list.stdout).toContain('\\x1b]0;owned')
    const jsonl = await gatectl(['--data-dir', dataDir, 'checkins', 'export'])
    expect(jsonl.stdout).not.toMatch(RAW_CONTROL)
    const first = JSON.parse(jsonl.stdout.split('\n')[0]!) as { participantId: string }
    expect(first.participantId.endsWith(EVIL)).toBe(true)
  }, 180_000)
})

import { describe, expect, it } from 'vitest'
import { lineShower } from '../../demo/log-lines.js'

// biome-ignore lint/suspicious/noControlCharactersInRegex: the colours' escape sequences are what is removed
const stripColours = (s: string) => s.replace(/\u001b\[[0-9;]*m/g, '')

const LINE = JSON.stringify({
  level: 30,
  time: Date.UTC(2026, 11, 4, 18, 2, 11, 204),
  pid: 4242,
  hostname: 'pi',
  gateId: 'gate-1',
  msg: 'access policy in force',
})

describe("the demo's terminal output", () => {
  it('on a terminal, makes a JSON log line readable: level, message and fields, with the name in front', () => {
    const shown = stripColours(lineShower(true)('gate-1', LINE))
    expect(shown).toMatch(/^\[gate-1\] \[\d\d:\d\d:\d\d\.\d{3}\] INFO: access policy in force\n/)
    expect(shown).toContain('gateId: "gate-1"')
    expect(shown).not.toContain('"level"')
    expect(shown).not.toContain('4242') // the pid and host say nothing here
  })

  it('shows a line that is not JSON as it came, and everything as it came when not on a terminal', () => {
    expect(lineShower(true)('gate-cloud', 'listening on 8080')).toBe('[gate-cloud] listening on 8080\n')
    expect(lineShower(false)('gate-1', LINE)).toBe(`[gate-1] ${LINE}\n`)
  })
})

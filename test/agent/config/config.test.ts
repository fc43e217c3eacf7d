import { writeFileSync } from 'node:fs'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { loadAgentConfig } from '../../../agent/config/load.js'
import { isGateError } from '../../../shared/errors.js'
import { tempDir } from '../../support/helpers.js'

describe('agent configuration', () => {
  const t = tempDir()
  afterEach(() => {})

  it('runs on embedded defaults', () => {
    const c = loadAgentConfig({ env: {} })
    expect(c.gateId).toBe('gate-1')
    expect(c.source.kind).toBe('noble')
    expect(c.proximity.enterDbm).toBe(-65)
    expect(c.decoders.ibeacon.uuid).toBe('e2c56db5dffb48d2b060d0f5a71096e0')
    expect(path.isAbsolute(c.dataDir)).toBe(true)
    expect(Object.isFrozen(c.proximity)).toBe(true)
  })

  it('layers file < environment < flags', () => {
    const file = path.join(t.dir, 'gate.json')
    writeFileSync(
      file,
      JSON.stringify({ gateId: 'north-1', dedup: { windowMs: 1000 }, proximity: { enterDbm: -70 } }),
    )
    const c = loadAgentConfig({
      file,
      env: { GATE_DEDUP_WINDOW_MS: '2000', GATE_KEY: 'k'.repeat(32) },
      overrides: { proximity: { enterDbm: -60 } },
    })
    expect(c.gateId).toBe('north-1')
    expect(c.dedup.windowMs).toBe(2000)
    expect(c.proximity.enterDbm).toBe(-60)
    expect(c.cloud.gateKey).toBe('k'.repeat(32))
  })

  it('reports every problem at once, naming the variable or key', () => {
    const file = path.join(t.dir, 'bad.json')
    writeFileSync(
      file,
      JSON.stringify({ gateId: 'bad id!', proximty: {}, decoders: { ibeacon: { uuid: 'nope' } } }),
    )
    let err: unknown
    try {
      loadAgentConfig({ file, env: { GATE_RSSI_THRESHOLD: 'loud', MQTT_URL: 'not a url' } })
    } catch (e) {
      err = e
    }
    expect(isGateError(err, 'E_CONFIG_INVALID')).toBe(true)
    const problems = (err as { context: { problems: string[] } }).context.problems
    const text = problems.join('\n')
    expect(text).toContain('GATE_RSSI_THRESHOLD')
    expect(text).toContain('gateId')
    expect(text).toContain('proximty')
    expect(text).toContain('decoders.ibeacon.uuid')
    expect(text).toContain('MQTT_URL')
    expect(problems.length).toBeGreaterThanOrEqual(5)
  })

  it('says clearly when the file is missing or not JSON', () => {
    expect(() => loadAgentConfig({ file: path.join(t.dir, 'missing.json') })).toThrow(
      /cannot be read \(ENOENT\)/,
    )
    const bad = path.join(t.dir, 'broken.json')
    writeFileSync(bad, '{ "gateId": ')
    expect(() => loadAgentConfig({ file: bad })).toThrow(/not valid JSON/)
  })

  it('needs a capture file for the replay source', () => {
    expect(() => loadAgentConfig({ env: { GATE_SOURCE: 'replay' } })).toThrow(/source.replay.file/)
  })
})

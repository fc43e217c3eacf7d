import { readFileSync } from 'node:fs'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { CommandActuator } from '../agent/actuator/command-actuator.js'
import type { DecisionEvent } from '../shared/control.js'
import { silentLog, tempDir } from './helpers.js'

const admit: DecisionEvent = {
  id: '0193a5b2-0000-7000-8000-000000000001',
  gateId: 'g1',
  token: 'aaaa0001',
  participantId: 'P1',
  method: 'ble',
  decision: 'admit',
  reason: null,
  rssi: -50,
  ts: Date.now(),
  monoMs: 1,
  bootId: '0193a5b2-0000-7000-8000-000000000000',
  bootSeq: 1,
  rosterVersion: 1,
  latencyMs: 1,
}

describe('command actuator (a turnstile hook)', () => {
  const t = tempDir()
  afterAll(() => t.cleanup())

  it("runs the hook with the decision's values and without the agent's secrets in its environment", async () => {
    const out = path.join(t.dir, 'hook.out')
    process.env['GATE_KEY'] = 'gk_secret_never_for_hooks'
    process.env['MQTT_PASSWORD'] = 'mqtt-secret-never-for-hooks'
    try {
      const a = new CommandActuator(
        {
          onAdmit: ['/bin/sh', '-c', `{ echo "$0 $1"; env; } > ${out}`, '{decision}', '{participant}'],
          timeoutMs: 5_000,
          maxQueue: 10,
        },
        silentLog,
      )
      a.fire(admit)
      await a.stop()
      const got = readFileSync(out, 'utf8')
      expect(got.split('\n')[0]).toBe('admit P1')
      expect(got).toMatch(/^PATH=/m)
      expect(got).not.toContain('gk_secret_never_for_hooks')
      expect(got).not.toContain('mqtt-secret-never-for-hooks')
    } finally {
      delete process.env['GATE_KEY']
      delete process.env['MQTT_PASSWORD']
    }
  })
})

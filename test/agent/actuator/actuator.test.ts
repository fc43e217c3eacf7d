import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { CommandActuator } from '../../../agent/actuator/command-actuator.js'
import { SystemdNotifier } from '../../../agent/lifecycle/systemd.js'
import type { DecisionEvent } from '../../../shared/control.js'
import { silentLog, tempDir } from '../../support/helpers.js'
import { eventually } from '../../support/process-helpers.js'

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

describe('systemd notify without the optional unix-dgram module', () => {
  const t = tempDir()
  afterAll(() => t.cleanup())

  it('sends READY=1, the watchdog pings and STOPPING=1 through systemd-notify instead', async () => {
    // a systemd-notify that records what it is asked to send
    const bin = path.join(t.dir, 'bin')
    mkdirSync(bin)
    const sent = path.join(t.dir, 'sent')
    writeFileSync(path.join(bin, 'systemd-notify'), `#!/bin/sh\necho "$@" >> ${sent}\n`, { mode: 0o755 })
    const pathBefore = process.env['PATH']
    process.env['PATH'] = `${bin}:${pathBefore}`
    try {
      const n = new SystemdNotifier({ NOTIFY_SOCKET: '/run/systemd/notify' }, silentLog, 2_000_000, () => {
        throw new Error("Cannot find module 'unix-dgram'")
      })
      n.ready('deciding')
      await eventually(() => existsSync(sent) && readFileSync(sent, 'utf8').includes('WATCHDOG=1'), 5_000, 50)
      n.stopping()
      await eventually(() => readFileSync(sent, 'utf8').includes('STOPPING=1'), 5_000, 50)
      expect(readFileSync(sent, 'utf8').split('\n')[0]).toBe('READY=1 STATUS=deciding')
    } finally {
      process.env['PATH'] = pathBefore
    }
  })
})

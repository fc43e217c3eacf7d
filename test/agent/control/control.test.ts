import net from 'node:net'
import path from 'node:path'
import { pino } from 'pino'
import { afterAll, describe, expect, it } from 'vitest'
import { GateAgent } from '../../../agent/agent.js'
import { PushSource } from '../../../agent/ble/push-source.js'
import { systemClock } from '../../../agent/clock.js'
import { agentConfigSchema } from '../../../agent/config/schema.js'
import { ControlClient, SOCKET_NAME } from '../../../agent/control/client.js'
import { ControlServer } from '../../../agent/control/server.js'
import { GateError } from '../../../shared/errors.js'
import { silentLog, tempDir } from '../../support/helpers.js'
import { eventually } from '../../support/process-helpers.js'

describe('control socket against a misbehaving client', () => {
  const t = tempDir()
  afterAll(() => t.cleanup())

  it('a client that floods requests and never reads is let go; its requests are not all taken in', async () => {
    let handled = 0
    let subscriptions = 0
    const server = new ControlServer(
      path.join(t.dir, 'a.sock'),
      { status: () => ({ n: ++handled, pad: 'x'.repeat(1_000) }) },
      () => {
        subscriptions++
        return () => {}
      },
      silentLog,
    )
    await server.start()
    try {
      // one line subscribing to the same stream fifty times: one subscription
      const sub = net.connect(path.join(t.dir, 'a.sock'))
      await new Promise((r) => sub.once('connect', r))
      sub.write(
        `${JSON.stringify({ id: 1, method: 'subscribe', params: { streams: Array(50).fill('adverts') } })}\n`,
      )
      await eventually(() => subscriptions > 0, 2_000, 10)
      await new Promise((r) => setTimeout(r, 100))
      expect(subscriptions).toBe(1)
      sub.destroy()

      const flood = net.connect(path.join(t.dir, 'a.sock'))
      await new Promise((r) => flood.once('connect', r))
      flood.pause() // never reads an answer
      let closed = false
      flood.on('close', () => {
        closed = true
      })
      flood.on('error', () => {})
      const line = `${JSON.stringify({ id: 1, method: 'status' })}\n`.repeat(1_000)
      for (let i = 0; i < 200 && !closed; i++) {
        flood.write(line) // 200,000 requests offered
        await new Promise((r) => setImmediate(r))
      }
      await eventually(() => closed, 10_000, 20)
      // answers stop being made once about a megabyte of them waits unread
      expect(handled).toBeLessThan(20_000)
    } finally {
      await server.stop()
    }
  })
})

describe('control socket against bad parameters', () => {
  it('a 65-character token, an unknown log level, an unknown stream: E_INPUT saying which, no error logged, the agent goes on', async () => {
    const t = tempDir()
    const lines: Array<{ level: number; msg: string }> = []
    const log = pino({ level: 'debug' }, { write: (l: string) => void lines.push(JSON.parse(l)) })
    const dataDir = path.join(t.dir, 'gate')
    const agent = new GateAgent({
      config: agentConfigSchema.parse({ gateId: 'g1', dataDir, source: { kind: 'sim' } }),
      clock: systemClock,
      log,
      makeSource: () => new PushSource(),
    })
    await agent.start()
    const client = await ControlClient.connect(path.join(dataDir, SOCKET_NAME))
    try {
      const refused = async (p: Promise<unknown>) => {
        const err = await p.then(
          () => null,
          (e: unknown) => e,
        )
        expect(err).toBeInstanceOf(GateError)
        return err as GateError
      }
      const token = await refused(client.request('roster.lookup', { token: 'a'.repeat(65) }))
      expect(token.code).toBe('E_INPUT')
      expect(token.message).toMatch(/^roster\.lookup: token: .*64/)
      const level = await refused(client.request('log.level', { level: 'shout' }))
      expect(level.code).toBe('E_INPUT')
      expect(level.message).toMatch(/^log\.level: level: /)
      const stream = await refused(client.subscribe(['weather' as 'adverts'], () => {}))
      expect(stream.code).toBe('E_INPUT')
      // nothing for the operator to look into: no error in the agent's log
      expect(lines.filter((l) => l.level >= 50)).toEqual([])
      expect(((await client.request('status')) as { daemon: string }).daemon).toBe('running')
    } finally {
      client.close()
      await agent.stop()
      t.cleanup()
    }
  })
})

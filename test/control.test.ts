import net from 'node:net'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { ControlServer } from '../agent/control/server.js'
import { silentLog, tempDir } from './helpers.js'
import { eventually } from './process-helpers.js'

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

import { readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { CaptureWriter } from '../../../agent/ble/capture.js'
import { ReplaySource } from '../../../agent/ble/replay-source.js'
import { Crowd } from '../../../agent/ble/sim/crowd.js'
import type { Advert } from '../../../agent/ble/source.js'
import { systemClock } from '../../../agent/clock.js'
import { agentConfigSchema } from '../../../agent/config/schema.js'
import { createTokenDecoder } from '../../../agent/decode/token-decoder.js'
import { isGateError } from '../../../shared/errors.js'
import { bleSourceContract } from '../../contract/ble-source.contract.js'
import { tempDir } from '../../support/helpers.js'

const cfg = agentConfigSchema.parse({
  source: { kind: 'sim', sim: { participants: 40, foreign: 10, arrivalSpreadMs: 0, loop: false, seed: 3 } },
})

/** Record `n` adverts of a simulated crowd into a capture file, `spacingMs` apart. */
function recordCapture(file: string, n: number, spacingMs: number): Advert[] {
  const crowd = new Crowd(cfg.source.sim, cfg.decoders)
  const w = new CaptureWriter(file, { gateId: 'gate-x', source: 'sim' })
  const out: Advert[] = []
  let k = 0
  crowd.advance(
    Number.POSITIVE_INFINITY,
    (i, rssi) => {
      const a = crowd.advert(i, rssi, k * spacingMs)
      w.write(a, a.ts)
      out.push(a)
      k++
    },
    n,
  )
  w.close()
  return out
}

const waitFor = async (cond: () => boolean, ms = 5_000) => {
  const until = Date.now() + ms
  while (!cond()) {
    if (Date.now() > until) throw new Error('timed out')
    await new Promise((r) => setTimeout(r, 10))
  }
}

bleSourceContract('replay', () => {
  const t = tempDir()
  const file = path.join(t.dir, 'cap.jsonl')
  recordCapture(file, 400, 5)
  return {
    source: new ReplaySource({ file, speed: 1, loop: true }, { clock: systemClock }),
    cleanup: t.cleanup,
  }
})

describe('replay source and capture files', () => {
  it('plays back exactly what was captured, in order, and reports the end', async () => {
    const t = tempDir()
    try {
      const file = path.join(t.dir, 'cap.jsonl')
      const recorded = recordCapture(file, 500, 2)
      const got: Advert[] = []
      let ended = false
      const src = new ReplaySource({ file, speed: 0, loop: false }, { clock: systemClock })
      await src.start({ advert: (a) => got.push(a), end: () => (ended = true) })
      await waitFor(() => ended)
      expect(got).toHaveLength(500)
      const strip = (a: Advert) => ({
        address: a.address,
        rssi: a.rssi,
        mfg: a.manufacturerData?.toString('hex'),
        svc: a.serviceData?.map((s) => `${s.uuid}:${s.data.toString('hex')}`),
        name: a.localName,
      })
      expect(got.map(strip)).toEqual(recorded.map(strip))
      // and the decoders make the same tokens of them
      const d1 = createTokenDecoder(cfg.decoders)
      const d2 = createTokenDecoder(cfg.decoders)
      expect(got.map((a) => d1.decode(a)?.token ?? null)).toEqual(
        recorded.map((a) => d2.decode(a)?.token ?? null),
      )
      expect(src.status()).toMatchObject({ scanning: false, adverts: 500 })
      expect(src.status().detail).toMatch(/end of capture/)
      await src.stop()
    } finally {
      t.cleanup()
    }
  })

  it('plays in real time at speed 1 (timing kept from the capture)', async () => {
    const t = tempDir()
    try {
      const file = path.join(t.dir, 'cap.jsonl')
      recordCapture(file, 31, 10) // 300 ms of adverts
      let ended = false
      const src = new ReplaySource({ file, speed: 1, loop: false }, { clock: systemClock })
      const t0 = Date.now()
      await src.start({ advert: () => {}, end: () => (ended = true) })
      await waitFor(() => ended)
      expect(Date.now() - t0).toBeGreaterThanOrEqual(280)
      await src.stop()
    } finally {
      t.cleanup()
    }
  })

  it('skips and counts bad lines, says where they are, and keeps playing', async () => {
    const t = tempDir()
    try {
      const file = path.join(t.dir, 'cap.jsonl')
      recordCapture(file, 20, 1)
      const lines = readFileSync(file, 'utf8').trim().split('\n')
      lines.splice(
        3,
        0,
        '{not json',
        '{"t":1,"address":"zz","rssi":-50}',
        '{"t":2,"address":"aa:bb:cc:dd:ee:ff","rssi":-50,"mfg":"abc"}',
        '',
      )
      writeFileSync(file, `${lines.join('\n')}\n`)
      const got: Advert[] = []
      const warnings: string[] = []
      let ended = false
      const src = new ReplaySource({ file, speed: 0, loop: false }, { clock: systemClock })
      await src.start({
        advert: (a) => got.push(a),
        warn: (e) => warnings.push(e.message),
        end: () => (ended = true),
      })
      await waitFor(() => ended)
      expect(got).toHaveLength(20)
      expect(src.skippedLines).toBe(3)
      expect(warnings[0]).toMatch(/cap\.jsonl:4: skipped \(not JSON\)/)
      await src.stop()
    } finally {
      t.cleanup()
    }
  })

  it('refuses a missing file and a file that is not a capture, with E_REPLAY_FILE', async () => {
    const t = tempDir()
    try {
      const missing = new ReplaySource(
        { file: path.join(t.dir, 'nope.jsonl'), speed: 1, loop: false },
        { clock: systemClock },
      )
      await expect(missing.start({ advert: () => {} })).rejects.toSatisfy(
        (e: unknown) => isGateError(e, 'E_REPLAY_FILE') && /no such file/.test((e as Error).message),
      )
      const other = path.join(t.dir, 'other.jsonl')
      writeFileSync(other, '{"hello":"world"}\n')
      const notCapture = new ReplaySource({ file: other, speed: 1, loop: false }, { clock: systemClock })
      await expect(notCapture.start({ advert: () => {} })).rejects.toThrow(/not a replay capture/)
      const none = new ReplaySource({ speed: 1, loop: false }, { clock: systemClock })
      await expect(none.start({ advert: () => {} })).rejects.toThrow(/needs a capture file/)
    } finally {
      t.cleanup()
    }
  })

  it('a capture file is never overwritten by accident', () => {
    const t = tempDir()
    try {
      const file = path.join(t.dir, 'cap.jsonl')
      recordCapture(file, 5, 1)
      const before = readFileSync(file, 'utf8')
      expect(() => new CaptureWriter(file, {})).toThrow(/exists.*--overwrite/)
      expect(readFileSync(file, 'utf8')).toBe(before)
      new CaptureWriter(file, {}, { overwrite: true }).close()
      expect(readFileSync(file, 'utf8').split('\n')[0]).toMatch(/"capture":1/)
    } finally {
      t.cleanup()
    }
  })
})

import { afterEach, describe, expect, it } from 'vitest'
import type { Advert, BleSource } from '../../agent/ble/source.js'

/** A source under test, and how to dispose of whatever it needed (temp files). */
export interface SourceFixture {
  source: BleSource
  cleanup?: () => void | Promise<void>
}

const waitFor = async (cond: () => boolean, timeoutMs = 5_000): Promise<void> => {
  const until = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > until) throw new Error('timed out waiting for condition')
    await new Promise((r) => setTimeout(r, 10))
  }
}

/**
 * The behaviour every BleSource promises (agent/ble/source.ts). Each adapter's test file calls this
 * with a factory that returns a source which delivers adverts once started.
 */
export function bleSourceContract(name: string, make: () => SourceFixture | Promise<SourceFixture>): void {
  describe(`BleSource contract: ${name}`, () => {
    let fx: SourceFixture | null = null
    afterEach(async () => {
      if (fx) {
        await fx.source.stop()
        await fx.cleanup?.()
      }
      fx = null
    })

    it('reports a status before start, and it is not scanning', async () => {
      fx = await make()
      const s = fx.source.status()
      expect(s.kind).toBe(fx.source.kind)
      expect(s.scanning).toBe(false)
      expect(s.adverts).toBe(0)
      expect(s.lastAdvertAt).toBeNull()
    })

    it('delivers well-formed adverts after start and counts them', async () => {
      fx = await make()
      const got: Advert[] = []
      await fx.source.start({ advert: (a) => got.push(a) })
      await waitFor(() => got.length >= 20)
      for (const a of got.slice(0, 20)) {
        expect(a.address).toMatch(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/)
        expect(Number.isFinite(a.rssi)).toBe(true)
        expect(a.rssi).toBeLessThan(20)
        expect(a.rssi).toBeGreaterThan(-130)
        expect(Number.isFinite(a.ts)).toBe(true)
        if (a.manufacturerData !== undefined) expect(Buffer.isBuffer(a.manufacturerData)).toBe(true)
        for (const sd of a.serviceData ?? []) {
          expect(sd.uuid).toMatch(/^[0-9a-f]+$/)
          expect(Buffer.isBuffer(sd.data)).toBe(true)
        }
      }
      const st = fx.source.status()
      expect(st.scanning).toBe(true)
      expect(st.adapterState).toBe('poweredOn')
      expect(st.adverts).toBeGreaterThanOrEqual(20)
      expect(st.lastAdvertAt).not.toBeNull()
    })

    it('rejects a second start without stop', async () => {
      fx = await make()
      await fx.source.start({ advert: () => {} })
      await expect(fx.source.start({ advert: () => {} })).rejects.toThrow()
    })

    it('delivers nothing after stop resolves, and stop is idempotent', async () => {
      fx = await make()
      let n = 0
      await fx.source.start({ advert: () => n++ })
      await waitFor(() => n > 0)
      await fx.source.stop()
      const after = n
      await new Promise((r) => setTimeout(r, 100))
      expect(n).toBe(after)
      await fx.source.stop()
      expect(fx.source.status().scanning).toBe(false)
    })

    it('counts a requested scan restart and keeps delivering', async () => {
      fx = await make()
      let n = 0
      await fx.source.start({ advert: () => n++ })
      await waitFor(() => n > 0)
      const before = fx.source.status().scanRestarts
      await fx.source.restartScan()
      expect(fx.source.status().scanRestarts).toBe(before + 1)
      const mark = n
      await waitFor(() => n > mark)
    })

    it('survives a handler that throws', async () => {
      fx = await make()
      let n = 0
      await fx.source.start({
        advert: () => {
          n++
          throw new Error('handler bug')
        },
      })
      await waitFor(() => n >= 5)
      expect(fx.source.status().scanning).toBe(true)
    })
  })
}

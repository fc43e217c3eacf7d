import { describe, expect, it } from 'vitest'
import type { Advert } from '../../../agent/ble/source.js'
import { agentConfigSchema, type DecodersConfig } from '../../../agent/config/schema.js'
import {
  advertFromStructures,
  parseAdStructures,
  parseHexInput,
} from '../../../agent/decode/ad-structures.js'
import { parseEddystone } from '../../../agent/decode/eddystone.js'
import { parseIBeacon } from '../../../agent/decode/ibeacon.js'
import { inspectHex } from '../../../agent/decode/inspect.js'
import { createTokenDecoder } from '../../../agent/decode/token-decoder.js'
import { isGateError } from '../../../shared/errors.js'

const defaults = (): DecodersConfig => structuredClone(agentConfigSchema.parse({}).decoders)
const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex')
const fromAd = (s: string): Advert => {
  const p = parseAdStructures(hex(s))
  expect(p.problems).toEqual([])
  return advertFromStructures(p.structures, { address: 'c0:ff:ee:00:00:01', rssi: -55, ts: 123 })
}

// Real-world advertising data, as a sniffer (btmon, nRF Connect) shows it.
/** iBeacon with the Radius Networks UUID (this product's default event UUID), major 1, minor 2, tx -59 */
const IBEACON_AD = '02 01 06 1a ff 4c 00 02 15 e2 c5 6d b5 df fb 48 d2 b0 60 d0 f5 a7 10 96 e0 00 01 00 02 c5'
/** iBeacon from another deployment (an Estimote default UUID) */
const IBEACON_OTHER_AD =
  '02 01 06 1a ff 4c 00 02 15 b9 40 7f 30 f5 f8 46 6e af f9 25 55 6b 57 fe 6d 2a 4b 31 5c b6'
/** Eddystone-UID from Google's spec example namespace edd1ebeac04e5defa017, instance 010203040506 */
const EDDYSTONE_UID_AD =
  '02 01 06 03 03 aa fe 17 16 aa fe 00 e7 ed d1 eb ea c0 4e 5d ef a0 17 01 02 03 04 05 06 00 00'
/** Eddystone-URL https://www.google.com/ */
const EDDYSTONE_URL_AD = '03 03 aa fe 0d 16 aa fe 10 eb 03 67 6f 6f 67 6c 65 07'
/** Eddystone-TLM: battery 2.9 V, 21.5 C, counters */
const EDDYSTONE_TLM_AD = '03 03 aa fe 11 16 aa fe 20 00 0b 54 15 80 00 00 01 2c 00 00 0e 10'
/** an iPhone's Continuity "nearby info" */
const APPLE_NEARBY_MFG = '4c 00 10 05 01 18 1c 4f 2e'
/** a RuuviTag data format 5 (Ruuvi's documented example) */
const RUUVI_MFG = '99 04 05 12 fc 53 94 c3 7c 00 04 ff fc 04 0c ac 36 42 00 cd cb b8 33 4c 88 4f'
/** a Microsoft Swift Pair beacon */
const MICROSOFT_MFG = '06 00 03 00 80 47 61 6d 65 70 61 64'

describe('iBeacon', () => {
  it('decodes the event UUID, major, minor and tx power of a real frame', () => {
    const a = fromAd(IBEACON_AD)
    const r = parseIBeacon(a.manufacturerData ?? Buffer.alloc(0))
    expect(r).toEqual({
      kind: 'ibeacon',
      frame: { uuid: 'e2c56db5-dffb-48d2-b060-d0f5a71096e0', major: 1, minor: 2, txPower: -59 },
    })
    const d = createTokenDecoder(defaults())
    expect(d.decode(a)).toEqual({
      token: '00010002',
      rssi: -55,
      ts: 123,
      address: 'c0:ff:ee:00:00:01',
      decoder: 'ibeacon',
    })
    expect(d.counters.ibeacon).toBe(1)
  })

  it('takes only the minor when configured so', () => {
    const cfg = defaults()
    cfg.ibeacon.token = 'minor'
    expect(createTokenDecoder(cfg).decode(fromAd(IBEACON_AD))?.token).toBe('0002')
  })

  it("drops another deployment's iBeacon as foreign", () => {
    const d = createTokenDecoder(defaults())
    expect(d.decode(fromAd(IBEACON_OTHER_AD))).toBeNull()
    expect(d.counters).toMatchObject({ foreign: 1, malformed: 0, ibeacon: 0 })
  })

  it('accepts a different event UUID given in config, with or without dashes', () => {
    const cfg = agentConfigSchema.parse({
      decoders: { ibeacon: { uuid: 'B9407F30-F5F8-466E-AFF9-25556B57FE6D' } },
    }).decoders
    expect(createTokenDecoder(cfg).decode(fromAd(IBEACON_OTHER_AD))?.token).toBe('2a4b315c')
  })

  it('counts a truncated frame as malformed', () => {
    const d = createTokenDecoder(defaults())
    expect(
      d.decode({ address: 'a', rssi: -50, ts: 0, manufacturerData: hex('4c 00 02 15 e2 c5 6d') }),
    ).toBeNull()
    expect(d.counters.malformed).toBe(1)
    expect(parseIBeacon(hex('4c 00 02 15 e2 c5 6d'))).toMatchObject({ kind: 'malformed' })
  })
})

describe('Eddystone', () => {
  it("decodes the spec's UID example into namespace and instance", () => {
    const a = fromAd(EDDYSTONE_UID_AD)
    expect(a.serviceData?.[0]?.uuid).toBe('feaa')
    expect(parseEddystone(a.serviceData?.[0]?.data ?? Buffer.alloc(0))).toEqual({
      kind: 'uid',
      frame: { txPower: -25, namespace: 'edd1ebeac04e5defa017', instance: '010203040506' },
    })
    const d = createTokenDecoder(defaults())
    expect(d.decode(a)).toMatchObject({ token: '010203040506', decoder: 'eddystone' })
  })

  it('accepts a UID frame without the two reserved bytes', () => {
    const a = fromAd(EDDYSTONE_UID_AD)
    const data = a.serviceData?.[0]?.data.subarray(0, 18) ?? Buffer.alloc(0)
    expect(
      createTokenDecoder(defaults()).decode({ ...a, serviceData: [{ uuid: 'feaa', data }] })?.token,
    ).toBe('010203040506')
  })

  it('recognises URL and TLM frames and drops them as foreign', () => {
    const d = createTokenDecoder(defaults())
    expect(d.decode(fromAd(EDDYSTONE_URL_AD))).toBeNull()
    expect(d.decode(fromAd(EDDYSTONE_TLM_AD))).toBeNull()
    expect(d.counters).toMatchObject({ foreign: 2, malformed: 0 })
    expect(parseEddystone(fromAd(EDDYSTONE_TLM_AD).serviceData?.[0]?.data ?? Buffer.alloc(0))).toMatchObject({
      frame: 'tlm',
    })
  })

  it('drops another namespace as foreign and a short UID frame as malformed', () => {
    const d = createTokenDecoder(defaults())
    const other = hex('00 e7 00 11 22 33 44 55 66 77 88 99 01 02 03 04 05 06 00 00')
    expect(
      d.decode({ address: 'a', rssi: -50, ts: 0, serviceData: [{ uuid: 'feaa', data: other }] }),
    ).toBeNull()
    expect(
      d.decode({
        address: 'a',
        rssi: -50,
        ts: 0,
        serviceData: [{ uuid: 'feaa', data: hex('00 e7 ed d1 eb') }],
      }),
    ).toBeNull()
    expect(d.counters).toMatchObject({ foreign: 1, malformed: 1 })
  })
})

describe('token in manufacturer data', () => {
  it('takes the bytes after the configured company id and prefix', () => {
    const d = createTokenDecoder(defaults())
    const s = d.decode({
      address: 'a',
      rssi: -50,
      ts: 0,
      manufacturerData: hex('ff ff ca 11 de ad be ef 00 00 00 2a'),
    })
    expect(s).toMatchObject({ token: 'deadbeef0000002a', decoder: 'manufacturer' })
  })

  it('honours another company id, prefix and length from config', () => {
    const cfg = agentConfigSchema.parse({
      decoders: { manufacturer: { companyId: 0x0059, prefix: '', tokenBytes: 4 } },
    }).decoders
    const d = createTokenDecoder(cfg)
    expect(
      d.decode({ address: 'a', rssi: -50, ts: 0, manufacturerData: hex('59 00 01 02 03 04 ff') })?.token,
    ).toBe('01020304')
    expect(
      d.decode({
        address: 'a',
        rssi: -50,
        ts: 0,
        manufacturerData: hex('ff ff ca 11 de ad be ef 00 00 00 2a'),
      }),
    ).toBeNull()
  })

  it('drops a wrong prefix as foreign and a short token as malformed', () => {
    const d = createTokenDecoder(defaults())
    expect(
      d.decode({
        address: 'a',
        rssi: -50,
        ts: 0,
        manufacturerData: hex('ff ff 00 00 de ad be ef 00 00 00 2a'),
      }),
    ).toBeNull()
    expect(
      d.decode({ address: 'a', rssi: -50, ts: 0, manufacturerData: hex('ff ff ca 11 de ad') }),
    ).toBeNull()
    expect(d.counters).toMatchObject({ foreign: 1, malformed: 1 })
  })
})

describe('foreign devices at a venue', () => {
  it('ignores phones and sensors without counting them as malformed', () => {
    const d = createTokenDecoder(defaults())
    for (const m of [APPLE_NEARBY_MFG, RUUVI_MFG, MICROSOFT_MFG]) {
      expect(d.decode({ address: 'a', rssi: -50, ts: 0, manufacturerData: hex(m) })).toBeNull()
    }
    expect(d.decode({ address: 'a', rssi: -50, ts: 0, localName: 'Galaxy Buds' })).toBeNull()
    expect(d.counters).toEqual({ ibeacon: 0, eddystone: 0, manufacturer: 0, foreign: 4, malformed: 0 })
  })

  it('disabled decoders yield nothing', () => {
    const cfg = defaults()
    cfg.ibeacon.enabled = false
    cfg.eddystone.enabled = false
    const d = createTokenDecoder(cfg)
    expect(d.decode(fromAd(IBEACON_AD))).toBeNull()
    expect(d.decode(fromAd(EDDYSTONE_UID_AD))).toBeNull()
  })
})

describe('robustness: the decoder never throws out of the pipeline', () => {
  it('survives 20,000 random buffers, random service data and hostile shapes', () => {
    const d = createTokenDecoder(defaults())
    let seed = 42
    const rng = {
      next: () => {
        seed = (seed + 0x6d2b79f5) | 0
        let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
        t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296
      },
      int: (n: number) => Math.floor(rng.next() * n),
    }
    const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => rng.int(256)))
    const starts = ['4c000215', 'ffffca11', 'ffff', '4c00', '']
    for (let i = 0; i < 20_000; i++) {
      const head = hex(starts[rng.int(starts.length)] ?? '')
      const a: Advert = { address: 'x', rssi: -50, ts: i }
      if (rng.next() < 0.8) a.manufacturerData = Buffer.concat([head, bytes(rng.int(30))])
      if (rng.next() < 0.5)
        a.serviceData = [{ uuid: rng.next() < 0.7 ? 'feaa' : 'fe9a', data: bytes(rng.int(24)) }]
      expect(() => d.decode(a)).not.toThrow()
    }
    const hostile = [
      { address: 'x', rssi: -50, ts: 0, manufacturerData: 'not a buffer' },
      { address: 'x', rssi: -50, ts: 0, serviceData: [{ uuid: 'feaa', data: null }] },
      { address: 'x', rssi: -50, ts: 0, serviceData: 'nope' },
      {
        address: 'x',
        rssi: -50,
        ts: 0,
        get manufacturerData(): Buffer {
          throw new Error('boom')
        },
      },
    ] as unknown as Advert[]
    for (const a of hostile) expect(d.decode(a)).toBeNull()
    const c = d.counters
    expect(c.ibeacon + c.eddystone + c.manufacturer + c.foreign + c.malformed).toBe(20_000 + hostile.length)
    expect(c.malformed).toBeGreaterThan(0)
  })
})

describe('gatectl decode: inspecting what a badge broadcasts', () => {
  it('explains a raw iBeacon advert decoder by decoder', () => {
    const r = inspectHex(IBEACON_AD, defaults())
    expect(r.input).toBe('ad')
    expect(r.structures.map((s) => s.type)).toEqual(['flags', 'manufacturer specific data'])
    expect(r.token).toBe('00010002')
    const ib = r.decoders.find((x) => x.decoder === 'ibeacon')
    expect(ib).toMatchObject({
      outcome: 'token',
      token: '00010002',
      fields: { major: 1, minor: 2, txPower: -59 },
    })
    expect(r.decoders.find((x) => x.decoder === 'eddystone')?.outcome).toBe('absent')
  })

  it("says why another event's beacon is dropped", () => {
    const r = inspectHex(IBEACON_OTHER_AD, defaults())
    expect(r.token).toBeNull()
    expect(r.verdict).toMatch(/foreign/)
    expect(r.decoders.find((x) => x.decoder === 'ibeacon')?.note).toMatch(/not this event's/)
  })

  it('takes manufacturer data alone (auto-detected), with colons', () => {
    const r = inspectHex('ff:ff:ca:11:de:ad:be:ef:00:00:00:2a', defaults())
    expect(r.input).toBe('manufacturer')
    expect(r.token).toBe('deadbeef0000002a')
  })

  it('names the Eddystone frame and the company of a foreign device', () => {
    expect(
      inspectHex(EDDYSTONE_URL_AD, defaults()).decoders.find((x) => x.decoder === 'eddystone')?.note,
    ).toMatch(/URL/)
    expect(
      inspectHex(RUUVI_MFG, defaults(), { kind: 'manufacturer' }).decoders.find(
        (x) => x.decoder === 'manufacturer',
      )?.note,
    ).toMatch(/Ruuvi/)
  })

  it('reports a truncated AD structure instead of guessing', () => {
    const r = inspectHex('02 01 06 1a ff 4c 00 02 15 e2', defaults(), { kind: 'ad' })
    expect(r.problems[0]).toMatch(/claims 26 bytes/)
  })

  it('rejects text that is not hex with a clear E_INPUT', () => {
    for (const bad of ['', 'zz', '4c0', '4c 00 g2']) {
      try {
        parseHexInput(bad)
        expect.unreachable()
      } catch (err) {
        expect(isGateError(err, 'E_INPUT')).toBe(true)
      }
    }
  })
})

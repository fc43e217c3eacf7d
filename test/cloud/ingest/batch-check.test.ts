import { describe, expect, it } from 'vitest'
import { copyLine } from '../../../cloud/ingest/ingest.js'
import { batchIsValid, readBatch } from '../../../cloud/ingest/validate.js'
import { type Checkin, checkinSchema } from '../../../shared/checkin.js'
import { isGateError } from '../../../shared/errors.js'
import { MAX_BATCH_RECORDS, syncBatchEnvelopeSchema } from '../../../shared/sync.js'

// The service checks a batch with ajv code compiled from the shared zod schemas; zod is the
// definition. The compiled check must never accept what zod refuses (a bad record would be
// stored) and should not refuse what zod accepts (such a batch would only take the slow path).

const record = {
  id: '0193f9a0-0000-7000-8000-000000000001',
  gateId: 'gate-a',
  token: 'a1b2c3d4',
  participantId: 'P-1',
  method: 'ble',
  decision: 'admit',
  reason: null,
  rssi: -60,
  ts: 1_764_000_000_000,
  monoMs: 1234.5,
  bootId: '0193f9a0-0000-4000-8000-000000000002',
  bootSeq: 1,
  rosterVersion: 0,
}
const batch = (records: unknown[], extra: Record<string, unknown> = {}) => ({
  gateId: 'gate-a',
  sentAt: 1_764_000_000_500,
  records,
  ...extra,
})
const zodSays = (body: unknown): boolean => {
  const env = syncBatchEnvelopeSchema.safeParse(body)
  return env.success && env.data.records.every((r) => checkinSchema.safeParse(r).success)
}

const emoji = '\u{1F600}' // one code point, two UTF-16 units: lengths must be counted alike
const fieldValues: Record<string, unknown[]> = {
  id: [
    undefined,
    null,
    42,
    '',
    '0193F9A0-0000-7000-8000-00000000000A',
    '0193f9a0-0000-9000-8000-000000000001', // version 9
    '0193f9a0-0000-7000-c000-000000000001', // variant c
    '00000000-0000-0000-0000-000000000000',
    'ffffffff-ffff-ffff-ffff-ffffffffffff',
    '0193f9a0-0000-7000-8000-000000000001\n',
    '0193f9a00000700080000000000000001',
  ],
  gateId: [undefined, null, '', 'g'.repeat(64), 'g'.repeat(65), 7, 'g\u0000'],
  token: [
    undefined,
    '',
    't',
    't'.repeat(48),
    't'.repeat(49),
    emoji.repeat(24),
    emoji.repeat(25),
    ['t'],
    // what Postgres cannot store: NUL, an unpaired surrogate (either half)
    't\u0000t',
    't\uD800',
    '\uDC00t',
    `${emoji}\uD83D`,
  ],
  participantId: [
    undefined,
    null,
    '',
    'p'.repeat(128),
    'p'.repeat(129),
    emoji.repeat(65),
    12,
    'P\u0000',
    'P\uDFFF',
  ],
  method: [undefined, 'ble', 'qr', 'BLE', null],
  decision: [undefined, 'admit', 'deny', 'maybe', null],
  reason: [undefined, null, 'unknown', 'revoked', 'inactive', 'already_checked_in', 'other', 3],
  rssi: [undefined, null, -127, -128, 20, 21, -60.5, '-60', 0],
  ts: [undefined, null, 0, -1, 1.5, 2 ** 53 - 1, 2 ** 53, '1764000000000'],
  monoMs: [undefined, null, 0, -0.001, 0.5, 1e15, '1'],
  bootId: [undefined, null, 'boot', '0193f9a0-0000-4000-8000-000000000002'],
  bootSeq: [undefined, null, 0, 1, -1, 1.5, 2 ** 53],
  rosterVersion: [undefined, null, 0, -1, 2.5, 2 ** 53 - 1],
}

describe('the compiled batch check agrees with the zod schemas', () => {
  it('on a valid batch', () => {
    const body = batch([record])
    expect(zodSays(body)).toBe(true)
    expect(batchIsValid(body)).toBe(true)
    expect(readBatch(body).checked).toEqual([record])
  })

  for (const [field, values] of Object.entries(fieldValues)) {
    it(`on every value tried for a record's ${field}`, () => {
      for (const v of values) {
        const r: Record<string, unknown> = { ...record }
        if (v === undefined) delete r[field]
        else r[field] = v
        const body = batch([record, r])
        expect({ field, v, verdict: batchIsValid(body) }).toEqual({ field, v, verdict: zodSays(body) })
        // and what the service reads: the records when zod accepts, null when it refuses
        expect(readBatch(body).checked === null).toBe(!zodSays(body))
      }
    })
  }

  it('on extra fields, the record list and the envelope', () => {
    const bodies: unknown[] = [
      batch([{ ...record, extra: 1 }]),
      batch([]),
      batch(Array.from({ length: MAX_BATCH_RECORDS }, () => record)),
      batch(Array.from({ length: MAX_BATCH_RECORDS + 1 }, () => record)),
      batch([record], { gateId: '' }),
      batch([record], { gateId: 'g'.repeat(65) }),
      batch([record], { sentAt: -1 }),
      batch([record], { sentAt: 1.5 }),
      batch([record], { note: 'x' }),
      batch([null]),
      batch(['record']),
      { gateId: 'gate-a', records: [record] },
      { gateId: 'gate-a', sentAt: 1, records: record },
      null,
      [],
      'batch',
    ]
    for (const body of bodies) expect(batchIsValid(body)).toBe(zodSays(body))
  })

  it('a malformed envelope is E_INPUT with zod problems; a malformed record leaves checked null, with its problem', () => {
    try {
      readBatch({ gateId: 'gate-a', records: [] })
      expect.unreachable()
    } catch (err) {
      expect(isGateError(err) && err.code).toBe('E_INPUT')
    }
    const read = readBatch(batch([record, { ...record, rssi: 99 }]))
    expect(read.checked).toBeNull()
    expect(read.problems).toEqual([expect.objectContaining({ index: 1, path: 'rssi' })])
    expect(read.records).toHaveLength(2)
  })
})

describe('COPY text', () => {
  it("writes each record's time as toISOString does, whatever the time before it was", () => {
    const times = [
      1_764_000_000_000,
      1_764_000_000_007,
      1_764_000_000_042,
      1_764_000_000_999,
      1_764_000_001_000,
      1_764_000_000_500,
      0,
      5,
      999,
      1_000,
      86_400_000 - 1,
      253_402_300_799_999,
      253_402_300_800_000,
    ]
    for (const ts of [...times, ...times.reverse()]) {
      const cols = copyLine({ ...record, ts } as Checkin, 'gate-a').split('\t')
      expect({ ts, text: cols[1] }).toEqual({ ts, text: new Date(ts).toISOString() })
    }
  })
})

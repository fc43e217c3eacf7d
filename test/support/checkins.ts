import type { FastifyInstance } from 'fastify'
import { v7 as uuidv7 } from 'uuid'
import { expect } from 'vitest'
import type { Checkin } from '../../shared/checkin.js'

/**
 * Check-ins as one boot of a gate makes them (an admit over BLE unless told otherwise), numbered in
 * the order they are made: give the gate, the badge, the participant and the time, and any field
 * over the defaults.
 */
export function gateCheckins(
  bootId: string,
): (fields: Pick<Checkin, 'gateId' | 'token' | 'participantId' | 'ts'> & Partial<Checkin>) => Checkin {
  let seq = 0
  return (fields) => ({
    id: uuidv7(),
    method: 'ble',
    decision: 'admit',
    reason: null,
    rssi: -50,
    monoMs: fields.ts % 1_000_000,
    bootId,
    bootSeq: ++seq,
    rosterVersion: 1,
    ...fields,
  })
}

/** Upload a batch as gate `gateId` (with its key) through the app, and expect it stored. */
export async function uploadAs(
  app: FastifyInstance,
  key: string,
  gateId: string,
  records: Checkin[],
): Promise<void> {
  const res = await app.inject({
    method: 'POST',
    url: '/v1/sync/checkins',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    payload: JSON.stringify({ gateId, sentAt: Date.now(), records }),
  })
  expect(res.statusCode, res.body).toBe(200)
}

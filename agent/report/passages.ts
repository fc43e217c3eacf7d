import { fleetTopics, type PassagePayload, passagePayloadSchema } from '../../shared/fleet.js'

/**
 * Another gate's passage as it came off the broker (`gates/<gateId>/passages`), or null for
 * garbage: not JSON, not the schema, or a passage naming another gate than its topic does (a gate
 * may publish only on its own topic; the payload must agree).
 */
export function passageFrom(topic: string, raw: Buffer): PassagePayload | null {
  let value: unknown
  try {
    value = JSON.parse(raw.toString('utf8'))
  } catch {
    return null
  }
  const parsed = passagePayloadSchema.safeParse(value)
  if (!parsed.success || topic !== fleetTopics(parsed.data.gateId).passages) return null
  return parsed.data
}

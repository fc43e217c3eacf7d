import { Ajv2020 } from 'ajv/dist/2020.js'
import { z } from 'zod'
import { type Checkin, checkinSchema } from '../../shared/checkin.js'
import { GateError } from '../../shared/errors.js'
import { type SyncBatchEnvelope, syncBatchEnvelopeSchema } from '../../shared/sync.js'

/**
 * Checking a sync batch. The shared zod schemas are the one definition of a valid batch; walking
 * them record by record cost a sixth of the service's time on the sync path (and a copy of every
 * record). So the same schemas are turned into JSON Schema once (zod's own `toJSONSchema`) and
 * compiled to plain code by ajv, the validator Fastify itself uses, which checks a batch in place.
 * Only a batch it refuses goes through zod, for zod's messages (and for its verdict: a batch zod
 * accepts is accepted, whatever ajv said).
 */
function compileBatchCheck(): (body: unknown) => boolean {
  const json = (s: z.ZodType) => {
    const { $schema: _, ...rest } = z.toJSONSchema(s, { io: 'input' }) as Record<string, unknown>
    return rest
  }
  const envelope = json(syncBatchEnvelopeSchema) as { properties: { records: Record<string, unknown> } }
  envelope.properties.records.items = json(checkinSchema)
  // string lengths are counted in code points by both (ajv's default, zod 4's); zod's uuid
  // pattern does the checking, so ajv takes the 'uuid' format name as known
  const ajv = new Ajv2020({ formats: { uuid: true }, allErrors: false })
  return ajv.compile(envelope)
}

/** The compiled check (exported for the test that holds it to zod's verdicts). */
export const batchIsValid = compileBatchCheck()

/** What is wrong with one malformed record of a batch. */
export interface RecordProblem {
  index: number
  path: string
  message: string
}

/** What a sync request says: its envelope, and the check-ins once every one of them is valid. */
export interface ReadBatch extends SyncBatchEnvelope {
  /** every record, checked; null when at least one is malformed */
  checked: Checkin[] | null
  /** what is wrong with the malformed records (at most three issues each); empty when none is */
  problems: RecordProblem[]
}

/** Read a sync request's body: E_INPUT when the envelope is malformed. */
export function readBatch(body: unknown): ReadBatch {
  if (batchIsValid(body)) {
    const b = body as SyncBatchEnvelope & { records: Checkin[] }
    return { ...b, checked: b.records, problems: [] }
  }
  const env = syncBatchEnvelopeSchema.safeParse(body)
  if (!env.success) {
    throw new GateError('E_INPUT', 'the batch is malformed', {
      context: {
        problems: env.error.issues.slice(0, 20).map((i) => ({ path: i.path.join('.'), message: i.message })),
      },
    })
  }
  // every record through zod: its verdict, and its messages for the malformed ones
  const checked: Checkin[] = []
  const problems: RecordProblem[] = []
  env.data.records.forEach((raw, index) => {
    const r = checkinSchema.safeParse(raw)
    if (r.success) checked.push(r.data)
    else
      for (const i of r.error.issues.slice(0, 3))
        problems.push({ index, path: i.path.join('.'), message: i.message })
  })
  return { ...env.data, checked: problems.length === 0 ? checked : null, problems }
}

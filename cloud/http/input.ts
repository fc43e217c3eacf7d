import type { z } from 'zod'
import { GateError } from '../../shared/errors.js'

/**
 * A request's parameters, query or body checked against `schema`: the parsed value, or E_INPUT
 * (400) naming every problem by its path (`whole` names a problem with the value itself).
 */
export function parseInput<T extends z.ZodType>(schema: T, value: unknown, whole = ''): z.infer<T> {
  const r = schema.safeParse(value)
  if (!r.success)
    throw new GateError(
      'E_INPUT',
      r.error.issues.map((i) => `${i.path.join('.') || whole}: ${i.message}`).join('; '),
    )
  return r.data
}

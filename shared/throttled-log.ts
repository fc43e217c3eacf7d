import type { Logger } from 'pino'

interface Quiet {
  /** when this key was last logged, ms */
  at: number
  /** occurrences left out since */
  left: number
  /** a few of the subjects (gate ids) left out, for the next line */
  examples: Set<string>
}

/** Examples named in a summary line. */
const EXAMPLES = 5

/**
 * Warnings that can come in floods (bad MQTT payloads, refused rows): the first of each key is
 * logged at once, then at most one line per `everyMs`, saying how many were left out since and
 * naming a few of their subjects. Keys are kinds of problem, not senders, so that a flood from many
 * made-up senders still logs one line a minute; their number is bounded (`maxKeys`).
 */
export class ThrottledLog {
  private readonly keys = new Map<string, Quiet>()

  constructor(
    private readonly log: Logger,
    /** at most one line per key this often, ms */
    private readonly everyMs = 60_000,
    private readonly maxKeys = 256,
    private readonly now: () => number = Date.now,
  ) {}

  /** Log `msg` with `fields` now, or count it for the next line of `key`; `subject` is named in that line. */
  warn(key: string, subject: string, fields: Record<string, unknown>, msg: string): void {
    const now = this.now()
    const q = this.keys.get(key)
    if (q && now - q.at < this.everyMs) {
      q.left++
      if (q.examples.size < EXAMPLES) q.examples.add(subject.slice(0, 80))
      return
    }
    const since = q && q.left > 0 ? { leftOut: q.left, leftOutExamples: [...q.examples] } : {}
    this.log.warn({ ...fields, ...since }, q && q.left > 0 ? `${msg} (and ${q.left} more since)` : msg)
    if (!q && this.keys.size >= this.maxKeys) {
      const oldest = this.keys.keys().next().value
      if (oldest !== undefined) this.keys.delete(oldest)
    }
    this.keys.set(key, { at: now, left: 0, examples: new Set() })
  }
}

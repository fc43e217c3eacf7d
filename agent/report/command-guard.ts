import { type Command, commandSchema, verifyCommand } from '../../shared/fleet.js'
import type { Clock } from '../clock.js'

/** What a command received from the broker turned out to be. */
export type CommandCheck =
  | { kind: 'garbage' }
  | { kind: 'refused'; id: string | null; error: string }
  | { kind: 'accepted'; command: Command }

/** Default of `commandMaxAgeMs`, ms. */
const DEFAULT_MAX_AGE_MS = 60_000
/** Command ids remembered against replays; past this, the oldest half is forgotten. */
const SEEN_MAX = 1_000

/**
 * Checks each command a gate receives before it runs: readable, well-formed, for this gate, signed
 * with the command secret, neither stale nor from the future, and never executed before.
 */
export class CommandGuard {
  /** ids of the commands accepted, with their time (against replays) */
  private readonly seen = new Map<string, number>()

  constructor(
    private readonly opts: {
      gateId: string
      /** HMAC secret of commands; without one every command is refused */
      commandSecret?: string | undefined
      /** a command older (or further in the future) than this is refused, ms */
      commandMaxAgeMs?: number | undefined
      clock: Clock
    },
  ) {}

  /** Check one command as received; an accepted one is remembered, so the same one is refused next time. */
  check(raw: Buffer): CommandCheck {
    let parsed: unknown
    try {
      parsed = JSON.parse(raw.toString('utf8'))
    } catch {
      return { kind: 'garbage' }
    }
    const id = typeof (parsed as { id?: unknown })?.id === 'string' ? (parsed as { id: string }).id : null
    const refuse = (error: string): CommandCheck => ({ kind: 'refused', id, error })
    const checked = commandSchema.safeParse(parsed)
    if (!checked.success)
      return refuse(
        `malformed: ${checked.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
      )
    const command: Command = checked.data
    const { gateId, commandSecret, clock } = this.opts
    if (command.gateId !== gateId) return refuse(`for gate ${command.gateId}, not this one`)
    if (!commandSecret) return refuse('this gate has no command secret: commands are disabled')
    if (!verifyCommand(command, commandSecret)) return refuse('bad signature')
    const maxAge = this.opts.commandMaxAgeMs ?? DEFAULT_MAX_AGE_MS
    if (Math.abs(clock.now() - command.ts) > maxAge) return refuse('stale or future command (replay?)')
    if (this.seen.has(command.id)) return refuse('already executed (replay)')
    this.seen.set(command.id, command.ts)
    if (this.seen.size > SEEN_MAX)
      for (const k of [...this.seen.keys()].slice(0, SEEN_MAX / 2)) this.seen.delete(k)
    return { kind: 'accepted', command }
  }
}

import type { Logger } from 'pino'
import type { Clock } from '../clock.js'

/** How often a whole prune runs, ms. */
const PRUNE_EVERY_MS = 3_600_000

/** One bounded slice of a prune (the outbox's `prune`): rows deleted, and where the next slice starts. */
export interface PruneSlicer {
  prune(days: number, opts: { from?: number }): { deleted: number; next: number | null }
}

/**
 * The hourly prune of old synced check-ins, run a slice per housekeeping tick until none is left,
 * then again an hour later. A failure (the file locked by an import, a full disk) is logged and
 * tried again at the next hour; the agent goes on.
 */
export class PruneSchedule {
  /** wall ms when the last prune ended (or failed) */
  private lastPrunedAt = 0
  /** rows the prune under way has deleted so far */
  private deletedSoFar = 0
  /** where the prune under way takes its next slice (seq_no) */
  private nextSliceFrom = 0

  constructor(
    private readonly outbox: PruneSlicer,
    private readonly deps: {
      clock: Clock
      log: Logger
      /** synced rows older than this are deleted, days */
      retentionDays: number
      /** the re-entry window, ms: no row inside it is deleted */
      dedupWindowMs: number
    },
  ) {}

  /** One housekeeping tick: the next slice when a prune is due or under way. */
  tick(): void {
    const { clock, log } = this.deps
    if (clock.now() - this.lastPrunedAt <= PRUNE_EVERY_MS) return
    try {
      // never a row still inside the re-entry window: it is what a restart rebuilds that memory from
      const days = Math.max(this.deps.retentionDays, this.deps.dedupWindowMs / 86_400_000)
      const slice = this.outbox.prune(days, { from: this.nextSliceFrom })
      this.deletedSoFar += slice.deleted
      if (slice.next === null) {
        this.lastPrunedAt = clock.now()
        if (this.deletedSoFar > 0) log.info({ deleted: this.deletedSoFar }, 'old synced check-ins pruned')
        this.deletedSoFar = 0
        this.nextSliceFrom = 0
      } else {
        this.nextSliceFrom = slice.next
      }
    } catch (err) {
      this.lastPrunedAt = clock.now()
      this.deletedSoFar = 0
      this.nextSliceFrom = 0
      log.error({ err }, 'pruning old synced check-ins failed; trying again in an hour')
    }
  }
}

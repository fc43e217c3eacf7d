export type CircuitState = 'closed' | 'open' | 'half-open'

/**
 * A circuit breaker for the L2 (Redis): after `threshold` consecutive failures it opens and L2 is
 * skipped for `openMs`; then one call is let through (half-open) and its outcome closes or re-opens it.
 * While open, the cache serves from L1 and the loader, so a dead Redis costs nothing per request.
 */
export class Circuit {
  private failures = 0
  /** when it last opened, ms */
  private openedAt = 0
  /** a half-open call is under way */
  private probing = false
  private current: CircuitState = 'closed'
  /** times the circuit opened (for metrics) */
  opened = 0

  constructor(
    private readonly threshold: number,
    private readonly openMs: number,
    private readonly now: () => number = Date.now,
    private readonly onChange: (s: CircuitState) => void = () => {},
  ) {}

  get state(): CircuitState {
    return this.current
  }

  /** May a call go to L2 now? */
  allow(): boolean {
    if (this.current === 'closed') return true
    if (this.current === 'open' && this.now() - this.openedAt >= this.openMs) this.set('half-open')
    if (this.current === 'half-open' && !this.probing) {
      this.probing = true
      return true
    }
    return false
  }

  success(): void {
    this.failures = 0
    this.probing = false
    if (this.current !== 'closed') this.set('closed')
  }

  failure(): void {
    this.probing = false
    this.failures++
    if (this.current === 'half-open' || this.failures >= this.threshold) {
      this.openedAt = this.now()
      if (this.current !== 'open') {
        this.opened++
        this.set('open')
      }
    }
  }

  private set(state: CircuitState): void {
    this.current = state
    this.onChange(state)
  }
}

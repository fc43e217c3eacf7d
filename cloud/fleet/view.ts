import type { Logger } from 'pino'
import type { GateMetrics } from '../../shared/fleet.js'

/** One gate as one cloud node sees it, from the messages it heard and the verdicts of silence. */
export interface GateFleetState {
  gateId: string
  /**
   * online: its session said so and it is heard from; offline: its will, a clean stop, or (reason
   * 'silent') nothing heard for 1.5 of the keep-alives it announced; stale: silent for
   * `silentAfterMs`, for a gate that announced no keep-alive
   */
  state: 'online' | 'offline' | 'stale'
  /** why it is offline: 'will', 'stopped' (the gate's own words) or 'silent'; null while online */
  reason: string | null
  /** the gate's current session (one per connection to the broker); null until a message names one */
  session: number | null
  /** the highest sequence number of the session this node heard */
  lastSeq: number | null
  /** when the gate was last heard from, ms since the epoch (by this node's clock) */
  lastSeenAt: number | null
  version: string | null
  bootId: string | null
  startedAt: string | null
  /** its last metrics message */
  metrics: GateMetrics | null
  /** messages of its current session that no node heard (lost) */
  seqGaps: number
  /** its last event, with the gate's time of it, ms since the epoch */
  lastEvent: { kind: string; at: number } | null
}

/** A gate first heard of: online until a message or a silence says otherwise. */
export function newGateView(gateId: string): GateFleetState {
  return {
    gateId,
    state: 'online',
    reason: null,
    session: null,
    lastSeq: null,
    lastSeenAt: null,
    version: null,
    bootId: null,
    startedAt: null,
    metrics: null,
    seqGaps: 0,
    lastEvent: null,
  }
}

/** Declared by silence (by whichever node claimed the gate's deadline), not said by the gate or its will. */
export const silenced = (gate: GateFleetState): boolean =>
  gate.state === 'stale' || (gate.state === 'offline' && gate.reason === 'silent')

/**
 * Which of two views of one gate is more recent: the later session; within a session an offline
 * status (the will or a stop ends the session); a silence against a view of the gate heard after
 * the silence's last-heard time (the gate spoke again: it lives); else the higher sequence number.
 */
export function newer(a: GateFleetState, b: GateFleetState): boolean {
  const sessionA = a.session ?? -1
  const sessionB = b.session ?? -1
  if (sessionA !== sessionB) return sessionA > sessionB
  const ended = (gate: GateFleetState) => gate.state === 'offline' && !silenced(gate)
  if (ended(a) || ended(b)) return ended(a) && !ended(b)
  if (silenced(a) !== silenced(b)) {
    const [quiet, other] = silenced(a) ? [a, b] : [b, a]
    const spokeSince = (other.lastSeenAt ?? 0) > (quiet.lastSeenAt ?? 0)
    return silenced(a) ? !spokeSince : spokeSince
  }
  return (a.lastSeq ?? -1) > (b.lastSeq ?? -1)
}

/**
 * Where the views of every node meet (Redis), so that any node can list the whole fleet. Each node
 * writes the gates it hears (its share of the shared subscription); a node without one lists only
 * its own view.
 */
export interface FleetStateStore {
  /**
   * Keep `view` as this node's view of its gate, replacing this node's earlier view of it (and no
   * other node's). Rejects when the store cannot be reached; the view is then simply not shared.
   */
  save(view: GateFleetState): Promise<void>
  /**
   * Every gate's most recent view among the nodes' (by `newer`), one per gate, in no particular
   * order. The views `keep` refuses are left out and removed for good, and so are views a day
   * (by `lastSeenAt`) older than their gate's most recent one.
   */
  all(keep?: (view: GateFleetState) => boolean): Promise<GateFleetState[]>
}

/**
 * This node's view of the fleet: one state per gate it heard, each change told to the watchers
 * (the dashboard's live stream) and shared through the store when there is one.
 */
export class FleetView {
  private readonly gates = new Map<string, GateFleetState>()
  private readonly watchers = new Set<(gate: GateFleetState) => void>()

  constructor(
    private readonly store: FleetStateStore | undefined,
    private readonly log: Logger,
  ) {}

  get(gateId: string): GateFleetState | undefined {
    return this.gates.get(gateId)
  }

  /** The gate's state, a new one (online, nothing known) when it was not heard of before. */
  viewFor(gateId: string): GateFleetState {
    let gate = this.gates.get(gateId)
    if (!gate) {
      gate = newGateView(gateId)
      this.gates.set(gateId, gate)
    }
    return gate
  }

  has(gateId: string): boolean {
    return this.gates.has(gateId)
  }

  get size(): number {
    return this.gates.size
  }

  /** The gates' ids, a copy (gates may be deleted while it is walked). */
  ids(): string[] {
    return [...this.gates.keys()]
  }

  /** How many gates are in `state`. */
  count(state: GateFleetState['state']): number {
    return [...this.gates.values()].filter((gate) => gate.state === state).length
  }

  delete(gateId: string): void {
    this.gates.delete(gateId)
  }

  /** This node's gates, by id. */
  list(): GateFleetState[] {
    return [...this.gates.values()].sort((a, b) => a.gateId.localeCompare(b.gateId))
  }

  /**
   * The whole fleet: the shared views (`keep` says which are believed) merged with this node's, the
   * more recent of the two per gate, by id. Without a store, or while it cannot be reached, this
   * node's alone.
   */
  async merged(keep: (gate: GateFleetState) => boolean): Promise<GateFleetState[]> {
    if (!this.store) return this.list()
    const merged = new Map<string, GateFleetState>()
    try {
      for (const gate of await this.store.all(keep)) merged.set(gate.gateId, gate)
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'shared fleet state unavailable; this node only')
    }
    for (const gate of this.gates.values()) {
      const other = merged.get(gate.gateId)
      if (!other || !newer(other, gate)) merged.set(gate.gateId, gate)
    }
    return [...merged.values()].sort((a, b) => a.gateId.localeCompare(b.gateId))
  }

  /** Be told of every change to a gate; returns the unwatch. */
  watch(fn: (gate: GateFleetState) => void): () => void {
    this.watchers.add(fn)
    return () => this.watchers.delete(fn)
  }

  /** A gate's state changed: tell the watchers, and share it. */
  save(gate: GateFleetState): void {
    for (const watcher of this.watchers) {
      try {
        watcher(gate)
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, 'fleet watcher failed')
      }
    }
    this.store
      ?.save(gate)
      .catch((err) => this.log.debug({ err: (err as Error).message }, 'fleet state not shared'))
  }
}

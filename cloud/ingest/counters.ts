import { Counter, Gauge, type Registry } from 'prom-client'

/** The ingest's counts for ops (GET /metrics): records refused, and records stored but flagged. */
export interface IngestCounters {
  /** reason: wrong_event, id_conflict */
  refused: Counter<'reason'>
  /** reason: unknown_participant */
  flagged: Counter<'reason'>
}

/** The ingest's counters, registered on `registry`; `rosterSize`: the node's roster index, for a gauge. */
export function createIngestCounters(registry: Registry, rosterSize?: () => number): IngestCounters {
  if (rosterSize)
    new Gauge({
      name: 'ingest_roster_index_entries',
      help: "(event, participant, badge) triples in this node's roster index (the event check's fast path)",
      registers: [registry],
      collect() {
        this.set(rosterSize())
      },
    })
  return {
    refused: new Counter({
      name: 'ingest_records_refused_total',
      help: 'Check-ins refused (400, kept on the gate), by reason: wrong_event (participant or token of another event), id_conflict (an id already stored with another time or content)',
      labelNames: ['reason'],
      registers: [registry],
    }),
    flagged: new Counter({
      name: 'ingest_records_flagged_total',
      help: 'Check-ins stored but flagged, by reason: unknown_participant (a participant the cloud does not know)',
      labelNames: ['reason'],
      registers: [registry],
    }),
  }
}

// What the store thread (store-thread.ts, on the event loop's thread) and its worker
// (store-worker.ts) say to each other. Types only: neither side loads the other.

/** What the worker is started with. */
export interface StoreWorkerData {
  /** the agent database */
  file: string
  /** PASSIVE checkpoint every this, ms */
  intervalMs: number
  /** SQL by name for reads; each returns one row: first, last, count, json */
  queries: Record<string, string>
}

/** One read asked of the worker: a named query and its arguments. */
export interface ReadRequest {
  id: number
  query: string
  args: readonly number[]
}

/** One read the thread answers: a claim's seq_no range, row count, and records as UTF-8 JSON. */
export interface ThreadRows {
  first: number | null
  last: number | null
  count: number
  json: Uint8Array
}

/** What the worker posts: the outcome of a checkpoint, or the answer to a read. */
export type WorkerMessage =
  | { kind: 'checkpoint'; ok: boolean; log?: number; checkpointed?: number; error?: string }
  | ({ kind: 'rows'; id: number; error?: string } & Partial<ThreadRows>)

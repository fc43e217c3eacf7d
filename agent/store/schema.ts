/** 'GATE' in ASCII: marks a SQLite file as the agent's own (PRAGMA application_id). */
export const APPLICATION_ID = 0x47415445

/**
 * The agent's schema, one entry per version (PRAGMA user_version). Each runs in one transaction.
 * Append new versions; never edit a released one.
 */
export const MIGRATIONS: readonly string[] = [
  // v1: roster, outbox, meta
  `
  CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
  ) STRICT;

  CREATE TABLE roster (
    token          TEXT PRIMARY KEY,
    participant_id TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('active', 'revoked', 'inactive')),
    name           TEXT,
    updated_at     INTEGER NOT NULL,
    version        INTEGER NOT NULL
  ) STRICT;

  CREATE TABLE checkins (
    seq_no         INTEGER PRIMARY KEY,
    id             TEXT NOT NULL UNIQUE,
    gate_id        TEXT NOT NULL,
    token          TEXT NOT NULL,
    participant_id TEXT,
    method         TEXT NOT NULL,
    decision       TEXT NOT NULL CHECK (decision IN ('admit', 'deny')),
    reason         TEXT,
    rssi           INTEGER NOT NULL,
    wall_ms        INTEGER NOT NULL,
    mono_ms        REAL NOT NULL,
    boot_id        TEXT NOT NULL,
    boot_seq       INTEGER NOT NULL,
    roster_version INTEGER NOT NULL,
    state          INTEGER NOT NULL DEFAULT 0 CHECK (state IN (0, 1, 2)),
    attempts       INTEGER NOT NULL DEFAULT 0,
    synced_at      INTEGER
  ) STRICT;

  -- small: only rows not yet synced (pending count, oldest pending, the syncer's next batch)
  CREATE INDEX checkins_unsynced ON checkins (seq_no) WHERE state < 2;
  -- dedup across restarts: the latest decision for a token
  CREATE INDEX checkins_token ON checkins (token, wall_ms);

  CREATE TABLE boots (
    boot_id    TEXT PRIMARY KEY,
    started_ms INTEGER NOT NULL,
    version    TEXT NOT NULL
  ) STRICT;
  `,
  // v2: the cloud's verdict on rows it refused (kept, visible, never resent)
  `
  ALTER TABLE checkins ADD COLUMN sync_error TEXT;
  `,
  // v3: fleet events waiting for the MQTT broker (sent at QoS 1, removed once the broker has them)
  `
  CREATE TABLE fleet_events (
    id     TEXT PRIMARY KEY,
    at     INTEGER NOT NULL,
    kind   TEXT NOT NULL,
    detail TEXT NOT NULL
  ) STRICT;
  `,
  // v4: the access model: participants' category and tags (the roster is pulled again from the
  // start to get them), and what each decision changed (the zone entered, the zone left, the rule)
  `
  ALTER TABLE roster ADD COLUMN category TEXT;
  ALTER TABLE roster ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';
  ALTER TABLE checkins ADD COLUMN zone_in TEXT;
  ALTER TABLE checkins ADD COLUMN zone_out TEXT;
  ALTER TABLE checkins ADD COLUMN rule_id TEXT;
  -- the zone ledger is rebuilt at start from these rows only
  CREATE INDEX checkins_zones ON checkins (seq_no) WHERE zone_in IS NOT NULL OR zone_out IS NOT NULL;
  UPDATE meta SET value = '0' WHERE key = 'roster_cursor';
  `,
  // v5: what the cloud is told of a decision besides the verdict: the policy version and, for a
  // denial by the rules, why in words; a decision by hand, who made it and why; and the admit an
  // unconfirmed passage annuls
  `
  ALTER TABLE checkins ADD COLUMN policy_version INTEGER;
  ALTER TABLE checkins ADD COLUMN explanation TEXT;
  ALTER TABLE checkins ADD COLUMN actor TEXT;
  ALTER TABLE checkins ADD COLUMN note TEXT;
  ALTER TABLE checkins ADD COLUMN annuls TEXT;
  `,
]

/** The schema version this build writes. */
export const SCHEMA_VERSION = MIGRATIONS.length

/** Row states of the outbox. */
export const CheckinState = { pending: 0, inFlight: 1, synced: 2 } as const
/** A row state by name. */
export type CheckinStateName = keyof typeof CheckinState

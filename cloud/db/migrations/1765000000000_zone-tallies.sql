-- Up Migration

-- Occupancy and capacity (shared/access/occupancy.ts, escrow.ts). Each gate reports, per zone and
-- period, the entries it let in, the exits it let out and the entries it annulled: counts that only
-- grow, merged by taking the larger, a later period replacing an earlier one, so a resent or
-- reordered report changes nothing. A zone's occupancy is the sum over its gates.
CREATE TABLE zone_tallies (
  event_id    text NOT NULL REFERENCES events (id),
  zone        text NOT NULL,
  gate_id     text NOT NULL,
  period      text NOT NULL,
  entries     bigint NOT NULL CHECK (entries >= 0),
  exits       bigint NOT NULL CHECK (exits >= 0),
  annulled    bigint NOT NULL CHECK (annulled >= 0),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (event_id, zone, gate_id)
);

-- The allotments handed to entry gates of zones with a capacity: a gate may admit while its
-- counted entries (entries less annulled) in the period are below `lim`. A limit only grows within
-- a period: a gate out of reach may be using it.
CREATE TABLE zone_allotments (
  event_id    text NOT NULL REFERENCES events (id),
  zone        text NOT NULL,
  gate_id     text NOT NULL,
  period      text NOT NULL,
  lim         bigint NOT NULL CHECK (lim >= 0),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (event_id, zone, gate_id)
);

-- Down Migration
DROP TABLE zone_allotments;
DROP TABLE zone_tallies;

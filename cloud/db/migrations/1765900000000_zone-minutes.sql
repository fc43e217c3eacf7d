-- Up Migration

-- Each zone's entries minus exits per minute and gate, kept by the ingest with the other rollups
-- (only for check-ins that entered or left a zone): an event's report reads each zone's peak
-- occupancy from a few rows per minute instead of every passage of the event. An entry annulled
-- later (the person never went through) is taken back in the minute of its annulment, as the gates
-- counted it.
CREATE TABLE zone_minutes (
  event_id  text NOT NULL,
  zone      text NOT NULL,
  minute    timestamptz NOT NULL,
  gate_id   text NOT NULL,
  delta     bigint NOT NULL,
  PRIMARY KEY (event_id, zone, minute, gate_id)
);

INSERT INTO zone_minutes (event_id, zone, minute, gate_id, delta)
SELECT event_id, zone, minute, gate_id, sum(d)
  FROM (
    SELECT g.event_id, a.zone_in AS zone, to_timestamp(floor(extract(epoch FROM a.ts) / 60) * 60) AS minute, a.gate_id, 1 AS d
      FROM attendance_records a JOIN gates g ON g.id = a.gate_id
     WHERE g.event_id IS NOT NULL AND a.decision = 'admit' AND a.zone_in IS NOT NULL
    UNION ALL
    SELECT g.event_id, a.zone_out, to_timestamp(floor(extract(epoch FROM a.ts) / 60) * 60), a.gate_id, -1
      FROM attendance_records a JOIN gates g ON g.id = a.gate_id
     WHERE g.event_id IS NOT NULL AND a.decision = 'admit' AND a.zone_out IS NOT NULL
    UNION ALL
    SELECT g.event_id, e.zone_in, to_timestamp(floor(extract(epoch FROM x.ts) / 60) * 60), x.gate_id, -1
      FROM attendance_records x JOIN gates g ON g.id = x.gate_id
      JOIN attendance_records e ON e.id = x.annuls
     WHERE g.event_id IS NOT NULL AND e.decision = 'admit' AND e.zone_in IS NOT NULL
  ) p
 GROUP BY 1, 2, 3, 4;

-- Down Migration
DROP TABLE zone_minutes;

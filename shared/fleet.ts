import { createHmac, timingSafeEqual } from 'node:crypto'
import { z } from 'zod'

/**
 * Fleet health over MQTT (the contract in docs/reference/mqtt-topics.md): topics, payloads (JSON, schema
 * version `v`, timestamp `ts`), and the signature of commands.
 *
 * Sessions as Sparkplug B does them: every connection of a gate to the broker is a new `session`
 * (a counter kept on the gate across restarts), and every message of a session carries the next
 * `seq`. The cloud can then tell a stale will (an older session) from a live session, and notice
 * lost messages (a gap in seq).
 */
export const FLEET_SCHEMA_VERSION = 1

export const fleetTopics = (gateId: string) => ({
  status: `gates/${gateId}/status`,
  metrics: `gates/${gateId}/metrics`,
  events: `gates/${gateId}/events`,
  cmd: `gates/${gateId}/cmd`,
  cmdResponse: `gates/${gateId}/cmd/response`,
  passages: `gates/${gateId}/passages`,
})

/** Every gate's passages: what the gates of a venue subscribe to, to share anti-passback. */
export const PASSAGES_TOPIC_FILTER = 'gates/+/passages'

/**
 * A passage a gate made (an admit that entered or left a zone), shared with the other gates of the
 * venue over their broker so that anti-passback holds across the gates of a zone
 * (`gates/<gateId>/passages`, QoS 1, not retained). `id` is the check-in's id.
 */
export const passagePayloadSchema = z
  .object({
    v: z.literal(FLEET_SCHEMA_VERSION),
    id: z.string().uuid(),
    gateId: z.string().min(1).max(64),
    participantId: z.string().min(1).max(128),
    zoneIn: z.string().min(1).max(64).nullable(),
    zoneOut: z.string().min(1).max(64).nullable(),
    /** the gate's wall clock of the decision, ms */
    ts: z.number().int().nonnegative(),
    policyVersion: z.number().int().nonnegative(),
    /** set when this undoes a passage shared before (the admit was annulled): that passage's id */
    annuls: z.string().uuid().optional(),
  })
  .strict()
export type PassagePayload = z.infer<typeof passagePayloadSchema>

const base = {
  v: z.literal(FLEET_SCHEMA_VERSION),
  ts: z.number().int().nonnegative(),
  gateId: z.string().min(1).max(64),
  bootId: z.string().uuid(),
  session: z.number().int().nonnegative(),
  // bounded: the cloud keeps a bitmap of the seqs heard (a Redis bit offset is below 2^32)
  seq: z
    .number()
    .int()
    .nonnegative()
    .max(2 ** 31 - 1),
}

/**
 * How often a gate is heard from, in its online status and in every metrics message (a cloud node
 * that subscribes to a large fleet may have some retained statuses dropped by the broker's queue
 * limit): the session's MQTT keep-alive and metrics interval, s. The broker gives up on a gate
 * silent for 1.5 keep-alives; the cloud holds it to the same bound itself (the broker's keep-alive
 * timer may be coarse), and needs the metrics interval to know how often a live gate is heard
 * from (keep-alive pings are seen by the broker only).
 */
const timing = {
  keepaliveS: z.number().int().min(1).max(65_535).optional(),
  metricsIntervalS: z.number().positive().max(86_400).optional(),
}

/** Retained on gates/<id>/status: online at every connection, offline by the will or a clean stop. */
export const statusPayloadSchema = z
  .object({
    ...base,
    state: z.enum(['online', 'offline']),
    version: z.string().max(64),
    startedAt: z.string(),
    /** why offline: the broker's will (connection lost) or a clean stop */
    reason: z.enum(['will', 'stopped']).optional(),
    ...timing,
  })
  .strict()
export type StatusPayload = z.infer<typeof statusPayloadSchema>

/** gates/<id>/metrics, every interval: units in the names. */
export const gateMetricsSchema = z
  .object({
    cpu_percent: z.number().nonnegative(),
    load1: z.number().nonnegative(),
    mem_used_bytes: z.number().nonnegative(),
    mem_total_bytes: z.number().nonnegative(),
    rss_bytes: z.number().nonnegative(),
    temperature_c: z.number().nullable(),
    disk_free_bytes: z.number().nullable(),
    uptime_s: z.number().nonnegative(),
    adverts_per_s: z.number().nonnegative(),
    decisions_admit_total: z.number().int().nonnegative(),
    decisions_deny_total: z.number().int().nonnegative(),
    l1_hit_ratio: z.number().min(0).max(1).nullable(),
    buffer_pending: z.number().int().nonnegative(),
    buffer_oldest_pending_age_s: z.number().nonnegative().nullable(),
    last_sync_age_s: z.number().nonnegative().nullable(),
    clock_offset_ms: z.number().nullable(),
    adapter_state: z.string().max(32),
    scan_restarts_total: z.number().int().nonnegative(),
    disk_write_bytes_total: z.number().nonnegative().nullable(),
    roster_version: z.number().int().nonnegative(),
  })
  .strict()
export type GateMetrics = z.infer<typeof gateMetricsSchema>

export const metricsPayloadSchema = z.object({ ...base, ...timing, metrics: gateMetricsSchema }).strict()
export type MetricsPayload = z.infer<typeof metricsPayloadSchema>

export const EVENT_KINDS = [
  'adapter_lost',
  'adapter_back',
  'disk_low',
  'backlog_growing',
  'roster_stale',
  'clock_unsynchronised',
] as const
export type GateEventKind = (typeof EVENT_KINDS)[number]

/** gates/<id>/events: kept on the gate (SQLite) while the broker is away, sent when it is back. */
export const eventPayloadSchema = z
  .object({
    ...base,
    id: z.string().uuid(),
    /** when it happened (ts is when it was sent) */
    at: z.number().int().nonnegative(),
    kind: z.enum(EVENT_KINDS),
    detail: z.record(z.string(), z.unknown()),
  })
  .strict()
export type EventPayload = z.infer<typeof eventPayloadSchema>

export const COMMANDS = [
  'resync_roster',
  'sync_now',
  'restart_scan',
  'set_log_level',
  'rebirth',
  'checkout',
] as const

/** gates/<id>/cmd: signed by the cloud (HMAC-SHA256 with the gate's command secret), fresh, once. */
export const commandSchema = z
  .object({
    v: z.literal(FLEET_SCHEMA_VERSION),
    id: z.string().uuid(),
    ts: z.number().int().nonnegative(),
    gateId: z.string().min(1).max(64),
    cmd: z.enum(COMMANDS),
    params: z.record(z.string(), z.unknown()).default({}),
    sig: z.string().regex(/^[0-9a-f]{64}$/),
  })
  .strict()
export type Command = z.infer<typeof commandSchema>

export const commandResponseSchema = z
  .object({
    v: z.literal(FLEET_SCHEMA_VERSION),
    id: z.string(),
    ts: z.number().int().nonnegative(),
    gateId: z.string(),
    ok: z.boolean(),
    result: z.unknown().optional(),
    error: z.string().optional(),
  })
  .strict()
export type CommandResponse = z.infer<typeof commandResponseSchema>

/** What is signed: every field but the signature, in a fixed order. */
function signedText(c: Omit<Command, 'sig'>): string {
  return JSON.stringify([c.v, c.id, c.ts, c.gateId, c.cmd, c.params])
}

export function signCommand(c: Omit<Command, 'sig'>, secret: string): Command {
  return { ...c, sig: createHmac('sha256', secret).update(signedText(c)).digest('hex') }
}

export function verifyCommand(c: Command, secret: string): boolean {
  const want = Buffer.from(createHmac('sha256', secret).update(signedText(c)).digest('hex'))
  const got = Buffer.from(c.sig)
  return want.length === got.length && timingSafeEqual(want, got)
}

// The agent's whole configuration as one zod schema: every setting with its bounds, its default and
// its description, which is its documentation (scripts/gen-reference.ts writes
// docs/reference/agent-config.md from it). It stays one file so that it reads in the order of that
// reference. Its seams are its sections: the decoders' and the sources' are schemas of their own.
import { z } from 'zod'

const hex = (bytes?: number) =>
  z
    .string()
    .transform((s) => s.replace(/[\s:-]/g, '').toLowerCase())
    .refine((s) => /^([0-9a-f]{2})*$/.test(s), 'must be hexadecimal bytes')
    .refine((s) => bytes === undefined || s.length === bytes * 2, `must be ${bytes} bytes of hex`)

const uuid128 = z
  .string()
  .transform((s) => s.replace(/-/g, '').toLowerCase())
  .refine(
    (s) => /^[0-9a-f]{32}$/.test(s),
    'must be a 128-bit UUID such as e2c56db5-dffb-48d2-b060-d0f5a71096e0',
  )

/** iBeacon: the event's proximity UUID must match; the token is taken from major/minor. */
export const ibeaconSchema = z
  .object({
    enabled: z.boolean().default(true).describe('decode iBeacon adverts'),
    // stored without dashes
    uuid: uuid128
      .prefault('e2c56db5-dffb-48d2-b060-d0f5a71096e0')
      .describe("the event's iBeacon proximity UUID: an iBeacon with another UUID is foreign"),
    token: z
      .enum(['major-minor', 'minor'])
      .default('major-minor')
      .describe(
        'how the token is made: `major-minor` = major then minor (8 hex), `minor` = minor alone (4 hex)',
      ),
  })
  .strict()

/** Eddystone-UID: the namespace must match; the token is the 6-byte instance as 12 hex chars. */
export const eddystoneSchema = z
  .object({
    enabled: z.boolean().default(true).describe('decode Eddystone-UID frames'),
    namespace: hex(10)
      .prefault('edd1ebeac04e5defa017')
      .describe(
        "the event's 10-byte Eddystone-UID namespace, hex; the token is the 6-byte instance (12 hex)",
      ),
  })
  .strict()

/** A token in manufacturer-specific data: company id, optional prefix bytes, then the token bytes. */
export const manufacturerSchema = z
  .object({
    enabled: z.boolean().default(true).describe('decode a token in manufacturer-specific data'),
    companyId: z
      .number()
      .int()
      .min(0)
      .max(0xffff)
      .default(0xffff)
      .describe(
        'Bluetooth SIG company identifier of the manufacturer data (0xFFFF = 65535 is reserved for tests and internal use)',
      ),
    prefix: hex()
      .prefault('ca11')
      .describe('bytes that must follow the company id before the token (a magic or version), hex'),
    tokenBytes: z
      .number()
      .int()
      .min(2)
      .max(24)
      .default(8)
      .describe('token length, bytes; the token is these bytes as lower-case hex'),
  })
  .strict()

/** Which advert formats carry a participant token, and how (`decoders`). */
export const decodersSchema = z
  .object({
    ibeacon: ibeaconSchema
      .default(ibeaconSchema.parse({}))
      .describe('iBeacon (Apple, company 0x004C): the token is taken from major and minor'),
    eddystone: eddystoneSchema.default(eddystoneSchema.parse({})).describe('Eddystone-UID (service 0xFEAA)'),
    manufacturer: manufacturerSchema
      .default(manufacturerSchema.parse({}))
      .describe('a token in manufacturer data: company id, prefix bytes, then the token'),
  })
  .strict()

/** The simulated crowd (`source.sim`). */
export const simSchema = z
  .object({
    participants: z
      .number()
      .int()
      .min(0)
      .max(1_000_000)
      .default(200)
      .describe('participants in the simulated crowd (they walk up to the gate and away)'),
    seed: z.number().int().default(1).describe('PRNG seed: the same seed gives the same crowd'),
    arrivalSpreadMs: z
      .number()
      .int()
      .min(0)
      .default(600_000)
      .describe('the crowd arrives over this long, ms'),
    passersBy: z
      .number()
      .min(0)
      .max(1)
      .default(0.1)
      .describe(
        'fraction of participants that only walk past at the edge of range (and must not be checked in)',
      ),
    revoked: z.number().int().min(0).default(5).describe('revoked badges in the crowd'),
    unknown: z.number().int().min(0).default(5).describe('badges whose tokens are not in the roster'),
    foreign: z
      .number()
      .int()
      .min(0)
      .default(20)
      .describe("foreign devices (phones, sensors, other venues' beacons) that must be ignored"),
    loop: z
      .boolean()
      .default(true)
      .describe('the crowd comes again after everyone left (a demo gate keeps seeing people)'),
    door: z
      .object({ index: z.number().int().min(0), of: z.number().int().min(1).max(1000) })
      .strict()
      .refine((d) => d.index < d.of, { message: 'door.index must be less than door.of' })
      .default({ index: 0, of: 1 })
      .describe(
        'this gate is door `index` of `of` doors of one venue: the crowd (and so the roster) is the same at every door, and each door sees its share of it, every `of`-th badge and device (what `npm start` gives its gates)',
      ),
    follows: z
      .object({
        afterMs: z
          .number()
          .int()
          .min(0)
          .max(86_400_000)
          .describe('how long after their entrance the crowd comes by this door, ms'),
      })
      .strict()
      .optional()
      .describe(
        'a door passed after the entrances (an exit, a door between two zones): every badge of the crowd, whichever entrance it took, comes by it `afterMs` after it came to its entrance; `door` then only shares out the foreign devices',
      ),
  })
  .strict()

/** Playing a capture file back (`source.replay`). */
export const replaySchema = z
  .object({
    file: z
      .string()
      .min(1)
      .optional()
      .describe(
        'the capture file (JSON lines, made by `gatectl capture`); required when `source.kind` is `replay`',
      ),
    speed: z.number().min(0).default(1).describe('playback speed: 1 = real time, 0 = as fast as possible'),
    loop: z.boolean().default(false).describe('play the file again from the start when it ends'),
  })
  .strict()

/** The real adapter through noble (`source.noble`). */
export const nobleSchema = z
  .object({
    stallTimeoutMs: z
      .number()
      .int()
      .min(1_000)
      .default(30_000)
      .describe('restart the scan when nothing was heard this long while powered on, ms'),
    restartTimeoutMs: z
      .number()
      .int()
      .min(100)
      .default(5_000)
      .describe('a scan restart not confirmed in this time means the radio is unresponsive, ms'),
    reportAllHciEvents: z
      .boolean()
      .default(true)
      .describe(
        'set `NOBLE_REPORT_ALL_HCI_EVENTS=1`, so that badges that never answer scan requests are still reported',
      ),
    cacheSweepIntervalMs: z
      .number()
      .int()
      .min(1_000)
      .default(60_000)
      .describe(
        "how often noble's per-peripheral caches are emptied, ms (with duplicates allowed they grow by one entry per address heard)",
      ),
    hciDevice: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe("adapter index (hci0 = 0); unset: noble's default"),
  })
  .strict()

/** The whole configuration of gate-agent and gatectl, every setting described. */
export const agentConfigSchema = z
  .object({
    gateId: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/, "letters, digits, '-' and '_' only, at most 64")
      .default('gate-1')
      .describe(
        "this gate's id: letters, digits, '-' and '_', at most 64 characters (used in MQTT topics, check-ins and file names)",
      ),
    dataDir: z
      .string()
      .min(1)
      .default('./data/agent')
      .describe('where the SQLite database `agent.db` and the control socket `gate-agent.sock` live'),
    source: z
      .object({
        kind: z
          .enum(['noble', 'sim', 'replay'])
          .default('noble')
          .describe('`noble` (a real adapter), `sim` (a simulated crowd) or `replay` (a capture file)'),
        sim: simSchema.default(simSchema.parse({})).describe('the simulated crowd (`source.kind` `sim`)'),
        replay: replaySchema
          .default(replaySchema.parse({}))
          .describe('playing a capture (`source.kind` `replay`)'),
        noble: nobleSchema.default(nobleSchema.parse({})).describe('a real adapter (`source.kind` `noble`)'),
      })
      .strict()
      .default({
        kind: 'noble',
        sim: simSchema.parse({}),
        replay: replaySchema.parse({}),
        noble: nobleSchema.parse({}),
      })
      .describe('where adverts come from'),
    decoders: decodersSchema
      .default(decodersSchema.parse({}))
      .describe('how a token is read from an advert; an advert no decoder accepts is counted as foreign'),
    proximity: z
      .object({
        enterDbm: z
          .number()
          .int()
          .min(-120)
          .max(0)
          .default(-65)
          .describe('smoothed RSSI at or above which a badge is at the gate, dBm'),
        hysteresisDb: z
          .number()
          .min(0)
          .max(40)
          .default(8)
          .describe(
            'the smoothed RSSI must fall this far below `enterDbm` before the badge counts as gone, dB',
          ),
        alpha: z
          .number()
          .gt(0)
          .max(1)
          .default(0.3)
          .describe('smoothing factor of the moving average of RSSI (higher follows faster)'),
        minSamples: z
          .number()
          .int()
          .min(1)
          .default(3)
          .describe('sightings needed before a badge can be at the gate (one loud reading is not enough)'),
        absenceMs: z
          .number()
          .int()
          .min(100)
          .default(5_000)
          .describe('a badge not heard this long has left, ms'),
        maxTracked: z
          .number()
          .int()
          .min(100)
          .default(20_000)
          .describe(
            'badges tracked at once (a flood of random tokens cannot grow memory); when full, the oldest tracks go first and badges at the gate last, so a flood cannot push out the people standing there',
          ),
      })
      .strict()
      .default({
        enterDbm: -65,
        hysteresisDb: 8,
        alpha: 0.3,
        minSamples: 3,
        absenceMs: 5_000,
        maxTracked: 20_000,
      })
      .describe('when a badge is at the gate: a moving average of its RSSI, with hysteresis'),
    dedup: z
      .object({
        windowMs: z
          .number()
          .int()
          .min(0)
          .default(300_000)
          .describe(
            'one check-in per token per window, ms; a new presence inside it is denied `already_checked_in`, a presence after it is a re-entry. Rebuilt at start from the decisions in the database (the prune never deletes inside the window): those of earlier runs in the same boot of the machine dated by its monotonic clock, so a wall-clock jump changes nothing; those of an earlier boot by the wall clock, where a decision dated in the future is not believed',
          ),
      })
      .strict()
      .default({ windowMs: 300_000 })
      .describe('the re-entry window'),
    validation: z
      .object({
        l1MaxEntries: z
          .number()
          .int()
          .min(1)
          .max(1_000_000)
          .default(10_000)
          .describe(
            'entries of the L1 LRU cache over the SQLite roster (at most 1,000,000: the cache allocates its size up front)',
          ),
        negativeTtlMs: z
          .number()
          .int()
          .min(0)
          .default(10_000)
          .describe('an unknown token is remembered as unknown this long, ms'),
      })
      .strict()
      .default({ l1MaxEntries: 10_000, negativeTtlMs: 10_000 })
      .describe('the roster look-up'),
    outbox: z
      .object({
        retentionDays: z
          .number()
          .min(0)
          .default(14)
          .describe(
            'synced check-ins older than this are deleted from the gate, days; pending and refused ones never are',
          ),
        groupCommitDelayMs: z
          .number()
          .min(0)
          .max(50)
          .default(0)
          .describe(
            'wait at most this long for more decisions before a commit, ms (0 = the next event-loop turn)',
          ),
        maxWaitMs: z
          .number()
          .int()
          .min(100)
          .max(60_000)
          .default(2_000)
          .describe(
            'a decision still waiting for a failing disk (full, broken) after this long is dropped and never emitted, ms: the turnstile must not open minutes later for someone who has left',
          ),
        checkpoint: z
          .enum(['inline', 'worker'])
          .default('inline')
          .describe(
            "WAL checkpoints: `inline` (SQLite's own, in the commit that crosses 1,000 pages) or `worker` (a thread with its own connection, off the event loop: about 11 MB more resident memory)",
          ),
        cacheKiB: z
          .number()
          .int()
          .min(128)
          .max(262_144)
          .default(2_048)
          .describe(
            "SQLite's page cache, KiB (better-sqlite3 builds SQLite with 16 MB; the agent's hot pages are the tail of the outbox and its indexes, and the OS page cache holds the rest)",
          ),
      })
      .strict()
      .default({
        retentionDays: 14,
        groupCommitDelayMs: 0,
        maxWaitMs: 2_000,
        checkpoint: 'inline',
        cacheKiB: 2_048,
      })
      .describe('the durable buffer of check-ins (SQLite)'),
    memory: z
      .object({
        majorGcEveryS: z
          .number()
          .int()
          .min(0)
          .max(3_600)
          .default(30)
          .describe(
            'an incremental full garbage collection every this, s (0 = leave it to V8, which lets the heap grow under steady load before collecting); keeps resident memory near what is live',
          ),
      })
      .strict()
      .default({ majorGcEveryS: 30 })
      .describe("the agent's memory"),
    actuator: z
      .object({
        onAdmit: z
          .array(z.string())
          .min(1)
          .optional()
          .describe(
            'a command run on each admit, argv form (no shell), e.g. a turnstile relay; `{token}` `{participant}` `{decision}` `{reason}` are replaced',
          ),
        onDeny: z
          .array(z.string())
          .min(1)
          .optional()
          .describe('a command run on each deny, argv form, with the same placeholders'),
        timeoutMs: z
          .number()
          .int()
          .min(10)
          .default(2_000)
          .describe('a hook still running after this is killed, ms'),
        maxQueue: z
          .number()
          .int()
          .min(1)
          .default(32)
          .describe(
            'hooks waiting beyond this many are dropped (and counted) rather than queued without bound',
          ),
        confirmPassage: z
          .boolean()
          .default(false)
          .describe(
            'passage confirmation: the onAdmit hook exits 0 once the person has gone through (a turnstile rotation, a GPIO input); any other end (an exit code, killed at timeoutMs, dropped) annuls the admit: recorded, synced, not counted, and the badge may try again at once',
          ),
      })
      .strict()
      .default({ timeoutMs: 2_000, maxQueue: 32, confirmPassage: false })
      .describe('hooks run for each decision, after it is durable'),
    cloud: z
      .object({
        url: z
          .string()
          .refine(
            (value) =>
              value.split(',').every((one) => {
                try {
                  return /^https?:$/.test(new URL(one.trim()).protocol)
                } catch {
                  return false
                }
              }),
            'expected an http(s) URL, or several separated by commas',
          )
          .optional()
          .describe(
            "gate-cloud's base URL; several, comma-separated: uploads and roster pulls go to the least loaded, with failover. Without `url` and `gateKey` the gate works offline only",
          ),
        gateKey: z
          .string()
          .min(16)
          .optional()
          .describe(
            "this gate's key, printed once by `gate-cloud gates add` (a secret: never logged; put it in `GATE_KEY`)",
          ),
        batchSize: z
          .number()
          .int()
          .min(1)
          .max(5_000)
          .default(1_000)
          .describe('check-ins per upload (halved automatically when the cloud answers 413)'),
        concurrency: z
          .number()
          .int()
          .min(1)
          .max(8)
          .default(4)
          .describe('batches in flight at once while a backlog drains (one when there is none)'),
        drainYieldCommitMs: z
          .number()
          .min(0)
          .default(4)
          .describe(
            "a backlog drain yields to decisions: after a decision's commit took longer than this (the disk is contended), one batch at a time for the next 10 s; ms, 0 = never yield",
          ),
        syncIntervalMs: z
          .number()
          .int()
          .min(100)
          .default(2_000)
          .describe(
            'how often the syncer looks for pending check-ins when the buffer is empty, ms; a backlog is sent batch after batch',
          ),
        rosterPullIntervalMs: z
          .number()
          .int()
          .min(500)
          .default(15_000)
          .describe(
            'how often roster changes are pulled, ms: a badge revoked in the cloud is denied at the gate within this',
          ),
        timeoutMs: z
          .number()
          .int()
          .min(500)
          .default(15_000)
          .describe('a call to the cloud taking longer is abandoned and retried, ms'),
        baseBackoffMs: z
          .number()
          .int()
          .min(10)
          .default(1_000)
          .describe(
            "first retry delay, ms; retries back off exponentially with full jitter, and never sooner than the cloud's Retry-After",
          ),
        maxBackoffMs: z.number().int().min(100).default(300_000).describe('longest retry delay, ms'),
      })
      .strict()
      .prefault({})
      .describe('syncing check-ins to gate-cloud and pulling roster changes'),
    mqtt: z
      .object({
        url: z
          .string()
          .url()
          .optional()
          .describe('the MQTT broker the fleet reporter publishes to; unset: the gate does not report'),
        username: z
          .string()
          .min(1)
          .optional()
          .describe("this gate's broker account (the broker's ACL lets it publish only its own topics)"),
        password: z
          .string()
          .min(1)
          .optional()
          .describe("the broker account's password (a secret: never logged)"),
        commandSecret: z
          .string()
          .min(16)
          .optional()
          .describe(
            "HMAC secret of the commands from the cloud (the cloud's `FLEET_COMMAND_SECRET`); without it every command is refused (a secret)",
          ),
        metricsIntervalMs: z.number().int().min(1_000).default(10_000).describe('metrics every this, ms'),
        keepaliveS: z
          .number()
          .int()
          .min(5)
          .max(3_600)
          .default(30)
          .describe(
            'MQTT keep-alive, s: the broker, and the cloud itself, call the gate offline after 1.5 of these without a packet; announced in the `online` status',
          ),
        diskLowBytes: z
          .number()
          .int()
          .min(0)
          .default(500 * 1024 * 1024)
          .describe('the `disk_low` event: free disk space below this, bytes'),
        backlogAgeS: z
          .number()
          .int()
          .min(1)
          .default(600)
          .describe(
            'the `backlog_growing` event: the buffer grows while its oldest pending row is older than this, s',
          ),
        rosterStaleS: z
          .number()
          .int()
          .min(1)
          .default(900)
          .describe('the `roster_stale` event: no roster pull for this long, s'),
        maxClockOffsetMs: z
          .number()
          .int()
          .min(1)
          .default(2_000)
          .describe("the `clock_unsynchronised` event: the gate's clock this far from the cloud's, ms"),
      })
      .strict()
      .default({
        metricsIntervalMs: 10_000,
        keepaliveS: 30,
        diskLowBytes: 500 * 1024 * 1024,
        backlogAgeS: 600,
        rosterStaleS: 900,
        maxClockOffsetMs: 2_000,
      })
      .describe('fleet health over MQTT: status, metrics, events, and commands from the cloud'),
    log: z
      .object({
        level: z
          .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
          .default('info')
          .describe('JSON lines on stdout; every decision is one line at `info`'),
      })
      .strict()
      .default({ level: 'info' })
      .describe('logging'),
  })
  .strict()

/** The agent's validated, frozen configuration. */
export type AgentConfig = z.infer<typeof agentConfigSchema>
/** The decoders' settings. */
export type DecodersConfig = AgentConfig['decoders']
/** The simulated crowd's settings. */
export type SimConfig = AgentConfig['source']['sim']
/** The replay source's settings. */
export type ReplayConfig = AgentConfig['source']['replay']
/** The noble source's settings. */
export type NobleConfig = AgentConfig['source']['noble']
/** When a badge is at the gate: the proximity settings. */
export type ProximityConfig = AgentConfig['proximity']

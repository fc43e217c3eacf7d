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
    enabled: z.boolean().default(true),
    /** the event's iBeacon proximity UUID (stored without dashes) */
    uuid: uuid128.prefault('e2c56db5-dffb-48d2-b060-d0f5a71096e0'),
    /** how the token is made: 'major-minor' = 8 hex chars (major then minor), 'minor' = 4 hex chars */
    token: z.enum(['major-minor', 'minor']).default('major-minor'),
  })
  .strict()

/** Eddystone-UID: the namespace must match; the token is the 6-byte instance as 12 hex chars. */
export const eddystoneSchema = z
  .object({
    enabled: z.boolean().default(true),
    /** the event's 10-byte namespace, hex */
    namespace: hex(10).prefault('edd1ebeac04e5defa017'),
  })
  .strict()

/** A token in manufacturer-specific data: company id, optional prefix bytes, then the token bytes. */
export const manufacturerSchema = z
  .object({
    enabled: z.boolean().default(true),
    /** Bluetooth SIG company identifier (0xFFFF is reserved for tests and internal use) */
    companyId: z.number().int().min(0).max(0xffff).default(0xffff),
    /** bytes that must follow the company id before the token (a magic/version), hex */
    prefix: hex().prefault('ca11'),
    /** token length, bytes; the token is these bytes as lower-case hex */
    tokenBytes: z.number().int().min(2).max(24).default(8),
  })
  .strict()

export const decodersSchema = z
  .object({
    ibeacon: ibeaconSchema.default(ibeaconSchema.parse({})),
    eddystone: eddystoneSchema.default(eddystoneSchema.parse({})),
    manufacturer: manufacturerSchema.default(manufacturerSchema.parse({})),
  })
  .strict()

export const simSchema = z
  .object({
    /** participants in the synthetic crowd (they walk up to the gate and away) */
    participants: z.number().int().min(0).max(1_000_000).default(200),
    /** PRNG seed: the same seed gives the same crowd */
    seed: z.number().int().default(1),
    /** how long it takes the whole crowd to arrive, ms */
    arrivalSpreadMs: z.number().int().min(0).default(600_000),
    /** fraction of passers-by that walk past at the edge of range and must not be checked in */
    passersBy: z.number().min(0).max(1).default(0.1),
    /** revoked badges and unknown tokens in the crowd (counts) */
    revoked: z.number().int().min(0).default(5),
    unknown: z.number().int().min(0).default(5),
    /** foreign devices (phones, sensors) that must be ignored */
    foreign: z.number().int().min(0).default(20),
    /** loop the crowd forever (a demo gate keeps seeing people) */
    loop: z.boolean().default(true),
    /**
     * this gate is door `index` of `of` doors of one venue: the crowd (and so the roster) is the
     * same at every door, and each door sees its share of it (every `of`-th badge and device)
     */
    door: z
      .object({ index: z.number().int().min(0), of: z.number().int().min(1).max(1000) })
      .strict()
      .refine((d) => d.index < d.of, { message: 'door.index must be less than door.of' })
      .default({ index: 0, of: 1 }),
  })
  .strict()

export const replaySchema = z
  .object({
    /** JSON-lines capture made by `gatectl capture` */
    file: z.string().min(1).optional(),
    /** playback speed factor (1 = real time, 0 = as fast as possible) */
    speed: z.number().min(0).default(1),
    loop: z.boolean().default(false),
  })
  .strict()

export const nobleSchema = z
  .object({
    /** restart the scan when no advert arrived for this long while powered on, ms */
    stallTimeoutMs: z.number().int().min(1_000).default(30_000),
    /** how long a scan restart may take before the adapter is called unresponsive, ms */
    restartTimeoutMs: z.number().int().min(100).default(5_000),
    /** pass NOBLE_REPORT_ALL_HCI_EVENTS=1 so badges that never answer scan requests are still reported */
    reportAllHciEvents: z.boolean().default(true),
    /** forget noble's cached peripherals this often, ms (its cache grows without bound with duplicates allowed) */
    cacheSweepIntervalMs: z.number().int().min(1_000).default(60_000),
    /** HCI device index (hci0 = 0) */
    hciDevice: z.number().int().min(0).optional(),
  })
  .strict()

export const agentConfigSchema = z
  .object({
    /** this gate's id: letters, digits, '-' and '_' (it is used in MQTT topics and file names) */
    gateId: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/, "letters, digits, '-' and '_' only, at most 64")
      .default('gate-1'),
    /** where the SQLite database and the control socket live */
    dataDir: z.string().min(1).default('./data/agent'),
    source: z
      .object({
        kind: z.enum(['noble', 'sim', 'replay']).default('noble'),
        sim: simSchema.default(simSchema.parse({})),
        replay: replaySchema.default(replaySchema.parse({})),
        noble: nobleSchema.default(nobleSchema.parse({})),
      })
      .strict()
      .default({
        kind: 'noble',
        sim: simSchema.parse({}),
        replay: replaySchema.parse({}),
        noble: nobleSchema.parse({}),
      }),
    decoders: decodersSchema.default(decodersSchema.parse({})),
    proximity: z
      .object({
        /** smoothed RSSI at or above which a badge is at the gate, dBm */
        enterDbm: z.number().int().min(-120).max(0).default(-65),
        /** the smoothed RSSI must fall this far below enterDbm before the badge counts as gone, dB */
        hysteresisDb: z.number().min(0).max(40).default(8),
        /** smoothing factor of the exponential moving average (0..1, higher follows faster) */
        alpha: z.number().gt(0).max(1).default(0.3),
        /** sightings needed before a badge can be at the gate (one loud reading is not enough) */
        minSamples: z.number().int().min(1).default(3),
        /** a badge not heard for this long is gone, ms */
        absenceMs: z.number().int().min(100).default(5_000),
        /** most badges tracked at once (a flood of random tokens cannot grow memory) */
        maxTracked: z.number().int().min(100).default(20_000),
      })
      .strict()
      .default({
        enterDbm: -65,
        hysteresisDb: 8,
        alpha: 0.3,
        minSamples: 3,
        absenceMs: 5_000,
        maxTracked: 20_000,
      }),
    dedup: z
      .object({
        /** one check-in per token per window; a new presence after it is a re-entry, ms */
        windowMs: z.number().int().min(0).default(300_000),
      })
      .strict()
      .default({ windowMs: 300_000 }),
    validation: z
      .object({
        /** L1 cache entries over the SQLite roster */
        l1MaxEntries: z.number().int().min(1).max(1_000_000).default(10_000),
        /** how long an unknown token is remembered as unknown, ms */
        negativeTtlMs: z.number().int().min(0).default(10_000),
      })
      .strict()
      .default({ l1MaxEntries: 10_000, negativeTtlMs: 10_000 }),
    outbox: z
      .object({
        /** synced check-ins older than this are deleted from the gate, days (pending ones never are) */
        retentionDays: z.number().min(0).default(14),
        /** group commit: wait at most this long for more decisions before committing, ms (0 = next tick) */
        groupCommitDelayMs: z.number().min(0).max(50).default(0),
        /**
         * WAL checkpoints: `inline` (SQLite's own, in the commit that crosses 1,000 pages) or `worker`
         * (a thread with its own connection, off the event loop: about 11 MB more resident memory)
         */
        checkpoint: z.enum(['inline', 'worker']).default('inline'),
        /**
         * SQLite's page cache, KiB (better-sqlite3 builds SQLite with 16 MB; the agent's hot pages are
         * the tail of the outbox and its indexes, and the OS page cache holds the rest)
         */
        cacheKiB: z.number().int().min(128).max(262_144).default(2_048),
      })
      .strict()
      .default({ retentionDays: 14, groupCommitDelayMs: 0, checkpoint: 'inline', cacheKiB: 2_048 }),
    memory: z
      .object({
        /**
         * an incremental full garbage collection every this, s (0 = leave it to V8, which lets the
         * heap grow under steady load before collecting); keeps resident memory near what is live
         */
        majorGcEveryS: z.number().int().min(0).max(3_600).default(30),
      })
      .strict()
      .default({ majorGcEveryS: 30 }),
    actuator: z
      .object({
        /** command run on admit, argv form (no shell); {token} {participant} {reason} {decision} are replaced */
        onAdmit: z.array(z.string()).min(1).optional(),
        /** command run on deny, argv form */
        onDeny: z.array(z.string()).min(1).optional(),
        /** a hook still running after this is killed, ms */
        timeoutMs: z.number().int().min(10).default(2_000),
        /** hooks waiting beyond this many are dropped (and counted) rather than queued without bound */
        maxQueue: z.number().int().min(1).default(32),
      })
      .strict()
      .default({ timeoutMs: 2_000, maxQueue: 32 }),
    cloud: z
      .object({
        /** base URL of gate-cloud (used by the syncer); several, comma-separated: load-aware choice and failover */
        url: z
          .string()
          .refine(
            (v) =>
              v.split(',').every((u) => {
                try {
                  return /^https?:$/.test(new URL(u.trim()).protocol)
                } catch {
                  return false
                }
              }),
            'expected an http(s) URL, or several separated by commas',
          )
          .optional(),
        /** this gate's API key, printed once by `gate-cloud gates add` (a secret: never logged) */
        gateKey: z.string().min(16).optional(),
        /** check-ins per upload */
        batchSize: z.number().int().min(1).max(5_000).default(1_000),
        /** batches in flight at once while a backlog drains */
        concurrency: z.number().int().min(1).max(8).default(4),
        /**
         * a backlog drain yields to decisions: after a decision's commit took longer than this (the disk
         * is contended), one batch at a time for the next 10 s; ms, 0 = never yield
         */
        drainYieldCommitMs: z.number().min(0).default(4),
        /** how often to look for pending check-ins when the buffer is empty, ms */
        syncIntervalMs: z.number().int().min(100).default(2_000),
        /** how often to pull roster changes, ms (a revocation reaches the gate within this) */
        rosterPullIntervalMs: z.number().int().min(500).default(15_000),
        /** a call to the cloud taking longer is abandoned and retried, ms */
        timeoutMs: z.number().int().min(500).default(15_000),
        /** first and longest retry delay, ms */
        baseBackoffMs: z.number().int().min(10).default(1_000),
        maxBackoffMs: z.number().int().min(100).default(300_000),
      })
      .strict()
      .prefault({}),
    mqtt: z
      .object({
        /** MQTT broker URL for fleet health (used by the reporter) */
        url: z.string().url().optional(),
        /** this gate's broker account (the broker's ACL lets it publish only its own topics) */
        username: z.string().min(1).optional(),
        /** a secret: never logged */
        password: z.string().min(1).optional(),
        /** HMAC secret shared with the cloud for commands; without it every command is refused (a secret) */
        commandSecret: z.string().min(16).optional(),
        /** metrics every this, ms */
        metricsIntervalMs: z.number().int().min(1_000).default(10_000),
        /** MQTT keep-alive, s: the broker (and the cloud) call the gate offline after 1.5 of these without a packet */
        keepaliveS: z.number().int().min(5).max(3_600).default(30),
        /** events: disk low below this, bytes; backlog growing when its oldest row is older, s; roster stale after, s */
        diskLowBytes: z
          .number()
          .int()
          .min(0)
          .default(500 * 1024 * 1024),
        backlogAgeS: z.number().int().min(1).default(600),
        rosterStaleS: z.number().int().min(1).default(900),
        /** the clock_unsynchronised event: the gate's clock this far from the cloud's, ms */
        maxClockOffsetMs: z.number().int().min(1).default(2_000),
      })
      .strict()
      .default({
        metricsIntervalMs: 10_000,
        keepaliveS: 30,
        diskLowBytes: 500 * 1024 * 1024,
        backlogAgeS: 600,
        rosterStaleS: 900,
        maxClockOffsetMs: 2_000,
      }),
    log: z
      .object({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
      })
      .strict()
      .default({ level: 'info' }),
  })
  .strict()

/** The agent's validated, frozen configuration. */
export type AgentConfig = z.infer<typeof agentConfigSchema>
export type DecodersConfig = AgentConfig['decoders']
export type SimConfig = AgentConfig['source']['sim']
export type ReplayConfig = AgentConfig['source']['replay']
export type NobleConfig = AgentConfig['source']['noble']
export type ProximityConfig = AgentConfig['proximity']

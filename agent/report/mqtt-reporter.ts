// One MQTT connection and what rides on it: the session numbers, the will and the retained status,
// metrics, and the answers to commands all share the client, the session and its sequence, so they
// stay together. What stands alone is apart: the events kept in SQLite (fleet-events.ts), the
// checking of commands (command-guard.ts) and of other gates' passages (passages.ts). What is left
// is the connection's own life (connect, close, will, session), a little over 350 lines.
import { randomBytes } from 'node:crypto'
import mqtt from 'mqtt'
import type { Logger } from 'pino'
import {
  type CommandResponse,
  type EventPayload,
  FLEET_SCHEMA_VERSION,
  fleetTopics,
  type GateEventKind,
  type GateMetrics,
  PASSAGES_TOPIC_FILTER,
  type PassagePayload,
  type StatusPayload,
} from '../../shared/fleet.js'
import type { Clock } from '../clock.js'
import { type Db, getMeta, setMeta } from '../store/db.js'
import { CommandGuard } from './command-guard.js'
import { FleetEventQueue } from './fleet-events.js'
import { passageFrom } from './passages.js'

/** What the signed fleet commands do on this gate. */
export interface ReporterCommands {
  resync_roster(): Promise<unknown>
  sync_now(): Promise<unknown>
  restart_scan(): Promise<unknown>
  set_log_level(params: Record<string, unknown>): Promise<unknown>
  /** a check-out by hand from the cloud's console: `{token, actor, note}` */
  checkout(params: Record<string, unknown>): Promise<unknown>
}

/** What the reporter is given: the broker, who this gate is, its database and world, metrics and commands. */
export interface ReporterDeps {
  url: string
  username?: string | undefined
  password?: string | undefined
  gateId: string
  bootId: string
  version: string
  startedAt: string
  db: Db
  clock: Clock
  log: Logger
  /** metrics every this, ms */
  intervalMs: number
  /** MQTT keep-alive, s (announced in the online status; default 30) */
  keepaliveS?: number
  /** HMAC secret of commands; without one every command is refused */
  commandSecret?: string | undefined
  /** a command older (or further in the future) than this is refused, ms */
  commandMaxAgeMs?: number
  metrics: () => GateMetrics
  commands: ReporterCommands
  /** passages of the other gates of the venue, for anti-passback across gates (none: not subscribed) */
  onPassage?: ((passage: PassagePayload) => void) | undefined
}

const SESSION_KEY = 'mqtt_session'
/** MQTT DISCONNECT with no properties (3.1.1, and 5 with reason 0: normal disconnection) */
const DISCONNECT_PACKET = Buffer.from([0xe0, 0x00])

/**
 * The gate's fleet reporter (mqtt.js), with the conventions ops tools trust: a retained status
 * that the broker's last will turns offline and that is published online again at every
 * (re)connection, so a broker restart never leaves a live gate marked offline (Home Assistant
 * availability, Zigbee2MQTT bridge state); Sparkplug-style sessions and sequence numbers; metrics
 * at QoS 0 only while connected (telemetry is never queued); events kept in SQLite while the broker
 * is away and sent at QoS 1 when it is back; signed commands, answered on a response topic.
 */
export class MqttReporter {
  private client: mqtt.MqttClient | null = null
  private session = 0
  private readonly clientId: string
  private seq = 0
  private timer: NodeJS.Timeout | null = null
  private readonly topics
  private readonly events: FleetEventQueue
  private readonly guard: CommandGuard
  private stopping = false
  /** this connection's subscriptions (commands, passages) are in place */
  subscribed = false
  readonly stats = { published: 0, eventsQueued: 0, eventsSent: 0, commands: 0, refused: 0, garbage: 0 }

  constructor(private readonly deps: ReporterDeps) {
    this.clientId = `gate-${deps.gateId}-${randomBytes(6).toString('hex')}`
    this.topics = fleetTopics(deps.gateId)
    this.events = new FleetEventQueue(deps.db, deps.clock)
    this.guard = new CommandGuard(deps)
  }

  get state(): string {
    if (!this.client) return 'stopped'
    if (this.client.connected) return `connected (session ${this.session})`
    return this.client.reconnecting ? 'reconnecting' : 'connecting'
  }

  start(): void {
    this.session = this.nextSession()
    const client = mqtt.connect(this.deps.url, {
      // unguessable: the broker drops a connection when another client connects with its client id,
      // so a guessable one would let any account knock this gate offline (its will published).
      // Fixed for the process, so a reconnection still takes over a half-open connection of its own.
      clientId: this.clientId,
      username: this.deps.username,
      password: this.deps.password,
      clean: true,
      keepalive: this.keepaliveS,
      reconnectPeriod: 2_000,
      connectTimeout: 10_000,
      queueQoSZero: false,
      // mqtt-packet otherwise pre-builds a Buffer for each of the 65,536 two-byte numbers on the
      // first packet: megabytes of heap (docs/benchmarks.md) a gate sending a few messages a minute
      // does not need
      writeCache: false,
      will: this.will(),
    })
    this.client = client
    client.on('connect', () => void this.onConnect())
    client.on('close', () => {
      this.subscribed = false
      if (this.stopping) return
      // the next connection is a new session: its will must carry the new number
      this.session = this.nextSession()
      client.options.will = this.will()
    })
    client.on('error', (err) => this.deps.log.warn({ err: err.message }, 'MQTT error'))
    client.on('offline', () => this.deps.log.warn('MQTT broker unreachable; admitting and syncing go on'))
    client.on('message', (topic, payload) => {
      if (topic === this.topics.cmd) void this.onCommand(payload)
      else if (topic.endsWith('/passages') && topic !== this.topics.passages) this.onPassage(topic, payload)
    })
    this.timer = setInterval(() => this.publishMetrics(), this.deps.intervalMs)
    this.timer.unref()
  }

  /** Say offline (a clean stop is not a lost connection) and disconnect. */
  async stop(): Promise<void> {
    this.stopping = true
    if (this.timer) clearInterval(this.timer)
    this.timer = null
    const client = this.client
    if (!client) return
    // bounded: a broker that died a moment ago must not hold up the agent's stop
    const within = (pending: Promise<unknown>, ms: number) =>
      Promise.race([pending.catch(() => {}), new Promise((r) => setTimeout(r, ms).unref())])
    if (client.connected) {
      await within(
        client.publishAsync(this.topics.status, JSON.stringify(this.status('offline', 'stopped')), {
          qos: 1,
          retain: true,
        }),
        2_000,
      )
    }
    const ended = await within(
      client.endAsync().then(() => true),
      1_000,
    )
    if (ended !== true) {
      // mqtt.js disconnects only once every message in flight is acknowledged, and ignores a forced
      // end while that one waits: a broker holding an event's PUBACK kept the connection, and with it
      // the stopping process, alive for ever. Say DISCONNECT (a clean stop: the broker drops the
      // will) and close; an unacknowledged event stays in SQLite and is sent at the next start.
      const stream = client.stream
      stream.end(DISCONNECT_PACKET, () => stream.destroy())
    }
    this.client = null
  }

  /** Record an event: kept in SQLite until the broker has it. */
  event(kind: GateEventKind, detail: Record<string, unknown> = {}): void {
    this.events.add(kind, detail)
    this.stats.eventsQueued++
    void this.flushEvents()
  }

  /** Publish status and metrics again (the rebirth command, and every connection). */
  async rebirth(): Promise<void> {
    const client = this.client
    if (!client?.connected) return
    await client.publishAsync(this.topics.status, JSON.stringify(this.status('online')), {
      qos: 1,
      retain: true,
    })
    this.publishMetrics()
  }

  private async onConnect(): Promise<void> {
    const client = this.client
    if (!client) return
    this.seq = 0
    this.deps.log.info({ session: this.session }, 'MQTT connected')
    try {
      await client.subscribeAsync(this.topics.cmd, { qos: 1 })
      if (this.deps.onPassage) await client.subscribeAsync(PASSAGES_TOPIC_FILTER, { qos: 1 })
      this.subscribed = true
      await this.rebirth()
      await this.flushEvents()
    } catch (err) {
      this.deps.log.warn({ err: (err as Error).message }, 'MQTT start of session failed')
    }
  }

  /**
   * Share one of this gate's passages with the venue's other gates (QoS 1; while the broker is away
   * the client holds it and sends it on reconnection, or it is lost with a restart: the cloud still
   * sees the check-in, and a violation it allowed becomes an incident there).
   */
  sharePassage(passage: PassagePayload): void {
    const client = this.client
    if (!client || this.stopping) return
    client.publish(this.topics.passages, JSON.stringify(passage), { qos: 1 })
    this.stats.published++
  }

  /** Another gate's passage: checked (passages.ts) and handed on; garbage is counted. */
  private onPassage(topic: string, raw: Buffer): void {
    const passage = passageFrom(topic, raw)
    if (passage === null) this.stats.garbage++
    else this.deps.onPassage?.(passage)
  }

  private publishMetrics(): void {
    const client = this.client
    if (!client?.connected) return // telemetry is not queued while the broker is away
    let metrics: GateMetrics
    try {
      metrics = this.deps.metrics()
    } catch (err) {
      this.deps.log.warn({ err }, 'metrics snapshot failed')
      return
    }
    client.publish(this.topics.metrics, JSON.stringify({ ...this.header(), ...this.timing(), metrics }), {
      qos: 0,
    })
    this.stats.published++
  }

  /** Send the kept events while connected; one not sent stays kept for the next connection. */
  private async flushEvents(): Promise<void> {
    const client = this.client
    if (!client?.connected) return
    try {
      await this.events.flush({
        send: async (event) => {
          const payload: EventPayload = { ...this.header(), ...event }
          await client.publishAsync(this.topics.events, JSON.stringify(payload), { qos: 1 })
        },
        sent: () => {
          this.stats.eventsSent++
        },
      })
    } catch (err) {
      this.deps.log.warn({ err: (err as Error).message }, 'events not sent yet; kept for the next connection')
    }
  }

  /** A command from the cloud: checked, executed, and answered on the response topic. */
  private async onCommand(raw: Buffer): Promise<void> {
    const check = this.guard.check(raw)
    if (check.kind === 'garbage') {
      this.stats.garbage++
      this.deps.log.warn('unreadable command ignored')
      return
    }
    if (check.kind === 'refused') {
      const { id, error } = check
      this.stats.refused++
      this.deps.log.warn({ id, error }, 'command refused')
      if (id) void this.respond({ id, ok: false, error })
      return
    }
    const cmd = check.command
    this.stats.commands++
    try {
      const result =
        cmd.cmd === 'rebirth'
          ? await this.rebirth().then(() => ({ rebirth: true }))
          : cmd.cmd === 'set_log_level' || cmd.cmd === 'checkout'
            ? await this.deps.commands[cmd.cmd](cmd.params)
            : await this.deps.commands[cmd.cmd]()
      this.deps.log.info({ id: cmd.id, cmd: cmd.cmd }, 'command executed')
      await this.respond({ id: cmd.id, ok: true, result })
    } catch (err) {
      await this.respond({ id: cmd.id, ok: false, error: (err as Error).message })
    }
  }

  private async respond(response: {
    id: string
    ok: boolean
    result?: unknown
    error?: string
  }): Promise<void> {
    const body: CommandResponse = {
      v: FLEET_SCHEMA_VERSION,
      ts: Math.round(this.deps.clock.now()),
      gateId: this.deps.gateId,
      ...response,
    }
    await this.client?.publishAsync(this.topics.cmdResponse, JSON.stringify(body), { qos: 1 }).catch(() => {})
  }

  private header() {
    return {
      v: FLEET_SCHEMA_VERSION,
      ts: Math.round(this.deps.clock.now()),
      gateId: this.deps.gateId,
      bootId: this.deps.bootId,
      session: this.session,
      seq: this.seq++,
    } as const
  }

  private status(state: 'online' | 'offline', reason?: 'will' | 'stopped'): StatusPayload {
    return {
      ...this.header(),
      state,
      version: this.deps.version,
      startedAt: this.deps.startedAt,
      ...(reason ? { reason } : {}),
      // the birth says how often this gate is heard from, so the cloud can hold it to 1.5 keep-alives
      ...(state === 'online' ? this.timing() : {}),
    }
  }

  /** how often this gate is heard from: in its birth and in every metrics message */
  private timing() {
    return { keepaliveS: this.keepaliveS, metricsIntervalS: this.deps.intervalMs / 1000 }
  }

  private get keepaliveS(): number {
    return this.deps.keepaliveS ?? 30
  }

  private will(): mqtt.IClientOptions['will'] {
    const payload: StatusPayload = {
      v: FLEET_SCHEMA_VERSION,
      ts: Math.round(this.deps.clock.now()),
      gateId: this.deps.gateId,
      bootId: this.deps.bootId,
      session: this.session,
      seq: 0,
      state: 'offline',
      version: this.deps.version,
      startedAt: this.deps.startedAt,
      reason: 'will',
    }
    return { topic: this.topics.status, payload: Buffer.from(JSON.stringify(payload)), qos: 1, retain: true }
  }

  /**
   * The next session number: one more than the last, and at least the wall clock in seconds, so
   * that a gate whose database was recreated (a new SD card) still counts up from where the cloud
   * last saw it, instead of starting at 1 below a session the cloud takes as newer.
   */
  private nextSession(): number {
    const session = Math.max(
      Number(getMeta(this.deps.db, SESSION_KEY) ?? 0) + 1,
      Math.floor(this.deps.clock.now() / 1000),
    )
    setMeta(this.deps.db, SESSION_KEY, String(session))
    return session
  }
}

import { timingSafeEqual } from 'node:crypto'
import { chmodSync, mkdirSync } from 'node:fs'
import net from 'node:net'
import type { Logger } from 'pino'
import { GateError } from '../shared/errors.js'
import { PASSAGES_TOPIC_FILTER } from '../shared/fleet.js'
import { FLEET_MAX_PAYLOAD_BYTES, MQTT_MAX_PACKET_BYTES, packetSizeWatch } from '../shared/mqtt-limits.js'
import { ThrottledLog } from '../shared/throttled-log.js'
import { pgSocket } from './pg-socket.js'

/** A TCP port free on the loopback now (the OS picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.on('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const a = s.address()
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0))
    })
  })
}

/** Whether nothing listens on this loopback port now. */
export function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer()
    s.once('error', () => resolve(false))
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)))
  })
}

/** `preferred` when nothing listens on it, else a free one. */
export async function portOr(preferred: number): Promise<number> {
  return (await portFree(preferred)) ? preferred : freePort()
}

/** The development packages the demo (`npm start`) embeds; a production install (`--omit=dev`) has none. */
async function devImport<T>(name: string): Promise<T> {
  try {
    return (await import(name)) as T
  } catch (err) {
    throw new GateError(
      'E_CONFIG_INVALID',
      `${name} is not installed: the embedded servers of the demo (\`npm start\`) come with the development install (npm ci); set DATABASE_URL and MQTT_URL to use real servers (${(err as Error).message})`,
    )
  }
}

export interface EmbeddedPostgres {
  url: string
  stop(): Promise<void>
}

/**
 * Postgres embedded in this process: PGlite (Postgres compiled to WebAssembly) with its data in
 * `dir`, served by pglite-socket so that the cloud reaches it with `pg` exactly as it reaches a
 * real server. PGlite is one backend: the socket server multiplexes connections
 * query by query (a transaction keeps it to its connection), so session state (LISTEN, session
 * advisory locks) is shared; enough for one node on one machine, not for production.
 * pglite-socket asks no password (every client is the superuser), so it listens on a Unix socket
 * in `socketDir`, which only this user can enter (pg-socket.ts), never on a TCP port.
 */
export async function startEmbeddedPostgres(
  dir: string,
  socketDir: string,
  log: Logger,
): Promise<EmbeddedPostgres> {
  const { PGlite } = await devImport<typeof import('@electric-sql/pglite')>('@electric-sql/pglite')
  const { PGLiteSocketServer } = await devImport<typeof import('@electric-sql/pglite-socket')>(
    '@electric-sql/pglite-socket',
  )
  // the contrib extensions the cloud's schema uses (participant search: migration 1765300000000)
  const { pg_trgm } = await devImport<typeof import('@electric-sql/pglite/contrib/pg_trgm')>(
    '@electric-sql/pglite/contrib/pg_trgm',
  )
  const { unaccent } = await devImport<typeof import('@electric-sql/pglite/contrib/unaccent')>(
    '@electric-sql/pglite/contrib/unaccent',
  )
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  const t0 = Date.now()
  const db = await PGlite.create(dir, { extensions: { pg_trgm, unaccent } })
  const socket = await pgSocket(socketDir)
  const server = new PGLiteSocketServer({ db, path: socket.path, maxConnections: 32 })
  await server.start()
  chmodSync(socket.path, 0o600)
  log.info({ dir, socket: socket.path, ms: Date.now() - t0 }, 'embedded Postgres (PGlite) up')
  return {
    url: socket.url,
    stop: async () => {
      await server.stop()
      await db.close()
      socket.cleanup()
    },
  }
}

export interface BrokerAccounts {
  /** the cloud's account: reads every gate, writes commands */
  cloud: { username: string; password: string }
  /** one account per gate (username = gate id) */
  gates: Record<string, string>
}

export interface EmbeddedBroker {
  url: string
  stop(): Promise<void>
}

const same = (a: string, b: string) => {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}

/**
 * An MQTT broker embedded in this process (aedes, MQTT 3.1.1) with the ACL the compose file's
 * Mosquitto has: every client authenticates; a gate publishes only its own status, metrics, events
 * and command answers and subscribes only to its own commands; the cloud account reads and
 * commands every gate. aedes has no shared subscriptions: the cloud runs one node on it.
 */
export async function startEmbeddedBroker(
  port: number,
  accounts: BrokerAccounts,
  log: Logger,
): Promise<EmbeddedBroker> {
  const { Aedes } = await devImport<typeof import('aedes')>('aedes')
  const users = new WeakMap<object, string>()
  const tooLarge = new ThrottledLog(log)
  const gateOf = (client: object | null): string | null => {
    const u = client ? users.get(client) : undefined
    return u && u !== accounts.cloud.username ? u : null
  }
  const broker = await Aedes.createBroker({
    authenticate: (client, username, password, done) => {
      const pw = password?.toString('utf8') ?? ''
      const ok =
        username !== undefined &&
        (username === accounts.cloud.username
          ? same(pw, accounts.cloud.password)
          : Object.hasOwn(accounts.gates, username) &&
            same(pw, accounts.gates[username] as string) &&
            // a gate connects as gate-<its id>-<random>: never with another gate's client id
            client.id.startsWith(`gate-${username}-`))
      if (!ok) {
        log.warn({ clientId: client.id, username }, 'MQTT login refused')
        const err = Object.assign(new Error('bad user name or password'), { returnCode: 4 as const })
        done(err, false)
        return
      }
      users.set(client, username as string)
      done(null, true)
    },
    authorizePublish: (client, packet, done) => {
      // as Mosquitto's message_size_limit (aedes has no such option): nobody's payload is forwarded past it
      if (packet.payload.length > FLEET_MAX_PAYLOAD_BYTES) {
        tooLarge.warn(
          'payload',
          client?.id ?? '',
          { clientId: client?.id, topic: packet.topic, bytes: packet.payload.length },
          'MQTT payload too large: refused, client disconnected',
        )
        return done(new Error(`payload over ${FLEET_MAX_PAYLOAD_BYTES} bytes`))
      }
      const gate = gateOf(client)
      if (gate === null) return done(null) // the broker itself or the cloud
      const allowed = ['status', 'metrics', 'events', 'cmd/response', 'passages'].map(
        (t) => `gates/${gate}/${t}`,
      )
      if (allowed.includes(packet.topic)) return done(null)
      log.warn({ gate, topic: packet.topic }, 'MQTT publish refused by the ACL')
      done(new Error(`gate ${gate} may not publish on ${packet.topic}`))
    },
    authorizeSubscribe: (client, sub, done) => {
      const gate = gateOf(client)
      // its commands, and the venue's passages (anti-passback across gates)
      if (gate === null || sub.topic === `gates/${gate}/cmd` || sub.topic === PASSAGES_TOPIC_FILTER)
        return done(null, sub)
      log.warn({ gate, topic: sub.topic }, 'MQTT subscription refused by the ACL')
      done(null, null)
    },
  })
  const server = net.createServer((socket) => {
    broker.handle(socket)
    // as Mosquitto's max_packet_size: a packet announcing more is cut off at its header, not buffered
    // (aedes reads the whole packet before authorizePublish: a 30 MB publish was held in memory)
    socket.on(
      'data',
      packetSizeWatch(MQTT_MAX_PACKET_BYTES, (bytes) => {
        const peer = `${socket.remoteAddress}:${socket.remotePort}`
        tooLarge.warn('packet', peer, { peer, bytes }, 'MQTT packet too large: client disconnected')
        socket.destroy()
      }),
    )
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, '127.0.0.1', () => resolve())
  })
  log.info({ port }, 'embedded MQTT broker (aedes) up')
  return {
    url: `mqtt://127.0.0.1:${port}`,
    stop: async () => {
      await new Promise<void>((r) => broker.close(() => r()))
      await new Promise<void>((r) => server.close(() => r()))
    },
  }
}

import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import type { Logger } from 'pino'
import { demoRosterFor } from '../agent/ble/create-source.js'
import { agentConfigSchema } from '../agent/config/schema.js'
import { migrateUp } from '../cloud/db/migrate.js'
import { addGate, rotateKey } from '../cloud/gates/store.js'
import { importParticipants } from '../cloud/participants/import.js'
import { Child, waitFor } from './child.js'
import {
  type EmbeddedBroker,
  type EmbeddedPostgres,
  portFree,
  portOr,
  startEmbeddedBroker,
  startEmbeddedPostgres,
} from './embedded.js'
import { loadSecrets, type Secrets, saveSecrets, secret } from './secrets.js'
import { DEMO_EVENT, DEMO_ORGANISER, ensureDemoPolicy, withCategories } from './venue.js'

/** What the demo runs: where, on which port, how many gates and participants. */
export interface UpOptions {
  dataDir: string
  /** the cloud's HTTP port */
  port: number
  gates: number
  /** the venue's crowd (the demo roster), shared by the gates */
  participants: number
  /** how long the crowd stays in the hall before it walks out by the exit, s (default 90) */
  staySeconds?: number
  log: Logger
  env?: NodeJS.ProcessEnv
}

const ROOT = path.resolve(fileURLToPath(new URL('.', import.meta.url)), '..')
// from the sources (demo/) or from dist/demo: the bin/ launchers are at the repository root
const BIN = existsSync(path.join(ROOT, 'bin')) ? path.join(ROOT, 'bin') : path.join(ROOT, '..', 'bin')
/** the simulated crowd's seed: the same roster at every start */
const SEED = 2026
/**
 * how long the demo crowd stays in the hall before it walks out by the exit, s: the crowd arrives
 * over two minutes, so with 90 s the hall fills past its capacity (half the crowd) before the
 * first leave
 */
const STAY_S = 90

/**
 * `npm start` (gate-demo): the whole system on one machine. Postgres is PGlite
 * served over its socket (DATABASE_URL: a real one), MQTT is aedes (MQTT_URL: a real broker),
 * Redis only with REDIS_URL (L1 otherwise, which serve says in its log); then `gate-cloud serve`
 * and N `gate-agent run` on the simulated source, doors of one venue sharing one demo roster,
 * syncing to the cloud and reporting over MQTT. Data and secrets stay in the data directory, so a
 * second start carries on. Ctrl-C (or SIGTERM) stops the gates, then the cloud, then the embedded
 * servers. Resolves with the exit code.
 */
export async function up(o: UpOptions): Promise<number> {
  const env = o.env ?? process.env
  const log = o.log
  if (!(await portFree(o.port))) {
    log.error(
      { port: o.port },
      `port ${o.port} is in use: stop what listens there, or choose another (npm start -- --port N)`,
    )
    return 2
  }
  const dataDir = path.resolve(o.dataDir)
  mkdirSync(dataDir, { recursive: true, mode: 0o700 })
  const secretsFile = path.join(dataDir, 'secrets.json')
  const secrets = loadSecrets(secretsFile)
  const gateIds = Array.from({ length: o.gates }, (_, i) => `gate-${i + 1}`)
  for (const id of gateIds) secrets.gates[id] ??= { mqttPassword: secret() }
  saveSecrets(secretsFile, secrets)

  let pgServer: EmbeddedPostgres | null = null
  let broker: EmbeddedBroker | null = null
  const children: Child[] = []
  let stopping: Promise<number> | null = null
  const stopAll = async (code: number): Promise<number> => {
    for (const c of children.slice(1).reverse()) await c.stop()
    await children[0]?.stop()
    await broker?.stop().catch((err) => log.warn({ err: (err as Error).message }, 'broker stop failed'))
    await pgServer?.stop().catch((err) => log.warn({ err: (err as Error).message }, 'Postgres stop failed'))
    return code
  }
  process.once('exit', () => {
    for (const c of children) c.kill()
  })

  try {
    // Postgres
    let databaseUrl = env['DATABASE_URL']
    if (!databaseUrl) {
      // on a Unix socket in the data directory: no other local user reaches it (it asks no password)
      pgServer = await startEmbeddedPostgres(path.join(dataDir, 'pglite'), path.join(dataDir, 'run'), log)
      databaseUrl = pgServer.url
    }
    const pool = new pg.Pool({ connectionString: databaseUrl, max: 2 })
    let venue: { capacity: number; exit: string | null } = { capacity: 0, exit: null }
    try {
      const client = await pool.connect()
      try {
        await migrateUp(client, log) // serve partitions the tables at its start
      } finally {
        client.release()
      }
      // the venue's roster: the crowd every door sees its share of
      const agentDefaults = agentConfigSchema.parse({
        gateId: 'roster',
        source: { kind: 'sim', sim: { participants: o.participants, seed: SEED } },
      })
      const roster = await importParticipants(pool, withCategories(demoRosterFor(agentDefaults)), {
        eventId: DEMO_EVENT,
      })
      log.info(roster, 'demo roster in the cloud')
      // gates and their keys (a key is printed once by `gates add`; here it is kept in secrets.json)
      for (const id of gateIds) {
        const g = secrets.gates[id] as Secrets['gates'][string]
        const exists = (await pool.query('SELECT 1 FROM gates WHERE id = $1', [id])).rowCount === 1
        if (!exists)
          g.key = await addGate(pool, id, { name: `Demo door ${id.slice(5)}`, eventId: DEMO_EVENT })
        else if (!g.key) g.key = await rotateKey(pool, id, 0)
      }
      // gates of a demo made before it had an event join it
      await pool.query('UPDATE gates SET event_id = $1 WHERE id = ANY($2::text[]) AND event_id IS NULL', [
        DEMO_EVENT,
        gateIds,
      ])
      venue = await ensureDemoPolicy(pool, gateIds, o.participants)
      saveSecrets(secretsFile, secrets)
    } finally {
      await pool.end()
    }

    // MQTT
    let mqttUrl = env['MQTT_URL']
    if (!mqttUrl) {
      broker = await startEmbeddedBroker(
        await portOr(Number(env['MQTT_PORT'] ?? 1883)),
        {
          cloud: { username: 'gate-cloud', password: secrets.mqttCloudPassword },
          gates: Object.fromEntries(gateIds.map((id) => [id, secrets.gates[id]?.mqttPassword as string])),
        },
        log,
      )
      mqttUrl = broker.url
    }
    const mqttCreds = (user: string, password: string): Record<string, string> =>
      broker ? { MQTT_USERNAME: user, MQTT_PASSWORD: password } : {}

    // the cloud
    const cloudUrl = `http://127.0.0.1:${o.port}`
    const base: NodeJS.ProcessEnv = { ...env, LOG_LEVEL: env['LOG_LEVEL'] ?? 'warn' }
    const cloud = new Child(
      'cloud',
      [path.join(BIN, 'gate-cloud.js'), 'serve'],
      {
        ...base,
        DATABASE_URL: databaseUrl,
        // PGlite's socket server does not speak COPY FROM STDIN: batches go in with INSERT
        ...(pgServer ? { INGEST_COPY: 'false' } : {}),
        MQTT_URL: mqttUrl,
        ...mqttCreds('gate-cloud', secrets.mqttCloudPassword),
        HOST: '127.0.0.1',
        PORT: String(o.port),
        OPS_TOKEN: secrets.opsToken,
        FLEET_COMMAND_SECRET: secrets.commandSecret,
        NODE_NAME: 'local',
        ...(broker ? { FLEET_SHARED_SUBSCRIPTION: 'false' } : {}),
        ...(pgServer ? { PG_POOL_MAX: '6' } : {}),
      },
      log,
    )
    children.push(cloud)
    cloud.start()
    if (!(await waitFor(`${cloudUrl}/readyz`, 60_000))) {
      log.error({ url: cloudUrl }, 'the cloud did not become ready within 60 s')
      return await stopAll(1)
    }

    // the demo event's organiser: an account to log in to the console with (made once; the ops
    // token still opens everything, as no ops account exists)
    secrets.organiserPassword ??= secret()
    saveSecrets(secretsFile, secrets)
    const made = await fetch(`${cloudUrl}/v1/accounts`, {
      method: 'POST',
      headers: { authorization: `Bearer ${secrets.opsToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        login: DEMO_ORGANISER,
        displayName: 'Demo organiser',
        role: 'organiser',
        password: secrets.organiserPassword,
        events: [DEMO_EVENT],
      }),
    }).catch((err: Error) => ({ status: 0, statusText: err.message }))
    if (made.status !== 201 && made.status !== 409)
      log.warn({ status: made.status }, 'could not make the demo organiser account')

    // the gates: doors of one venue
    for (const [i, id] of gateIds.entries()) {
      const dir = path.join(dataDir, 'gates', id)
      mkdirSync(dir, { recursive: true, mode: 0o700 })
      const configFile = path.join(dataDir, 'gates', `${id}.json`)
      writeFileSync(
        configFile,
        JSON.stringify(
          {
            gateId: id,
            source: {
              kind: 'sim',
              sim: {
                participants: o.participants,
                seed: SEED,
                // the entrances share the crowd out; the exit sees all of it leave, a while later
                ...(id === venue.exit
                  ? { door: { index: 0, of: 1 }, follows: { afterMs: (o.staySeconds ?? STAY_S) * 1000 } }
                  : { door: { index: i, of: venue.exit ? gateIds.length - 1 : gateIds.length } }),
                arrivalSpreadMs: 120_000,
                loop: true,
              },
            },
            cloud: { url: cloudUrl },
            mqtt: { url: mqttUrl },
          },
          null,
          2,
        ),
      )
      const g = secrets.gates[id] as Secrets['gates'][string]
      const agent = new Child(
        id,
        [path.join(BIN, 'gate-agent.js'), 'run', '--config', configFile, '--data-dir', dir],
        {
          ...base,
          GATE_KEY: g.key as string,
          GATE_CMD_SECRET: secrets.commandSecret,
          ...mqttCreds(id, g.mqttPassword),
        },
        log,
      )
      children.push(agent)
      agent.start()
    }

    const dashboard = `${cloudUrl}/dashboard#token=${secrets.opsToken}`
    // paths as the user can type them from where they started the demo
    const here = (p: string) => {
      const rel = path.relative(process.cwd(), p)
      return rel === '' || rel.startsWith('..') ? p : rel
    }
    const firstGate = here(path.join(dataDir, 'gates', gateIds[0] ?? 'gate-1'))
    const opsToken = `$(node -p "require('${path.resolve(secretsFile)}').opsToken")`
    process.stdout.write(
      [
        '',
        'The whole system is up:',
        `  console     ${cloudUrl}/console?event=${DEMO_EVENT}#token=${secrets.opsToken}`,
        `              or log in there as ${DEMO_ORGANISER}, password ${secrets.organiserPassword} (the event's organiser)`,
        `  dashboard   ${dashboard}`,
        `  cloud API   ${cloudUrl}  (ops token in ${here(secretsFile)})`,
        `  Postgres    ${pgServer ? `embedded PGlite, data in ${here(path.join(dataDir, 'pglite'))}, for this user only` : 'DATABASE_URL'}`,
        `  MQTT        ${broker ? `embedded aedes at ${broker.url} (a password per gate)` : 'MQTT_URL'}`,
        `  Redis       ${env['REDIS_URL'] ? 'REDIS_URL' : 'none: the cloud caches in process (L1) only'}`,
        `  gates       ${gateIds.join(', ')} on the simulated source (${o.participants} participants), data in ${here(path.join(dataDir, 'gates'))}`,
        `  access      event ${DEMO_EVENT}: the main hall holds ${venue.capacity}${venue.exit ? `, ${venue.exit} is its exit` : ''}`,
        '',
        'Try, in another terminal here:',
        `  npx gatectl --data-dir ${firstGate} status`,
        `  npx gatectl --data-dir ${firstGate} tail`,
        pgServer
          ? `  DATABASE_URL='${pgServer.url}' npx gate-cloud gates list`
          : '  npx gate-cloud gates list',
        `  curl -s -H "Authorization: Bearer ${opsToken}" ${cloudUrl}/v1/query/events/${DEMO_EVENT}/occupancy`,
        'Ctrl-C stops everything; the next start keeps the data.',
        '',
      ].join('\n'),
    )

    return await new Promise<number>((resolve) => {
      const stop = (signal: string) => {
        if (stopping) return
        log.info({ signal }, 'stopping: gates, then the cloud, then the embedded servers')
        stopping = stopAll(0)
        void stopping.then((code) => {
          log.info(
            { dataDir },
            `stopped: everything is down; the data is in ${dataDir} (the next start keeps it; delete the directory to start afresh)`,
          )
          resolve(code)
        })
      }
      process.once('SIGINT', () => stop('SIGINT'))
      process.once('SIGTERM', () => stop('SIGTERM'))
    })
  } catch (err) {
    log.error({ err: (err as Error).message }, 'gate-demo failed')
    return await stopAll(1)
  }
}

import { pino } from 'pino'
import { newProgram } from '../shared/command-line.js'
import { demoLogStream } from './log-lines.js'
import { up } from './up.js'

/** Exit codes: 0 ok, 1 failure, 2 bad options. */
const EXIT_USAGE = 2

/**
 * gate-demo, what `npm start` runs: the whole system on this machine, for development and a first
 * look. Not part of the product's programs: it starts `gate-cloud serve` and `gate-agent run` as
 * children, on embedded servers (PGlite, aedes) that only a development install has.
 */
const program = newProgram(
  'gate-demo',
  'run the whole system on this machine: the cloud on embedded Postgres (PGlite) and MQTT (aedes) unless DATABASE_URL and MQTT_URL are set, and simulated gates (what `npm start` runs)',
)
  .option('--data-dir <dir>', 'where the embedded database, the gates and the secrets live', 'data')
  .option('--port <port>', "the cloud's HTTP port", process.env['PORT'] ?? '8080')
  .option('--gates <n>', 'simulated gates (doors of one venue)', '3')
  .option('--participants <n>', "the venue's crowd (the demo roster)", '600')
  .option('--stay <s>', 'how long the crowd stays in the hall before it walks out by the exit, seconds', '90')
  .action(
    async (opts: { dataDir: string; port: string; gates: string; participants: string; stay: string }) => {
      const port = Number(opts.port)
      const gates = Number(opts.gates)
      const participants = Number(opts.participants)
      const stay = Number(opts.stay)
      const problems: string[] = []
      if (!Number.isInteger(stay) || stay < 0 || stay > 3600)
        problems.push(`--stay ${opts.stay}: 0 to 3600 s`)
      if (!Number.isInteger(port) || port < 1 || port > 65535)
        problems.push(`--port ${opts.port}: not a port`)
      if (!Number.isInteger(gates) || gates < 1 || gates > 50) problems.push(`--gates ${opts.gates}: 1 to 50`)
      if (!Number.isInteger(participants) || participants < 1 || participants > 100_000)
        problems.push(`--participants ${opts.participants}: 1 to 100000`)
      if (problems.length > 0) {
        console.error(`gate-demo: invalid options:\n  - ${problems.join('\n  - ')}`)
        process.exitCode = EXIT_USAGE
        return
      }
      const options = {
        name: 'gate-demo',
        level: process.env['LOG_LEVEL'] ?? 'info',
        redact: ['opsToken', 'key', 'password', 'databaseUrl'],
      }
      const stream = demoLogStream(process.stdout.isTTY === true)
      const log = stream ? pino(options, stream) : pino(options)
      process.exitCode = await up({
        dataDir: opts.dataDir,
        port,
        gates,
        participants,
        staySeconds: stay,
        log,
      })
    },
  )

await program.parseAsync(process.argv)

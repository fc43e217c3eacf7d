import { Command, Option } from 'commander'
import { errorMessage, GateError } from '../shared/errors.js'
import { watchSupervisor } from '../shared/supervisor.js'
import { productVersion } from '../shared/version.js'
import { GateAgent } from './agent.js'
import { createSource, demoRosterFor } from './ble/create-source.js'
import { systemClock } from './clock.js'
import { writeConfigInUse } from './config/in-use.js'
import { loadAgentConfig } from './config/load.js'
import type { AgentConfig } from './config/schema.js'
import { EXIT, exitCodeFor } from './exit-codes.js'
import { stopWithin } from './lifecycle/stop-guard.js'
import { SystemdNotifier } from './lifecycle/systemd.js'
import { createLogger } from './log.js'

/** How long a stop may take before the process exits anyway, ms (systemd's TimeoutStopSec is longer). */
const STOP_DEADLINE_MS = 8_000
/** How long the process may stay after every part stopped, ms (then it exits and names what kept it). */
const LINGER_MS = 1_000

interface RunFlags {
  config?: string
  source?: string
  dataDir?: string
  gateId?: string
  replay?: string
  participants?: string
  seed?: string
  logLevel?: string
  demo?: boolean
}

/** Flags become config overrides (validated with everything else). */
export function flagsToOverrides(flags: RunFlags): Record<string, unknown> {
  const overrides: Record<string, unknown> = {}
  const source: Record<string, unknown> = {}
  if (flags.gateId) overrides['gateId'] = flags.gateId
  if (flags.dataDir) overrides['dataDir'] = flags.dataDir
  if (flags.source) source['kind'] = flags.source
  if (flags.replay) source['replay'] = { file: flags.replay }
  const sim: Record<string, unknown> = {}
  if (flags.participants !== undefined) sim['participants'] = Number(flags.participants)
  if (flags.seed !== undefined) sim['seed'] = Number(flags.seed)
  if (Object.keys(sim).length > 0) source['sim'] = sim
  if (Object.keys(source).length > 0) overrides['source'] = source
  if (flags.logLevel) overrides['log'] = { level: flags.logLevel }
  return overrides
}

async function run(flags: RunFlags): Promise<number> {
  let config: AgentConfig
  try {
    config = loadAgentConfig({ file: flags.config, env: process.env, overrides: flagsToOverrides(flags) })
  } catch (err) {
    console.error(`gate-agent: ${errorMessage(err)}`)
    return EXIT.usage
  }
  const log = createLogger(config.log.level)
  const notifier = new SystemdNotifier(process.env, log)
  const agent = new GateAgent({
    config,
    clock: systemClock,
    log,
    makeSource: (c) => createSource(c, { clock: systemClock, log }),
    beforeStart: flags.demo
      ? ({ roster }) => {
          if (roster.version() > 0) return
          const imported = roster.importEntries(demoRosterFor(config))
          log.info({ imported: imported.inserted, version: imported.version }, 'demo roster imported')
        }
      : undefined,
  })
  try {
    await agent.start()
  } catch (err) {
    const code = err instanceof GateError ? err.code : undefined
    log.fatal({ err, code }, 'gate agent could not start')
    log.flush()
    console.error(`gate-agent: ${errorMessage(err)}`)
    return exitCodeFor(code)
  }
  try {
    writeConfigInUse(config)
  } catch (err) {
    // gatectl then reads the defaults or GATE_CONFIG: worth a warning, not a stopped gate
    log.warn({ err }, 'could not keep the configuration in use for gatectl')
  }
  notifier.ready(`admitting on ${config.source.kind}`)
  return new Promise<number>((resolve) => {
    let stopping = false
    const stop = (signal: string) => {
      if (stopping) return
      stopping = true
      log.info({ signal }, 'stopping')
      notifier.stopping()
      void stopWithin({
        stop: () => agent.stop(),
        step: () => agent.stopStep,
        log,
        exit: (code) => process.exit(code),
        deadlineMs: STOP_DEADLINE_MS,
        lingerMs: LINGER_MS,
        failureCode: EXIT.failure,
      }).then(() => resolve(EXIT.ok))
    }
    process.once('SIGTERM', () => stop('SIGTERM'))
    process.once('SIGINT', () => stop('SIGINT'))
    watchSupervisor(stop)
  })
}

/** The gate-agent command line. */
export function buildProgram(): Command {
  const program = new Command('gate-agent')
    .description('BLE check-in gate agent: scans badges, admits or denies, keeps every check-in durably')
    .version(productVersion())
    .showHelpAfterError()
    .exitOverride((err) => {
      // a bad command line is a usage error (exit 2, as for a bad configuration); help/version exit 0
      process.exit(err.exitCode === 0 ? 0 : EXIT.usage)
    })
  program
    .command('run')
    .description('run the agent (the daemon systemd starts)')
    .option('-c, --config <file>', 'JSON config file (also GATE_CONFIG)')
    .addOption(
      new Option('-s, --source <kind>', 'BLE source (also GATE_SOURCE)').choices(['noble', 'sim', 'replay']),
    )
    .option('-d, --data-dir <dir>', 'data directory: database and control socket (also GATE_DATA_DIR)')
    .option('-g, --gate-id <id>', 'gate id (also GATE_ID)')
    .option('--replay <file>', 'capture file for --source replay (also GATE_REPLAY_FILE)')
    .option('--participants <n>', 'simulated crowd size for --source sim')
    .option('--seed <n>', 'simulation seed')
    .option('--log-level <level>', 'fatal|error|warn|info|debug|trace (also LOG_LEVEL)')
    .option('--demo', "import the simulated crowd's demo roster when the roster is empty")
    .action(async (flags: RunFlags) => {
      process.exitCode = await run(flags)
    })
  return program
}

await buildProgram().parseAsync(process.argv)

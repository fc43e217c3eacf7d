import type { Command } from 'commander'
import { errorMessage } from '../../shared/errors.js'
import type { CloudConfig } from '../config.js'
import { EXIT } from '../exit-codes.js'
import { serviceLogger } from '../log.js'
import { loadRules } from '../monitor/recovery.js'
import { serve } from '../server.js'
import { loadConfig } from './run.js'

/** `gate-cloud serve`: every bad setting (and a bad rules file) stops the start with exit 2. */
async function serveFromEnvironment(): Promise<number> {
  let c: CloudConfig
  try {
    c = loadConfig()
    loadRules(c.alerts.rulesFile) // a bad rules file stops the start, like any bad setting
  } catch (err) {
    console.error(`gate-cloud: ${errorMessage(err)}`)
    return EXIT.usage
  }
  return serve(c, serviceLogger(c))
}

/** `gate-cloud serve`: the HTTP service (cloud/server.ts). */
export function addServeCommand(program: Command): void {
  program
    .command('serve')
    .description('run the HTTP service (migrates the schema and maintains partitions on a schedule)')
    .action(async () => {
      process.exitCode = await serveFromEnvironment()
    })
}

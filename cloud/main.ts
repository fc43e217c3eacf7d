import { newProgram } from '../shared/command-line.js'
import { addAccountsCommands } from './cli/accounts.js'
import { addDatabaseCommands } from './cli/database.js'
import { addGatesCommands } from './cli/gates.js'
import { addParticipantsCommands } from './cli/participants.js'
import { addPartitionsCommands } from './cli/partitions.js'
import { addPolicyCommands } from './cli/policy.js'
import { addRouterCommand } from './cli/router.js'
import { addServeCommand } from './cli/serve.js'

/**
 * gate-cloud's command line: the service (serve), the router, and the tools on its database. Each
 * group of commands is a module of cloud/cli/; the service itself starts and stops in server.ts.
 */
const program = newProgram(
  'gate-cloud',
  'cloud service for BLE gates: batch sync, roster, query API (settings from the environment: DATABASE_URL, PORT, ...)',
)
addServeCommand(program)
addRouterCommand(program)
addDatabaseCommands(program)
addPartitionsCommands(program)
addGatesCommands(program)
addAccountsCommands(program)
addParticipantsCommands(program)
addPolicyCommands(program)

await program.parseAsync(process.argv)

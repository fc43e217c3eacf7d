import { Command } from 'commander'
import { productVersion } from '../shared/version.js'

/** The gate-cloud command line. Only its help exists yet: the service comes with the cloud issue. */
const program = new Command('gate-cloud')
  .description('cloud service for BLE gates: batch sync, roster, query API, fleet health (not built yet)')
  .version(productVersion())
  .action(() => {
    program.help()
  })

await program.parseAsync(process.argv)

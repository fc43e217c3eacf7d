import type { Command } from 'commander'
import { pino } from 'pino'
import { EXIT } from '../exit-codes.js'
import { buildRouter } from '../routing/router.js'

/** Check the options, then run the router until SIGTERM or SIGINT. */
async function runRouter(opts: {
  backends?: string
  host: string
  port: string
  pollMs: string
}): Promise<number> {
  const list = (opts.backends ?? process.env['ROUTER_BACKENDS'] ?? '')
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean)
  const port = Number(opts.port)
  const pollMs = Number(opts.pollMs)
  const problems: string[] = []
  if (list.length === 0)
    problems.push('no backends: --backends http://node-1:8080,http://node-2:8080 (or ROUTER_BACKENDS)')
  for (const b of list) {
    try {
      if (!/^https?:$/.test(new URL(b).protocol)) problems.push(`backend ${b}: http(s) URLs only`)
    } catch {
      problems.push(`backend ${b}: not a URL`)
    }
  }
  if (!Number.isInteger(port) || port < 0 || port > 65535) problems.push(`--port ${opts.port}: not a port`)
  if (!Number.isInteger(pollMs) || pollMs < 100) problems.push(`--poll-ms ${opts.pollMs}: at least 100`)
  if (problems.length > 0) {
    console.error(`gate-cloud router: invalid options:\n  - ${problems.join('\n  - ')}`)
    return EXIT.usage
  }
  const log = pino({ name: 'gate-cloud-router', level: process.env['LOG_LEVEL'] ?? 'info' })
  const { app } = await buildRouter({ backends: list, log, pollMs })
  await app.listen({ host: opts.host, port })
  return new Promise<number>((resolve) => {
    const stop = () => {
      app.close().then(() => resolve(EXIT.ok))
    }
    process.once('SIGTERM', stop)
    process.once('SIGINT', stop)
  })
}

/** `gate-cloud router`: an HTTP front for several nodes (cloud/routing/). */
export function addRouterCommand(program: Command): void {
  program
    .command('router')
    .description(
      'an HTTP front for several gate-cloud nodes: load-aware routing by request class, outlier ejection',
    )
    .option('--backends <urls>', 'comma-separated node URLs (or ROUTER_BACKENDS)')
    .option('--host <host>', 'listen address', process.env['ROUTER_HOST'] ?? '127.0.0.1')
    .option('--port <port>', 'listen port', process.env['ROUTER_PORT'] ?? '8000')
    .option('--poll-ms <ms>', 'load poll interval of each node', '1000')
    .action(async (opts: { backends?: string; host: string; port: string; pollMs: string }) => {
      process.exitCode = await runRouter(opts)
    })
}

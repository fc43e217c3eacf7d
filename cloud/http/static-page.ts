import { existsSync, readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import type { FastifyInstance } from 'fastify'

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
}

/** Where a directory of the cloud's sources is, from cloud/http or from dist/cloud/http. */
function sourceDir(name: string, marker: string): string | undefined {
  const here = import.meta.dirname
  return [path.join(here, '..', name), path.join(here, '..', '..', '..', 'cloud', name)].find((d) =>
    existsSync(path.join(d, marker)),
  )
}

/**
 * Serve one of the cloud's pages (`cloud/<name>/`: index.html at `/<name>`, its scripts and styles
 * beside it, and the session script every page shares, cloud/pages/session.js) and `extra` files
 * (URL, file), read once at start. No secrets are in them: each page asks who is logged in. Never
 * cached stale, never sniffed, and only its own origin's scripts run.
 */
export function servePage(app: FastifyInstance, name: string, extra: Array<[string, string]> = []): void {
  const dir = sourceDir(name, 'index.html')
  const shared = sourceDir('pages', 'session.js')
  if (!dir || !shared) throw new Error(`${name} page files not found next to ${import.meta.dirname}`)
  const files: Array<[string, string]> = [
    [`/${name}`, path.join(dir, 'index.html')],
    ...readdirSync(dir)
      .filter((f) => f.endsWith('.js') || f.endsWith('.css'))
      .sort()
      .map((f): [string, string] => [`/${name}/${f}`, path.join(dir, f)]),
    [`/${name}/session.js`, path.join(shared, 'session.js')],
    ...extra,
  ]
  for (const [url, file] of files) {
    const type = TYPES[path.extname(file)] ?? 'application/octet-stream'
    const body = readFileSync(file)
    app.get(url, async (_req, reply) =>
      reply
        .type(type)
        .header('Cache-Control', 'no-cache')
        .header('X-Content-Type-Options', 'nosniff')
        .header(
          'Content-Security-Policy',
          "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'",
        )
        .send(body),
    )
  }
}

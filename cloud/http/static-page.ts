import { existsSync, readFileSync } from 'node:fs'
import path from 'node:path'
import type { FastifyInstance } from 'fastify'

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
}

/**
 * Serve one of the cloud's pages (`cloud/<name>/`: index.html at `/<name>`, app.js and app.css
 * beside it) and `extra` files (URL, file), read once at start. No secrets are in them: each page
 * asks for its token. Never cached stale, never sniffed, and only its own origin's scripts run.
 */
export function servePage(app: FastifyInstance, name: string, extra: Array<[string, string]> = []): void {
  // cloud/http -> cloud/<name>; from dist/cloud/http, the sources' cloud/<name>
  const here = import.meta.dirname
  const dir = [path.join(here, '..', name), path.join(here, '..', '..', '..', 'cloud', name)].find((d) =>
    existsSync(path.join(d, 'index.html')),
  )
  if (!dir) throw new Error(`${name} page files not found next to ${here}`)
  const files: Array<[string, string]> = [
    [`/${name}`, path.join(dir, 'index.html')],
    [`/${name}/app.js`, path.join(dir, 'app.js')],
    [`/${name}/app.css`, path.join(dir, 'app.css')],
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

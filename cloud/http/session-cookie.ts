import type { FastifyReply, FastifyRequest } from 'fastify'
import { SESSION_IDLE_MS } from '../accounts/credentials.js'

/** The console's session cookie (HttpOnly: page scripts never see it). */
export const SESSION_COOKIE = 'gate_session'

/** The session secret a request's Cookie header carries, or null. */
export function sessionCookieOf(req: FastifyRequest): string | null {
  const header = req.headers.cookie
  if (!header) return null
  for (const part of header.split(';')) {
    const eq = part.indexOf('=')
    if (eq > 0 && part.slice(0, eq).trim() === SESSION_COOKIE) {
      const v = part.slice(eq + 1).trim()
      return /^[A-Za-z0-9_-]{1,128}$/.test(v) ? v : null
    }
  }
  return null
}

/**
 * Whether the cookie may be sent over plain HTTP: only to a loopback address (a demo on this
 * machine). Anywhere else the console is served over TLS (by the proxy in front) and the cookie
 * is Secure, so it never travels in clear.
 */
function plainHttpAllowed(req: FastifyRequest): boolean {
  const host = (req.headers.host ?? '').replace(/:\d+$/, '')
  return host === 'localhost' || host === '127.0.0.1' || host === '[::1]'
}

function attributes(req: FastifyRequest, maxAgeS: number): string {
  const secure = req.protocol === 'https' || !plainHttpAllowed(req)
  return `Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAgeS}${secure ? '; Secure' : ''}`
}

/** Set the session cookie on a reply. */
export function setSessionCookie(req: FastifyRequest, reply: FastifyReply, secret: string): void {
  reply.header(
    'Set-Cookie',
    `${SESSION_COOKIE}=${secret}; ${attributes(req, Math.floor(SESSION_IDLE_MS / 1000))}`,
  )
}

/** Clear it (log out). */
export function clearSessionCookie(req: FastifyRequest, reply: FastifyReply): void {
  reply.header('Set-Cookie', `${SESSION_COOKIE}=; ${attributes(req, 0)}`)
}

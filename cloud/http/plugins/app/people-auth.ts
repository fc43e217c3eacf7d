import { timingSafeEqual } from 'node:crypto'
import type { FastifyInstance, FastifyRequest, RouteOptions } from 'fastify'
import fp from 'fastify-plugin'
import { GateError } from '../../../../shared/errors.js'
import { principalOf } from '../../../accounts/credentials.js'
import { type Access, allows, type Principal } from '../../../accounts/principal.js'
import { opsAccountExists } from '../../../accounts/store.js'
import { appendAudit } from '../../../audit/trail.js'
import { bearer } from '../../bearer.js'
import { sessionCookieOf } from '../../session-cookie.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** who is calling (set on routes that ask for an access; null elsewhere) */
    principal: Principal | null
  }
  interface FastifyContextConfig {
    /** what the route asks of its caller (none: a public route or a gate's) */
    access?: Access
  }
  interface FastifyInstance {
    /** every route with what it asks of its caller (`access` undefined: public or a gate's) */
    routeTable(): Array<{ method: string; url: string; access: Access | undefined }>
    /** the shared ops token may have stopped working: an account was created or disabled */
    accountsChanged(): void
    /** append to the audit trail as the request's caller */
    audit(
      req: FastifyRequest,
      action: string,
      what?: {
        target?: string | null
        eventId?: string | null
        outcome?: 'done' | 'refused' | 'failed'
        detail?: Record<string, unknown>
      },
    ): Promise<void>
  }
}

/** How long a node trusts its answer to "is there an ops account?" (the ops token's bootstrap), ms. */
const BOOTSTRAP_CHECK_MS = 5_000

/** The event a request is about: its path's `eventId`, else its `?event=` (null: none named). */
function eventOfRequest(req: FastifyRequest): string | null {
  const p = (req.params as { eventId?: unknown } | undefined)?.eventId
  if (typeof p === 'string') return p
  const q = (req.query as { event?: unknown } | undefined)?.event
  return typeof q === 'string' ? q : null
}

/** Give the routes registered in `scope` from here on an access, unless a route sets its own. */
export function requireAccess(scope: FastifyInstance, access: Access): void {
  scope.addHook('onRoute', (r) => {
    r.config = { ...(r.config ?? {}), access: r.config?.access ?? access }
  })
}

/**
 * People's authentication and authorisation, for every route whose config names an `access`:
 * - who: the console's session cookie, or `Authorization: Bearer` with a personal API token, or
 *   the shared ops token, which acts as ops only while no ops account exists (it is how the first
 *   account is made; after that it is refused);
 * - may they: their role grants the access, and an organiser only their own events (the path's
 *   `eventId` or `?event=`); a refusal is 403 and is kept in the audit trail;
 * - a request that changes something with the cookie must come from this origin (the cookie is
 *   SameSite=Strict too): another site cannot act with a signed-in browser.
 * Failures count against the address like gate keys do (auth-failures.ts).
 */
export const peopleAuthPlugin = fp(
  async (app) => {
    const opsToken = Buffer.from(app.config.opsToken ?? '')
    const routes: RouteOptions[] = []
    let bootstrap: { open: boolean; at: number } | null = null
    app.decorateRequest('principal', null)
    app.decorate('routeTable', () =>
      routes.map((r) => ({
        method: String(r.method),
        url: r.url,
        access: (r.config as { access?: Access } | undefined)?.access,
      })),
    )
    app.decorate('accountsChanged', () => {
      bootstrap = null
    })
    app.addHook('onRoute', (r) => {
      routes.push(r)
    })

    const opsTokenOpen = async (): Promise<boolean> => {
      const now = Date.now()
      if (bootstrap === null || now - bootstrap.at > BOOTSTRAP_CHECK_MS)
        bootstrap = { open: !(await opsAccountExists(app.pool)), at: now }
      return bootstrap.open
    }

    const authenticate = async (req: FastifyRequest): Promise<Principal> => {
      const cookie = sessionCookieOf(req)
      const t = bearer(req)
      if (cookie !== null) {
        const p = await principalOf(app.pool, cookie, 'session')
        if (p) return p
        if (t === null) app.refuseAuthentication(req, 'the session has ended: log in again')
      }
      if (t === null) return app.refuseAuthentication(req, 'log in, or send a bearer token')
      if (t.startsWith('gct_')) {
        const p = await principalOf(app.pool, t, 'token')
        if (p) return p
        app.refuseAuthentication(req, 'unknown or revoked personal token')
      }
      const given = Buffer.from(t)
      if (opsToken.length === 0 || given.length !== opsToken.length || !timingSafeEqual(given, opsToken))
        app.refuseAuthentication(req, 'missing or wrong token')
      if (!(await opsTokenOpen()))
        app.refuseAuthentication(
          req,
          'the ops token only makes the first ops account, and one exists: log in, or use a personal token',
        )
      return { actor: 'ops token', accountId: null, role: 'ops', events: 'all', via: 'ops-token' }
    }

    app.decorate('audit', async (req: FastifyRequest, action: string, what = {}) => {
      const p = req.principal
      await appendAudit(app.pool, {
        actor: p?.actor ?? 'anonymous',
        accountId: p?.accountId ?? null,
        role: p?.role ?? 'none',
        action,
        target: what.target ?? null,
        eventId: what.eventId ?? null,
        sourceIp: req.ip,
        outcome: what.outcome ?? 'done',
        detail: what.detail,
      })
    })

    app.addHook('onRequest', async (req) => {
      const access = req.routeOptions.config?.access
      if (access === undefined) return
      const p = await authenticate(req)
      req.principal = p
      if (p.via === 'session' && req.method !== 'GET' && req.method !== 'HEAD') {
        const origin = req.headers.origin
        if (
          origin !== undefined &&
          safeHost(origin) !== safeHost(`${req.protocol}://${req.headers.host ?? ''}`)
        )
          throw new GateError('E_FORBIDDEN', 'a change with the console session must come from the console')
      }
      const eventId = eventOfRequest(req)
      if (!allows(p, access, eventId)) {
        await app.audit(req, 'access.refused', {
          eventId,
          outcome: 'refused',
          detail: { route: `${req.method} ${req.routeOptions.url}`, access },
        })
        throw new GateError(
          'E_FORBIDDEN',
          eventId !== null && (access === 'event-read' || access === 'event-write') && p.role === 'organiser'
            ? `${p.actor} does not run event ${eventId}`
            : `a ${p.role} may not do this (${access})`,
        )
      }
    })
  },
  { name: 'people-auth', dependencies: ['config', 'auth-failures', 'pg'] },
)

/** The host and port of an origin, the scheme's default port left out (null when it is not a URL). */
function safeHost(origin: string): string | null {
  try {
    return new URL(origin).host
  } catch {
    return null
  }
}

import type { FastifyInstance } from 'fastify'
import { z } from 'zod'
import { GateError } from '../../../shared/errors.js'
import { issueCredential, revokeCredential } from '../../accounts/credentials.js'
import { decoyHash, verifyPassword } from '../../accounts/passwords.js'
import { visibleEvents } from '../../accounts/principal.js'
import {
  accountById,
  createAccount,
  disableAccount,
  listAccounts,
  loginRecord,
  NewAccount,
} from '../../accounts/store.js'
import { listAudit } from '../../audit/trail.js'
import { parseInput } from '../input.js'
import { requireAccess } from '../plugins/app/people-auth.js'
import { clearSessionCookie, sessionCookieOf, setSessionCookie } from '../session-cookie.js'

const LoginBody = z
  .object({ login: z.string().min(1).max(64), password: z.string().min(1).max(1024) })
  .strict()
const TokenBody = z.object({ label: z.string().trim().min(1).max(200) }).strict()
const AccountParams = z.object({ id: z.string().uuid() })
const AuditQuery = z.object({
  event: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/)
    .optional(),
  actor: z.string().min(1).max(200).optional(),
  action: z
    .string()
    .regex(/^[a-z][a-z0-9_.-]{0,63}$/)
    .optional(),
  before: z.coerce.number().int().positive().optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
})

/**
 * People and what they did:
 * - POST /v1/session {login, password}: log in (the session cookie); DELETE /v1/session: log out;
 *   GET /v1/session: who is logged in, their role and events;
 * - POST /v1/session/tokens {label}: a personal API token for scripts (shown once);
 * - GET|POST /v1/accounts, POST /v1/accounts/:id/disable: ops manage accounts (the shared ops
 *   token makes the first one);
 * - GET /v1/audit?event=&actor=&action=&before=&limit=: the audit trail, newest first (an
 *   organiser's events only, for an organiser).
 */
export async function accountRoutes(app: FastifyInstance): Promise<void> {
  const { pool } = app

  // logging in: public, and every failure counts against the address (auth-failures.ts)
  app.post('/v1/session', async (req, reply) => {
    const { login, password } = parseInput(LoginBody, req.body)
    const rec = await loginRecord(pool, login)
    // an unknown login costs the same time as a wrong password
    const ok = await verifyPassword(password, rec?.passwordHash ?? (await decoyHash()))
    if (!rec || !ok || rec.disabled) {
      await app.audit(req, 'session.login', {
        target: login.slice(0, 64),
        outcome: 'refused',
        detail: { why: rec?.disabled ? 'account disabled' : 'wrong login or password' },
      })
      app.refuseAuthentication(req, 'wrong login or password')
    }
    const { secret, expiresAt } = await issueCredential(pool, rec.id, 'session', req.ip)
    const account = await accountById(pool, rec.id)
    req.principal = {
      actor: account.login,
      accountId: account.id,
      role: account.role,
      events: account.role === 'organiser' ? account.events : 'all',
      via: 'session',
    }
    await app.audit(req, 'session.login', { target: account.login })
    setSessionCookie(req, reply, secret)
    return { account, expiresAt }
  })

  await app.register(async (signedIn) => {
    requireAccess(signedIn, 'signed-in')
    signedIn.get('/v1/session', async (req) => {
      const p = req.principal
      if (!p) throw new GateError('E_AUTH', 'not signed in')
      return {
        actor: p.actor,
        role: p.role,
        events: p.events,
        via: p.via,
        account: p.accountId ? await accountById(pool, p.accountId) : null,
      }
    })
    signedIn.delete('/v1/session', async (req, reply) => {
      const secret = sessionCookieOf(req)
      if (secret !== null) await revokeCredential(pool, secret)
      await app.audit(req, 'session.logout')
      clearSessionCookie(req, reply)
      return { loggedOut: true }
    })
    signedIn.post('/v1/session/tokens', async (req) => {
      const p = req.principal
      if (!p?.accountId)
        throw new GateError('E_FORBIDDEN', 'the ops token has no account: make one and log in')
      const { label } = parseInput(TokenBody, req.body)
      const { secret } = await issueCredential(pool, p.accountId, 'token', req.ip, label)
      await app.audit(req, 'token.issue', { target: p.actor, detail: { label } })
      return { token: secret, label, note: 'shown once: keep it in a secret store' }
    })
  })

  await app.register(async (ops) => {
    requireAccess(ops, 'ops')
    ops.get('/v1/accounts', async () => ({ accounts: await listAccounts(pool) }))
    ops.post('/v1/accounts', async (req, reply) => {
      const a = parseInput(NewAccount, req.body)
      const account = await createAccount(pool, a, req.principal?.actor ?? 'unknown')
      app.accountsChanged()
      await app.audit(req, 'account.create', {
        target: account.login,
        detail: { role: account.role, events: account.events },
      })
      return reply.status(201).send({ account })
    })
    ops.post('/v1/accounts/:id/disable', async (req) => {
      const { id } = parseInput(AccountParams, req.params)
      const account = await disableAccount(pool, id)
      app.accountsChanged()
      await app.audit(req, 'account.disable', { target: account.login })
      return { account }
    })
  })

  await app.register(async (audit) => {
    requireAccess(audit, 'event-read')
    audit.get('/v1/audit', async (req) => {
      const q = parseInput(AuditQuery, req.query, 'query')
      const p = req.principal
      return listAudit(pool, {
        events: p ? visibleEvents(p) : [],
        eventId: q.event ?? null,
        actor: q.actor ?? null,
        action: q.action ?? null,
        beforeId: q.before ?? null,
        limit: q.limit,
      })
    })
  })
}

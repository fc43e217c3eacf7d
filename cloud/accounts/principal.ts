/** The roles a person's account has (accounts table). */
export const ROLES = ['ops', 'organiser', 'technician'] as const
export type Role = (typeof ROLES)[number]

/**
 * What a route asks of whoever calls it:
 * - `ops`: the cloud's internals and what spans every event (ops only);
 * - `fleet-read` / `fleet-command`: the gates' health, and commands to gates (ops, technicians);
 * - `event-read` / `event-write`: one event's data and actions on it (ops, that event's organisers);
 *   a route that names no event lists only the caller's events;
 * - `signed-in`: anyone with a valid session or token (who am I, log out).
 */
export type Access = 'ops' | 'fleet-read' | 'fleet-command' | 'event-read' | 'event-write' | 'signed-in'

/** Who is calling: a person's account, or the shared ops token while no ops account exists. */
export interface Principal {
  /** how the audit trail names them: the login, or "ops token" */
  actor: string
  accountId: string | null
  role: Role
  /** the events an organiser runs; 'all' for ops and technicians (who see no personal data) */
  events: readonly string[] | 'all'
  via: 'session' | 'token' | 'ops-token'
}

const GRANTS: Record<Role, readonly Access[]> = {
  ops: ['ops', 'fleet-read', 'fleet-command', 'event-read', 'event-write', 'signed-in'],
  technician: ['fleet-read', 'fleet-command', 'signed-in'],
  organiser: ['event-read', 'event-write', 'signed-in'],
}

/**
 * Whether `p` may use a route that asks for `access`, about `eventId` when the route names one
 * (null: the route lists, and lists only the caller's events).
 */
export function allows(p: Principal, access: Access, eventId: string | null): boolean {
  if (!GRANTS[p.role].includes(access)) return false
  if ((access === 'event-read' || access === 'event-write') && eventId !== null) return seesEvent(p, eventId)
  return true
}

/** Whether `p` sees the event's data. */
export function seesEvent(p: Principal, eventId: string): boolean {
  return p.events === 'all' || p.events.includes(eventId)
}

/** The events a listing may show `p`: null for every event, else the list (maybe empty). */
export function visibleEvents(p: Principal): readonly string[] | null {
  return p.events === 'all' ? null : p.events
}

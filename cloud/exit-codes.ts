/**
 * gate-cloud's exit codes: 0 ok, 1 failure, 2 bad input or configuration, 4 database unavailable,
 * 6 not found; 75 (EX_TEMPFAIL) when a recovery action asked for a restart, which the supervisor
 * (systemd, Kubernetes) then does.
 */
export const EXIT = { ok: 0, failure: 1, usage: 2, database: 4, notFound: 6, restart: 75 } as const

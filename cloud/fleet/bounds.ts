// What the fleet monitor believes of a gate's numbers. A gate's session is one more than its last,
// and at least its wall clock in seconds (agent/report/mqtt-reporter.ts), so a real session is
// about this node's clock in seconds, or behind it (a gate that has not reconnected for a while).
// A session far ahead of the clock is a broken or hostile gate: believed, it would win over every
// real session of that gate (a will or status of an "older" session is ignored) until the clock
// caught up, and it would be kept in Redis and in the history.
//
// The bound is anchored on the wall clock, not on the highest session seen of the gate (as
// seqs.ts anchors a seq on the highest seq heard): a bound relative to what was believed can be
// walked up message by message, one bound at a time; the clock cannot.

/**
 * How far ahead of this node's wall clock a session may be, s: a day, which covers a gate whose
 * clock is off by a time zone (up to 14 h) and a gate that reconnected more than once a second for
 * a while; a forged session can hide a live gate for at most this long.
 */
export const MAX_SESSION_AHEAD_S = 86_400

/** The highest session believed at `nowMs` (ms since the epoch). */
export function maxBelievedSession(nowMs: number): number {
  return Math.floor(nowMs / 1000) + MAX_SESSION_AHEAD_S
}

/** Whether a gate's session number can be believed at `nowMs` (ms since the epoch). */
export function believableSession(session: number, nowMs: number): boolean {
  return Number.isSafeInteger(session) && session >= 0 && session <= maxBelievedSession(nowMs)
}

/** Exponential back-off with full jitter (AWS's recommendation): random in [0, min(max, base * 2^n)). */
export function backoffMs(
  failures: number,
  baseMs: number,
  maxMs: number,
  random: () => number = Math.random,
): number {
  const cap = Math.min(maxMs, baseMs * 2 ** Math.min(failures, 30))
  return Math.max(baseMs / 2, Math.floor(random() * cap))
}

/** Postgres is down, out of connections, shutting down, or too slow: the client should retry later. */
export function isDbUnavailable(err: unknown): boolean {
  const e = err as { code?: string; message?: string } | null
  if (!e) return false
  if (['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND'].includes(e.code ?? '')) return true
  // 53300 too_many_connections, 57P01 admin_shutdown, 57P03 cannot_connect_now, 57014 query_canceled (statement_timeout), 08xxx connection
  if (/^(53300|57P01|57P02|57P03|57014|08\w{3}|53\w{3})$/.test(e.code ?? '')) return true
  return /timeout exceeded when trying to connect|Connection terminated|connect ECONNREFUSED|Query read timeout/i.test(
    e.message ?? '',
  )
}

import autocannon from 'autocannon'
import { tokenOf, zipfSequence } from './workload.js'

/** The HTTP rounds: autocannon's results for the trivial route and for the token look-up, round by round. */
export interface HttpRounds {
  triv: autocannon.Result[]
  look: autocannon.Result[]
}

/**
 * The token look-up route (Zipf over `tokens` tokens) against the same server's trivial route
 * (/healthz), 32 connections for `seconds` each, alternating for `rounds` rounds after a warm-up.
 */
export async function httpRounds(
  url: string,
  opsToken: string,
  o: { tokens: number; seconds: number; rounds: number },
): Promise<HttpRounds> {
  const seq = zipfSequence(o.tokens, 200_000, 99)
  let k = 0
  const cannon = (path: string | null) =>
    autocannon({
      url,
      connections: 32,
      duration: o.seconds,
      headers: { authorization: `Bearer ${opsToken}` },
      requests: [
        {
          method: 'GET',
          setupRequest: (req) => ({
            ...req,
            path: path ?? `/v1/query/tokens/${tokenOf(seq[k++ % seq.length] as number)}`,
          }),
        },
      ],
    })
  // warm the server, then alternate the two routes (this machine is noisy): medians of the rounds
  await cannon('/healthz')
  await cannon(null)
  const triv: autocannon.Result[] = []
  const look: autocannon.Result[] = []
  for (let r = 0; r < Math.max(1, o.rounds); r++) {
    triv.push(await cannon('/healthz'))
    look.push(await cannon(null))
  }
  return { triv, look }
}

import type { FastifyRequest } from 'fastify'

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * A long-lived response (the dashboard's Server-Sent Events): open for as long as a tab is, so
     * not a request to time, count as slow or hold as in flight.
     */
    stream?: boolean
  }
}

/** Whether the request is on a route flagged `config: { stream: true }`. */
export function isStream(req: FastifyRequest): boolean {
  return req.routeOptions.config.stream === true
}

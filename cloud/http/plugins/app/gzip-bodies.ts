import { createGunzip } from 'node:zlib'
import fp from 'fastify-plugin'

/**
 * Gzip request bodies (the gates compress their batches): decompressed as they are read, the body
 * limit applying to what comes out; any other encoding is refused with 415.
 */
export const gzipBodiesPlugin = fp(
  async (app) => {
    app.addHook('preParsing', async (req, _reply, payload) => {
      const enc = req.headers['content-encoding']
      if (!enc || enc === 'identity') return payload
      if (enc !== 'gzip')
        throw Object.assign(new Error(`unsupported content-encoding ${enc}`), { statusCode: 415 })
      const gunzip = createGunzip()
      payload.on('error', (e) => gunzip.destroy(e))
      gunzip.on('error', () => {})
      // Fastify compares Content-Length with the bytes received on the wire, which it reads from here
      const out = gunzip as typeof gunzip & { receivedEncodedLength: number }
      out.receivedEncodedLength = 0
      payload.on('data', (chunk: Buffer) => {
        out.receivedEncodedLength += chunk.length
      })
      return payload.pipe(out)
    })
  },
  { name: 'gzip-bodies' },
)

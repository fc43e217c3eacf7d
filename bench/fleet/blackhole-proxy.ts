import net from 'node:net'

/**
 * A TCP proxy for the gates whose network dies: forwards both ways until `cut`, then stops
 * forwarding and keeps both sockets open (no FIN, no RST), as a pulled cable or a dead Wi-Fi does.
 */
export async function blackholeProxy(
  target: URL,
): Promise<{ port: number; cut: () => void; lastIn: Map<string, number> }> {
  const pairs: Array<[net.Socket, net.Socket]> = []
  /** per gate (from its CONNECT packet's client id): when its last bytes went to the broker */
  const lastIn = new Map<string, number>()
  let cut = false
  const server = net.createServer((client) => {
    if (cut) {
      client.destroy()
      return
    }
    const upstream = net.connect(Number(target.port || 1883), target.hostname)
    client.on('error', () => {})
    upstream.on('error', () => {})
    let gateId: string | null = null
    client.on('data', (chunk: Buffer) => {
      if (cut) return
      gateId ??= /bench-([a-z0-9]+-\d{5})/.exec(chunk.toString('latin1'))?.[1] ?? null
      if (gateId) lastIn.set(gateId, Date.now())
    })
    client.pipe(upstream)
    upstream.pipe(client)
    pairs.push([client, upstream])
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const a = server.address()
  return {
    port: typeof a === 'object' && a ? a.port : 0,
    lastIn,
    cut: () => {
      cut = true
      for (const [client, upstream] of pairs) {
        client.unpipe(upstream)
        upstream.unpipe(client)
        upstream.pause()
        client.pause()
        // the gate side may give up on its own; the broker side stays open and silent
        client.on('close', () => {})
      }
    },
  }
}

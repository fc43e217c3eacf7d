import net from 'node:net'

/**
 * A TCP proxy the test controls, between the gates and the cloud: `cut` drops every connection
 * and refuses new ones (a dead uplink), `restore` lets them through again.
 */
export async function controlledProxy(targetPort: number): Promise<{
  port: number
  cut: () => void
  restore: () => void
  close: () => Promise<void>
}> {
  const sockets = new Set<net.Socket>()
  let down = false
  const server = net.createServer((client) => {
    if (down) {
      client.destroy()
      return
    }
    const up = net.connect(targetPort, '127.0.0.1')
    for (const s of [client, up]) {
      sockets.add(s)
      s.on('error', () => {})
      s.on('close', () => {
        sockets.delete(s)
        client.destroy()
        up.destroy()
      })
    }
    client.pipe(up)
    up.pipe(client)
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const a = server.address()
  return {
    port: typeof a === 'object' && a ? a.port : 0,
    cut: () => {
      down = true
      for (const s of sockets) s.destroy()
    },
    restore: () => {
      down = false
    },
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy()
        server.close(() => r())
      }),
  }
}

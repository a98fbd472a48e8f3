/**
 * A TCP gate in front of a server (a redis-server, for one broker of several): every connection
 * through it can be cut at once, and new ones refused until it opens again. An outage of one
 * instance only, at a moment the test picks, while the server and the other instances go on.
 */

import { connect, createServer, type Server, type Socket } from 'node:net'

/** A gate forwarding `127.0.0.1:port` to the target. */
export interface TcpGate {
  /** The port to connect to instead of the target's. */
  readonly port: number
  /** Cuts every connection through the gate and refuses new ones until `open()`. */
  cut(): void
  /** Lets connections through again. */
  open(): void
  /** Cuts everything and stops listening: call in teardown. */
  close(): Promise<void>
}

/** Starts a gate to `127.0.0.1:targetPort`, open, on a free port. */
export function startTcpGate(targetPort: number): Promise<TcpGate> {
  const sockets = new Set<Socket>()
  let closed = false
  const track = (socket: Socket) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
    // A reset from either side is the outage the test made, not a failure of the gate.
    socket.on('error', () => {})
  }
  const server: Server = createServer((client) => {
    track(client)
    if (closed) {
      client.destroy()
      return
    }
    const upstream = connect(targetPort, '127.0.0.1')
    track(upstream)
    client.pipe(upstream)
    upstream.pipe(client)
    client.once('close', () => upstream.destroy())
    upstream.once('close', () => client.destroy())
  })
  const cutAll = () => {
    for (const socket of sockets) socket.destroy()
  }
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      if (address === null || typeof address === 'string') {
        reject(new Error('tcp gate: no port'))
        return
      }
      resolve({
        port: address.port,
        cut() {
          closed = true
          cutAll()
        },
        open() {
          closed = false
        },
        close() {
          closed = true
          cutAll()
          return new Promise<void>((done) => server.close(() => done()))
        },
      })
    })
  })
}

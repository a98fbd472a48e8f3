/**
 * Real servers on free loopback ports for the tests, each closed (with its connections) on
 * teardown so a failing test never leaves a socket open.
 */

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { serve } from '@hono/node-server'

/** A running test server. */
export interface TestServer {
  url: string
  port: number
  server: Server
  close(): Promise<void>
}

const open = new Set<TestServer>()

function track(server: Server): Promise<TestServer> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    const ready = () => {
      const { port } = server.address() as AddressInfo
      const entry: TestServer = {
        url: `http://127.0.0.1:${port}`,
        port,
        server,
        close: () =>
          new Promise<void>((done) => {
            open.delete(entry)
            server.closeAllConnections()
            server.close(() => done())
          }),
      }
      open.add(entry)
      resolve(entry)
    }
    if (server.listening) ready()
    else server.once('listening', ready)
  })
}

/** Starts a `node:http` server with `handler` on 127.0.0.1 and a free port. */
export function nodeServer(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<TestServer> {
  const server = createServer(handler)
  server.listen(0, '127.0.0.1')
  return track(server)
}

/** Starts `@hono/node-server` with a fetch handler on 127.0.0.1 and a free port. */
export function webServer(fetch: (request: Request) => Response | Promise<Response>) {
  const server = serve({ fetch, port: 0, hostname: '127.0.0.1' }) as Server
  return track(server)
}

/** Closes every server still open; call from `afterEach`. */
export async function closeAllServers(): Promise<void> {
  await Promise.all([...open].map((entry) => entry.close()))
}

/** Resolves after `ms` milliseconds. */
export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

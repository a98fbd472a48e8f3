/**
 * A chat-like server with presence, for the presence tests (in-process and as the instance
 * processes of the cluster test): `GET /rooms/<room>?member=<id>` joins the room for as long as
 * the stream is open and streams the room's events with its presence events;
 * `GET /members/<room>` answers `presence.members(room)` as JSON.
 */

import type { Broadcaster, Presence } from '../../src/index.ts'
import { sendEventStream } from '../../src/node.ts'
import { nodeServer, type TestServer } from '../helpers/servers.ts'

/** Starts the server on a free port. */
export function presenceServer(hub: Broadcaster, presence: Presence): Promise<TestServer> {
  return nodeServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost')
    const [, kind, room] = url.pathname.split('/')
    if (kind === 'rooms' && room) {
      const member = url.searchParams.get('member') ?? 'anonymous'
      const info = url.searchParams.get('name')
      void sendEventStream(req, res, async (ctx) => {
        // Subscribed (and live) first, so the member's own join is among the events it receives.
        const events = hub.subscribe([room, presence.eventsTopic(room)], ctx)
        await events.ready
        await presence.join(room, member, {
          signal: ctx.signal,
          ...(info === null ? {} : { info: { name: info } }),
        })
        return events
      }).catch((error: unknown) => {
        res.statusCode = 500
        res.end(String(error))
      })
      return
    }
    if (kind === 'members' && room) {
      presence.members(room).then(
        (list) => {
          res.setHeader('content-type', 'application/json')
          res.end(JSON.stringify(list))
        },
        (error: unknown) => {
          res.statusCode = 500
          res.end(String(error))
        },
      )
      return
    }
    res.statusCode = 404
    res.end()
  })
}

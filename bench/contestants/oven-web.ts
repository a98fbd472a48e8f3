/** Oven's `EventSourceResponse` on `@hono/node-server` (a bare fetch handler, no router). */

import type { Server } from 'node:http'
import { createAdaptorServer } from '@hono/node-server'
import { EventSourceResponse } from '../../src/index.ts'
import { listening, route, runContestant } from '../lib/contestant.ts'
import { content, OPTIONS, publish, subscriberCount } from '../lib/oven.ts'

runContestant({
  listen: () =>
    listening(
      createAdaptorServer({
        fetch: (request: Request) => {
          const url = request.url
          const r = route(url.slice(url.indexOf('/', url.indexOf('//') + 2)))
          if (r.kind === 'none') return new Response(null, { status: 404 })
          return new EventSourceResponse(content(r), { ...OPTIONS, request })
        },
      }) as Server,
    ),
  publish,
  subscribers: subscriberCount,
})

/** Oven on Fastify: the `ovenSse` plugin (`oven-sse/fastify`), `return reply.sse(content)`. */

import type { Server } from 'node:http'
import Fastify from 'fastify'
import { ovenSse } from '../../src/fastify.ts'
import { listening, route, runContestant } from '../lib/contestant.ts'
import { content, OPTIONS, publish, subscriberCount } from '../lib/oven.ts'

const app = Fastify({ logger: false })
await app.register(ovenSse, OPTIONS)
for (const path of ['/stream', '/idle', '/sub']) {
  app.get(path, (request, reply) => reply.sse(content(route(request.url))))
}

runContestant({
  listen: async () => {
    await app.ready()
    return listening(app.server as Server)
  },
  publish,
  subscribers: subscriberCount,
})

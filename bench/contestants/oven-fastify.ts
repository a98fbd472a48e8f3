/** Oven on Fastify: the route hijacks the reply and streams with `sendEventStream`. */

import type { Server } from 'node:http'
import Fastify from 'fastify'
import { sendEventStream } from '../../src/node.ts'
import { listening, route, runContestant } from '../lib/contestant.ts'
import { content, OPTIONS, publish, subscriberCount } from '../lib/oven.ts'

const app = Fastify({ logger: false })
for (const path of ['/stream', '/idle', '/sub']) {
  app.get(path, (request, reply) => {
    reply.hijack()
    void sendEventStream(request.raw, reply.raw, content(route(request.url)), OPTIONS)
  })
}

runContestant({
  listen: async () => {
    await app.ready()
    return listening(app.server as Server)
  },
  publish,
  subscribers: subscriberCount,
})

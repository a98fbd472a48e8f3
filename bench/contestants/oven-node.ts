/** Oven's `sendEventStream` on `node:http`. */

import { createServer } from 'node:http'
import { sendEventStream } from '../../src/node.ts'
import { listening, route, runContestant } from '../lib/contestant.ts'
import { content, OPTIONS, publish, subscriberCount } from '../lib/oven.ts'

runContestant({
  listen: () =>
    listening(
      createServer((req, res) => {
        const r = route(req.url)
        if (r.kind === 'none') return void res.writeHead(404).end()
        void sendEventStream(req, res, content(r), OPTIONS)
      }),
    ),
  publish,
  subscribers: subscriberCount,
})

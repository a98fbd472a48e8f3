/**
 * The limit: a hand-written `node:http` loop, one `res.write` per event, honouring
 * backpressure (it stops at `write() === false` and resumes on `drain`). It sends the same head
 * and the same bytes as Oven with `sep: '\n'`. Broadcast: one `Buffer` encoded per event,
 * written to the responses of its topic.
 */

import { createServer, type ServerResponse } from 'node:http'
import { listening, route, runContestant, SSE_HEAD, Topics, track } from '../lib/contestant.ts'
import { payloads } from '../lib/payload.ts'

const subscribers = new Topics<ServerResponse>()
const idle = new Set<ServerResponse>()

function stream(res: ServerResponse, n: number, size: number): void {
  const payload = payloads(size)
  let i = 0
  const write = (): void => {
    while (i < n) {
      if (res.destroyed) return
      const ok = res.write('data: ' + payload(i++) + '\n\n')
      if (!ok) {
        res.once('drain', write)
        return
      }
    }
    res.end()
  }
  res.writeHead(200, SSE_HEAD)
  write()
}

runContestant({
  listen: () =>
    listening(
      createServer((req, res) => {
        const r = route(req.url)
        if (r.kind === 'stream') return stream(res, r.n, r.size)
        if (r.kind === 'none') return res.writeHead(404).end()
        res.writeHead(200, SSE_HEAD)
        res.flushHeaders()
        if (r.kind === 'sub') {
          const topic = r.topic
          subscribers.add(topic, res)
          res.once('close', () => subscribers.delete(topic, res))
        } else track(idle, res, res)
      }),
    ),
  publish: (data, topic) => {
    const bytes = Buffer.from('data: ' + data + '\n\n')
    for (const res of subscribers.of(topic)) res.write(bytes)
  },
  subscribers: () => subscribers.size,
})

/**
 * better-sse 0.16 on `node:http`, with its defaults (each event carries `event: message` and a
 * random UUID `id`, keep-alive every 10 s, `retry: 2000` first) except the serializer: data is
 * sent as text, not JSON-quoted, so that the payload bytes are the same as everyone's.
 * `session.push` ignores backpressure, so the stream loop waits for `drain` itself, as a
 * careful application must. Broadcast: a better-sse `Channel` per topic.
 */

import { once } from 'node:events'
import { createServer, type ServerResponse } from 'node:http'
import { type Channel, createChannel, createSession, type Session } from 'better-sse'
import { DEFAULT_TOPIC, listening, route, runContestant, track } from '../lib/contestant.ts'
import { payloads } from '../lib/payload.ts'

const channels = new Map<string, Channel>([[DEFAULT_TOPIC, createChannel()]])
const channel = (topic: string): Channel => {
  let found = channels.get(topic)
  if (!found) channels.set(topic, (found = createChannel()))
  return found
}
const idle = new Set<Session>()
const options = { serializer: (data: unknown) => String(data) }

async function stream(session: Session, res: ServerResponse, n: number, size: number) {
  const payload = payloads(size)
  for (let i = 0; i < n; i++) {
    if (!session.isConnected) return
    session.push(payload(i))
    if (res.writableNeedDrain) await once(res, 'drain')
  }
  res.end()
}

runContestant({
  listen: () =>
    listening(
      createServer(async (req, res) => {
        const r = route(req.url)
        if (r.kind === 'none') return void res.writeHead(404).end()
        const session = await createSession(req, res, options)
        if (r.kind === 'stream') return stream(session, res, r.n, r.size)
        if (r.kind === 'sub') channel(r.topic).register(session)
        else track(idle, session, res)
      }),
    ),
  publish: (data, topic) => {
    channels.get(topic)?.broadcast(data)
  },
  subscribers: () => {
    let count = 0
    for (const c of channels.values()) count += c.sessionCount
    return count
  },
})

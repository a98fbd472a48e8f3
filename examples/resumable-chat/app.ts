/**
 * A chat page whose answer survives a reload mid-answer (see docs/resumable.md).
 *
 * - `POST /chat` (body: the prompt) starts a run that streams the answer's tokens and answers
 *   `{ "id": ... }`. The generation goes on whatever happens to the page.
 * - `GET /chat/<id>` follows the run: from the start, or from `Last-Event-ID` (the header an
 *   `EventSource` sends when it reconnects, or the `lastEventId` query parameter the page sends
 *   after a reload, from what it kept in `sessionStorage`). 404 for an unknown or expired run.
 * - `POST /chat/<id>/stop` stops it.
 * - `GET /` is the page (`page.html`).
 *
 * `createChatApp` takes the token generator, so the test drives it and `server.ts` fakes a model.
 */

import { readFileSync } from 'node:fs'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { Runs, sendEventStream } from '../../src/node.ts'

const PAGE = readFileSync(new URL('./page.html', import.meta.url), 'utf8')

/** Produces an answer's tokens for `prompt`; stops when `signal` aborts. */
export type Generate = (prompt: string, signal: AbortSignal) => AsyncIterable<string>

/** A node:http request handler serving the chat page and its API, and the `Runs` behind it. */
export function createChatApp(generate: Generate, runs: Runs = new Runs()) {
  async function readBody(req: IncomingMessage): Promise<string> {
    let body = ''
    for await (const chunk of req) {
      body += chunk
      if (body.length > 10_000) throw new Error('prompt too long')
    }
    return body
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost')
    const [, root, encoded, action] = url.pathname.split('/')
    if (url.pathname === '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(PAGE)
    } else if (root === 'chat' && encoded === undefined && req.method === 'POST') {
      const prompt = await readBody(req)
      const id = crypto.randomUUID()
      await runs.start(id, async function* (signal) {
        for await (const token of generate(prompt, signal)) yield { event: 'token', data: token }
      })
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ id }))
    } else if (root === 'chat' && encoded !== undefined && action === 'stop') {
      const stopped = await runs.stop(decodeURIComponent(encoded)).catch(() => undefined)
      res.writeHead(stopped === undefined ? 404 : 200).end(JSON.stringify({ stopped }))
    } else if (root === 'chat' && encoded !== undefined && action === undefined) {
      const id = decodeURIComponent(encoded)
      if ((await runs.status(id)) === undefined) {
        res.writeHead(404).end('no such run')
        return
      }
      await sendEventStream(req, res, (ctx) => runs.attach(id, ctx))
    } else {
      res.writeHead(404).end()
    }
  }

  return {
    runs,
    handler(req: IncomingMessage, res: ServerResponse) {
      handle(req, res).catch((error: unknown) => {
        console.error(error)
        if (!res.headersSent) res.writeHead(500)
        res.end()
      })
    },
  }
}

/**
 * The AI SDK chat on resumable runs (app.ts), with a fake model that needs no network or key:
 * `npx tsx examples/ai-sdk/server.ts`. Point `useChat` (with `resume: true`) at
 * `http://127.0.0.1:<port>/api/chat`, or try it with curl:
 *
 *   curl -N http://127.0.0.1:8000/api/chat -H 'content-type: application/json' \
 *     -d '{"id":"chat-1","messages":[{"id":"m1","role":"user","parts":[{"type":"text","text":"Hi"}]}]}'
 *   curl -N http://127.0.0.1:8000/api/chat/chat-1/stream             # the whole answer again
 *   curl -N http://127.0.0.1:8000/api/chat/chat-1/stream -H 'Last-Event-ID: <an id>'  # the rest
 *   curl -X POST http://127.0.0.1:8000/api/chat/chat-1/stop
 *
 * For a real model, pass `openai('gpt-4o')` (from `@ai-sdk/openai`) or any provider's model to
 * `createAiChatApp` instead of the fake one.
 *
 * Environment: PORT (default 8000), WORD_MS (the fake model's delay per word, default 150).
 */

import { serve } from '@hono/node-server'
import { createAiChatApp } from './app.ts'
import { fakeModel } from './fake-model.ts'

const answer =
  'Here is a long answer, one word at a time, so that there is time to cut the connection ' +
  'and see the answer carry on where it was.'
const { app, runs } = createAiChatApp(fakeModel(answer, Number(process.env.WORD_MS ?? 150)))
const server = serve(
  { fetch: app.fetch, port: Number(process.env.PORT ?? 8000), hostname: '127.0.0.1' },
  (info) => console.log(`listening on http://127.0.0.1:${info.port}`),
)
process.once('SIGINT', () => {
  server.close()
  void runs.close()
})

/**
 * The Vercel AI SDK's chat streamed through resumable runs (docs/resumable.md, "Recipe: the
 * Vercel AI SDK"). The routes are the ones `DefaultChatTransport` (what `useChat` uses) calls,
 * so the page needs no change beyond `resume: true`:
 *
 * - `POST /api/chat` (body `{ id, messages }`, as the transport sends it) starts a run whose
 *   producer drives `streamText` with the run's abort signal and publishes the UI message
 *   stream's chunks, one event each. The answer is the run's stream, in the SDK's own format:
 *   `x-vercel-ai-ui-message-stream: v1`, one `data: <chunk JSON>` event per chunk (each with an
 *   Oven id), then `data: [DONE]`. The generation goes on whatever happens to this request.
 * - `GET /api/chat/<chat id>/stream` (the transport's `reconnectToStream`, what `useChat`'s
 *   `resume` calls on load): the chat's latest run from its start — the SDK replays a resumed
 *   answer from the beginning (`resumeStreamIsReplay`) — or, for a reader that keeps event ids
 *   (an `EventSource`, a fetch reader), after its `Last-Event-ID`. 204 when the chat has no run
 *   (the SDK's "nothing to resume").
 * - `POST /api/chat/<chat id>/stop` stops the chat's run from any request: `streamText`'s
 *   abort signal fires, so the model call is cancelled.
 *
 * The SDK's stream reader (`parseJsonEventStream`) parses the data of every event as a UI
 * message chunk, whatever its event name, and fails on anything else: the run's final
 * `oven-end` event is therefore turned into the SDK's own termination on the way out (see
 * {@link inSdkTerms}).
 *
 * `createAiChatApp` takes the model, so the test gives a scripted one and `server.ts` a fake.
 */

import {
  convertToModelMessages,
  generateId,
  type LanguageModel,
  streamText,
  type UIMessage,
  type UIMessageChunk,
  validateUIMessages,
} from 'ai'
import { Hono } from 'hono'
import {
  END_EVENT,
  EventSourceResponse,
  isSseError,
  RESET_EVENT,
  type RunEndReason,
  Runs,
  type ServerSentEvent,
} from '../../src/index.ts'

/** What a client sees when the run failed: the error itself goes to the server's log only. */
export const FAILED_TEXT = 'The answer could not be completed.'

/** What a client sees when its `Last-Event-ID` is no longer in the run's history. */
export const RESET_TEXT = 'This answer cannot be resumed from that point; load it again.'

/**
 * The chat routes on a Hono app, the `Runs` behind them (close it on shutdown), and the run of
 * each chat's latest answer.
 *
 * @param model - any AI SDK language model (`openai('gpt-4o')`, a `MockLanguageModelV3`, ...).
 * @param runs - where the runs live; give it a `RedisBroker` to serve several instances.
 */
export function createAiChatApp(model: LanguageModel, runs: Runs = new Runs()) {
  // Chat id → the run of its latest answer. It stands in for a column of the chat's row in
  // your database (the AI SDK's own resume recipe calls it `activeStreamId`): keep it there
  // to serve several instances. Check that the caller owns the chat before using it.
  const latestRun = new Map<string, string>()

  /** The run's stream, as the SDK reads it. */
  const respond = (request: Request, runId: string) =>
    new EventSourceResponse((ctx) => inSdkTerms(runs.attach(runId, ctx)), {
      request,
      headers: { 'x-vercel-ai-ui-message-stream': 'v1' },
    })

  const app = new Hono()

  app.post('/api/chat', async (c) => {
    const body: { id?: unknown; messages?: unknown } = await c.req.json().catch(() => ({}))
    const chatId = body.id
    if (typeof chatId !== 'string' || chatId === '') {
      return c.text('expected a JSON body with the chat id and its messages', 400)
    }
    let messages: UIMessage[]
    try {
      messages = await validateUIMessages({ messages: body.messages })
    } catch {
      return c.text('invalid messages', 400)
    }
    const runId = crypto.randomUUID()
    await runs.start(runId, (signal) => answer(model, messages, signal))
    latestRun.set(chatId, runId)
    return respond(c.req.raw, runId)
  })

  app.get('/api/chat/:chatId/stream', async (c) => {
    const chatId = c.req.param('chatId')
    const runId = latestRun.get(chatId)
    if (runId === undefined) return c.body(null, 204)
    if ((await runs.status(runId)) === undefined) {
      latestRun.delete(chatId) // expired (the `ttl` of the Runs): nothing left to replay
      return c.body(null, 204)
    }
    return respond(c.req.raw, runId)
  })

  app.post('/api/chat/:chatId/stop', async (c) => {
    const runId = latestRun.get(c.req.param('chatId'))
    if (runId === undefined) return c.json({ error: 'no such chat' }, 404)
    try {
      return c.json({ stopped: await runs.stop(runId) })
    } catch (error) {
      if (isSseError(error) && error.code === 'ERR_SSE_RUN_NOT_FOUND') {
        return c.json({ error: 'no such run' }, 404)
      }
      throw error
    }
  })

  /** The run of a chat's latest answer, if it has one. */
  const runOf = (chatId: string): string | undefined => latestRun.get(chatId)

  return { app, runs, runOf }
}

/**
 * The run's producer: `streamText` with the run's signal (a stop aborts the model call), its UI
 * message stream's chunks as events. `generateMessageId` gives the `start` chunk the message's
 * id, so a replay (a resume) replaces the half-shown message instead of adding a second one.
 */
async function* answer(model: LanguageModel, messages: UIMessage[], signal: AbortSignal) {
  let failure: unknown
  const result = streamText({
    model,
    messages: await convertToModelMessages(messages),
    abortSignal: signal,
    onError: ({ error }) => {
      failure = error
    },
  })
  const messageId = generateId()
  for await (const chunk of result.toUIMessageStream({
    originalMessages: messages,
    generateMessageId: () => messageId,
  })) {
    // The SDK turns a model error into an `error` chunk and carries on. Here the run fails
    // instead: every client, live or resuming later, gets the same end (`FAILED_TEXT`), and
    // the error itself goes to the `onError` of the Runs (the server's log), never to a client.
    if (chunk.type === 'error') throw failure ?? new Error(chunk.errorText)
    yield { data: JSON.stringify(chunk) }
  }
}

/**
 * The attach stream in the SDK's terms. Every event of the run is a UI message chunk and goes
 * out as it is (with its id, for `Last-Event-ID`). The SDK's reader would fail on the data of
 * `oven-end` (`{"reason":...}` is no UI message chunk), so the end becomes the SDK's own
 * termination: nothing more after a finished answer (its `finish` chunk was the last event),
 * an `abort` chunk (reason `stopped`) after a stop, an `error` chunk after a failure; then the
 * `[DONE]` line that `createUIMessageStreamResponse` also sends. An `oven-reset` (the client's
 * `Last-Event-ID` is past the history) ends the stream with an `error` chunk, since the SDK
 * cannot repair a gap in a message.
 */
export async function* inSdkTerms(
  events: AsyncIterable<ServerSentEvent>,
): AsyncGenerator<ServerSentEvent | { data: string; id?: string | undefined }> {
  for await (const event of events) {
    if (event.event !== END_EVENT && event.event !== RESET_EVENT) {
      yield event
      continue
    }
    const chunk = event.event === RESET_EVENT ? resetChunk() : endChunk(event.data)
    if (chunk !== undefined) yield { data: JSON.stringify(chunk), id: event.id }
    yield { data: '[DONE]' }
    return
  }
}

function resetChunk(): UIMessageChunk {
  return { type: 'error', errorText: RESET_TEXT }
}

function endChunk(data: string | undefined): UIMessageChunk | undefined {
  const { reason } = JSON.parse(data ?? '{}') as { reason: RunEndReason }
  switch (reason) {
    case 'done':
      return undefined
    case 'stopped':
      return { type: 'abort', reason: 'stopped' }
    case 'failed':
      return { type: 'error', errorText: FAILED_TEXT }
    default:
      // 'unknown': the run expired between the route's status check and the attach.
      return { type: 'error', errorText: RESET_TEXT }
  }
}

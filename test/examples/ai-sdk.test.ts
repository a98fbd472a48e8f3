/**
 * The AI SDK recipe (examples/ai-sdk) over real sockets with the real `ai` package: a scripted
 * `MockLanguageModelV3` (from `ai/test`) whose every text delta the test releases, `streamText`
 * in a run, and on the client side the SDK's own machinery — `AbstractChat` (what `useChat`
 * wraps) with `DefaultChatTransport`, and `parseJsonEventStream` / `readUIMessageStream` — or a
 * plain event reader that resumes with `Last-Event-ID`.
 *
 * The installed `ai` (6.x) declares Node >= 18 and runs on the Node 20 leg of `.ci/run` as well
 * as on the Node 24 one; `ai` 7 needs Node 22+: on upgrading, wrap this file's tests in
 * `describe.runIf(Number(process.versions.node.split('.')[0]) >= 22)`.
 */

import type { Socket } from 'node:net'
import { getRequestListener } from '@hono/node-server'
import {
  AbstractChat,
  type ChatInit,
  type ChatState,
  type ChatStatus,
  DefaultChatTransport,
  parseJsonEventStream,
  readUIMessageStream,
  type UIMessage,
  uiMessageChunkSchema,
} from 'ai'
import { MockLanguageModelV3 } from 'ai/test'
import type { Hono } from 'hono'
import { afterEach, expect, test } from 'vitest'
import { createAiChatApp, FAILED_TEXT } from '../../examples/ai-sdk/app.ts'
import {
  delta,
  type ModelStreamPart,
  TEXT_END,
  TEXT_START,
} from '../../examples/ai-sdk/fake-model.ts'
import { type Channel, createChannel, parseEventId, Runs } from '../../src/index.ts'
import { iterateEvents, readEvents, type SseEvent } from '../../src/testing.ts'
import { closeAllServers, nodeServer } from '../helpers/servers.ts'
import { follow } from '../helpers/streams.ts'
import { waitFor } from '../helpers/wait.ts'
import { runExample, stopAllExamples } from './run-example.ts'

const opened: Runs[] = []

afterEach(async () => {
  await closeAllServers()
  await Promise.all(opened.splice(0).map((runs) => runs.close()))
  await stopAllExamples()
})

// ---- the model, the server, the client --------------------------------------------------------

/**
 * A model whose answer the test writes: each string sent to `deltas` is one text delta, an
 * Error fails the model's stream (as a dropped provider connection does), `close()` finishes
 * the answer. Its stream errors when `streamText` aborts the call, as a provider's fetch does.
 */
function scriptedModel() {
  const deltas = createChannel<string | Error>(1000)
  const model = new MockLanguageModelV3({
    doStream: async ({ abortSignal }) => {
      const script = deltas[Symbol.asyncIterator]()
      let open = true
      const stream = new ReadableStream<ModelStreamPart>({
        start(controller) {
          for (const part of TEXT_START) controller.enqueue(part)
          abortSignal?.addEventListener(
            'abort',
            () => {
              if (open) controller.error(abortSignal.reason)
              open = false
            },
            { once: true },
          )
        },
        async pull(controller) {
          const next = await script.next()
          if (!open) return
          if (next.done) {
            for (const part of TEXT_END) controller.enqueue(part)
            controller.close()
            open = false
          } else if (next.value instanceof Error) {
            controller.error(next.value)
            open = false
          } else {
            controller.enqueue(delta(next.value))
          }
        },
      })
      return { stream }
    },
  })
  return { model, deltas }
}

/** The words of the scripted answer, and a way to release them to the model. */
function script(deltas: Channel<string | Error>, count: number) {
  const words = Array.from({ length: count }, (_, i) => `w${i} `)
  let sent = 0
  return {
    words,
    text: words.join(''),
    /** Releases words until `total` have been released (or all of them). */
    async releaseUpTo(total: number) {
      while (sent < Math.min(total, words.length)) await deltas.send(words[sent++] as string)
    },
    async finish() {
      await this.releaseUpTo(words.length)
      deltas.close()
    },
  }
}

/**
 * Serves the app on a real socket; `streams` holds the socket of every chat request, so a test
 * can cut a connection the way a network does (the client's read fails mid-stream).
 */
async function serve(app: Hono) {
  const listener = getRequestListener(app.fetch)
  const streams: Socket[] = []
  const server = await nodeServer((req, res) => {
    if (req.url?.startsWith('/api/chat') && !req.url.endsWith('/stop')) streams.push(req.socket)
    void listener(req, res)
  })
  return { url: server.url, streams }
}

function makeApp(model: MockLanguageModelV3) {
  const errors: unknown[] = []
  const runs = new Runs({ onError: (error) => errors.push(error) })
  opened.push(runs)
  return { ...createAiChatApp(model, runs), errors }
}

/** The state `useChat` keeps in React, as plain fields. */
class ListState implements ChatState<UIMessage> {
  status: ChatStatus = 'ready'
  error: Error | undefined = undefined
  messages: UIMessage[] = []
  pushMessage = (message: UIMessage) => {
    this.messages = [...this.messages, message]
  }
  popMessage = () => {
    this.messages = this.messages.slice(0, -1)
  }
  replaceMessage = (index: number, message: UIMessage) => {
    this.messages = this.messages.with(index, message)
  }
  snapshot = <T>(thing: T): T => structuredClone(thing)
}

/** The SDK's chat, as `useChat` drives it, without React. */
class Chat extends AbstractChat<UIMessage> {
  constructor(init: Omit<ChatInit<UIMessage>, 'messages'>) {
    super({ ...init, state: new ListState() })
  }
}

/**
 * A `DefaultChatTransport` whose `fetch` also keeps the text of every response body it hands
 * to the SDK, to check what the client received byte for byte.
 */
function recordingTransport(url: string) {
  const reads: Array<Promise<string>> = []
  const transport = new DefaultChatTransport<UIMessage>({
    api: `${url}/api/chat`,
    fetch: async (input, init) => {
      const response = await fetch(input, init)
      if (!response.body) return response
      const [forSdk, forTest] = response.body.tee()
      reads.push(readAll(forTest))
      return new Response(forSdk, response)
    },
  })
  /** The events of the `index`th response, once it has been read to its end. */
  const received = async (index: number) => {
    const text = await (reads[index] as Promise<string>)
    return readEvents(new Response(text, { headers: { 'content-type': 'text/event-stream' } }))
  }
  return { transport, reads, received }
}

/** The text of a body, up to its end or to the moment its connection was cut. */
async function readAll(body: ReadableStream<Uint8Array>): Promise<string> {
  const reader = body.getReader()
  const decoder = new TextDecoder()
  let text = ''
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      text += decoder.decode(value, { stream: true })
    }
  } catch {
    // Cut: what arrived is kept.
  }
  return text
}

const userMessage = (text: string): UIMessage => ({
  id: `user-${text}`,
  role: 'user',
  parts: [{ type: 'text', text }],
})

const postChat = (url: string, chatId: string) =>
  fetch(`${url}/api/chat`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ id: chatId, messages: [userMessage('Hello')] }),
  })

/** The text an assistant message shows. */
const shown = (chat: Chat) =>
  chat.messages
    .filter((message) => message.role === 'assistant')
    .flatMap((message) => message.parts)
    .map((part) => (part.type === 'text' ? part.text : ''))
    .join('')

/** The UI message chunks carried by some events (`[DONE]` is no chunk). */
const chunks = (events: SseEvent[]) =>
  events.filter((event) => event.data !== '[DONE]').map((event) => JSON.parse(event.data))

const deltasIn = (events: SseEvent[]) =>
  chunks(events).filter((chunk) => chunk.type === 'text-delta').length

// ---- the tests -----------------------------------------------------------------------------------

test('a client killed at several points mid-answer resumes with Last-Event-ID: the text arrives exactly once, in order, and the SDK reads it whole', async () => {
  const { model, deltas } = scriptedModel()
  const { app, runs, runOf } = makeApp(model)
  const { url } = await serve(app)
  const answer = script(deltas, 30)
  const connections: SseEvent[][] = []
  const received = () => connections.flat()
  const lastId = () => received().findLast((event) => event.id !== undefined)?.id

  // The first connection is the POST's own answer: killed after 3 words, 5 being produced.
  await answer.releaseUpTo(5)
  const response = await postChat(url, 'chat-1')
  expect(response.headers.get('x-vercel-ai-ui-message-stream')).toBe('v1')
  const first: SseEvent[] = []
  connections.push(first)
  for await (const event of iterateEvents(response, { timeout: 20_000 })) {
    first.push(event)
    if (deltasIn(first) === 3) break // the client dies: the connection is closed
  }
  // Killed again after 11 and after 20 words; the model goes on while no one is connected.
  for (const killAt of [11, 20]) {
    await answer.releaseUpTo(killAt + 3)
    const again = follow(`${url}/api/chat/chat-1/stream`, { lastEventId: lastId() as string })
    connections.push(again.events)
    await again.until(`${killAt} words received`, () => deltasIn(received()) >= killAt)
    await again.stop()
    expect(await runs.status(runOf('chat-1') as string)).toBe('running')
  }
  await answer.finish()
  const last = follow(`${url}/api/chat/chat-1/stream`, { lastEventId: lastId() as string })
  connections.push(last.events)
  await last.ended()

  // Every connection took up exactly where the previous one stopped: no event twice, none lost.
  const ids = received().flatMap((event) => (event.id === undefined ? [] : [event.id]))
  const positions = ids.map((id) => parseEventId(id))
  for (let i = 1; i < positions.length; i++) {
    expect(positions[i]?.epoch).toBe(positions[0]?.epoch)
    expect(positions[i]?.seq).toBe((positions[i - 1]?.seq as number) + 1)
  }
  expect(connections.map((events) => events.length > 0)).toEqual([true, true, true, true])
  const text = chunks(received())
    .filter((chunk) => chunk.type === 'text-delta')
    .map((chunk) => chunk.delta)
    .join('')
  expect(text).toBe(answer.text)
  expect(received().at(-1)?.data).toBe('[DONE]')

  // The SDK's own reader, fed what the four connections received, in order, sees one message.
  const wire = received()
    .map((event) => `data: ${event.data}\n\n`)
    .join('')
  const bytes = new Response(wire).body as ReadableStream<Uint8Array>
  const parsed = parseJsonEventStream({ stream: bytes, schema: uiMessageChunkSchema }).pipeThrough(
    new TransformStream({
      transform(result, controller) {
        if (!result.success) throw result.error
        controller.enqueue(result.value)
      },
    }),
  )
  let message: UIMessage | undefined
  for await (const state of readUIMessageStream({ stream: parsed, terminateOnError: true })) {
    message = state
  }
  expect(message?.parts.filter((part) => part.type === 'text')).toEqual([
    { type: 'text', text: answer.text, state: 'done' },
  ])
}, 60_000)

test("the SDK's own chat (useChat's machinery) reads the run; after cut connections resumeStream() replays it, and the message is whole, once", async () => {
  const { model, deltas } = scriptedModel()
  const { app } = makeApp(model)
  const { url, streams } = await serve(app)
  const answer = script(deltas, 24)
  const errors: Error[] = []
  const chat = new Chat({
    id: 'chat-2',
    transport: new DefaultChatTransport({ api: `${url}/api/chat` }),
    onError: (error) => errors.push(error),
  })
  const words = (n: number) => answer.words.slice(0, n).join('')

  await answer.releaseUpTo(6)
  const sending = chat.sendMessage({ text: 'Hello' })
  await waitFor('3 words shown', () => shown(chat), {
    until: (text) => text.length >= words(3).length,
  })
  streams.at(-1)?.destroy() // the network drops the answer's connection
  await sending
  expect(errors.length).toBe(1)

  // useChat's `resume` (a reload) or a retry: GET /api/chat/chat-2/stream replays the run.
  await answer.releaseUpTo(12)
  const resuming = chat.resumeStream()
  await waitFor('10 words shown', () => shown(chat), {
    until: (text) => text.length >= words(10).length,
  })
  streams.at(-1)?.destroy()
  await resuming
  expect(errors.length).toBe(2)

  await answer.finish()
  await chat.resumeStream()
  expect(chat.status).toBe('ready')
  expect(chat.messages.map((message) => message.role)).toEqual(['user', 'assistant'])
  expect(shown(chat)).toBe(answer.text)
  expect(errors.length).toBe(2)
}, 60_000)

test("a stop from another request aborts the model call; clients end with the SDK's abort, reason 'stopped'", async () => {
  const { model, deltas } = scriptedModel()
  const { app, runs, runOf } = makeApp(model)
  const { url } = await serve(app)
  const answer = script(deltas, 20)
  const { transport, received } = recordingTransport(url)
  const chat = new Chat({ id: 'chat-3', transport })

  await answer.releaseUpTo(4)
  const sending = chat.sendMessage({ text: 'Hello' })
  await waitFor('4 words shown', () => shown(chat), {
    until: (text) => text === answer.words.slice(0, 4).join(''),
  })
  const stop = await fetch(`${url}/api/chat/chat-3/stop`, { method: 'POST' })
  expect(await stop.json()).toEqual({ stopped: true })
  await sending

  // The model call itself was cancelled, through streamText's abortSignal.
  expect(model.doStreamCalls).toHaveLength(1)
  await waitFor('the model call to be aborted', () => model.doStreamCalls[0]?.abortSignal?.aborted)
  expect(chat.status).toBe('ready')
  expect(shown(chat)).toBe(answer.words.slice(0, 4).join(''))
  const live = await received(0)
  expect(live.slice(-2).map((event) => event.data)).toEqual([
    JSON.stringify({ type: 'abort', reason: 'stopped' }),
    '[DONE]',
  ])
  // A client attaching afterwards is told the same.
  const later = await readEvents(`${url}/api/chat/chat-3/stream`)
  expect(later.slice(-2).map((event) => event.data)).toEqual(
    live.slice(-2).map((event) => event.data),
  )
  expect(await runs.status(runOf('chat-3') as string)).toBe('stopped')
  // The run holds exactly what was produced before the stop.
  expect(deltasIn(later)).toBe(4)
}, 60_000)

test("a model that fails ends clients with the SDK's error chunk, reason 'failed', and no internal error text", async () => {
  const { model, deltas } = scriptedModel()
  const { app, errors } = makeApp(model)
  const { url } = await serve(app)
  const { transport, reads, received } = recordingTransport(url)
  const chat = new Chat({ id: 'chat-4', transport })

  await deltas.send('one ')
  await deltas.send('two ')
  await deltas.send(new Error('connection to db-7 refused (password hunter2)'))
  await chat.sendMessage({ text: 'Hello' })

  expect(chat.status).toBe('error')
  expect(chat.error?.message).toBe(FAILED_TEXT)
  expect(shown(chat)).toBe('one two ')
  const live = await received(0)
  expect(live.slice(-2).map((event) => event.data)).toEqual([
    JSON.stringify({ type: 'error', errorText: FAILED_TEXT }),
    '[DONE]',
  ])
  const later = await fetch(`${url}/api/chat/chat-4/stream`).then((response) => response.text())
  for (const body of [await (reads[0] as Promise<string>), later]) {
    expect(body).toContain(FAILED_TEXT)
    expect(body).not.toMatch(/hunter2|db-7|An error occurred/)
  }
  // The error itself went to the server's log (the onError of the Runs).
  expect(errors.map(String)).toEqual(['Error: connection to db-7 refused (password hunter2)'])
}, 60_000)

test('a model call that throws at once (a provider refusing the key) ends the same way', async () => {
  const model = new MockLanguageModelV3({
    doStream: async () => {
      throw new Error('401 from provider: key sk-live-1234 revoked')
    },
  })
  const { app, runs, runOf, errors } = makeApp(model)
  const { url } = await serve(app)
  const events = await readEvents(await postChat(url, 'chat-6'))
  expect(chunks(events).map((chunk) => chunk.type)).toEqual(['start', 'error'])
  expect(events.slice(-2).map((event) => event.data)).toEqual([
    JSON.stringify({ type: 'error', errorText: FAILED_TEXT }),
    '[DONE]',
  ])
  expect(JSON.stringify(events)).not.toMatch(/sk-live|401/)
  expect(await runs.status(runOf('chat-6') as string)).toBe('failed')
  expect(errors.map(String)).toEqual(['Error: 401 from provider: key sk-live-1234 revoked'])
}, 30_000)

test('a chat with no run answers 204, the SDK\'s "nothing to resume"; bad requests get 400', async () => {
  const { model } = scriptedModel()
  const { app } = makeApp(model)
  const { url } = await serve(app)
  const none = await fetch(`${url}/api/chat/no-such-chat/stream`)
  expect(none.status).toBe(204)
  const chat = new Chat({
    id: 'no-such-chat',
    transport: new DefaultChatTransport({ api: `${url}/api/chat` }),
  })
  await chat.resumeStream()
  expect(chat.status).toBe('ready')
  expect(chat.messages).toEqual([])

  const noId = await fetch(`${url}/api/chat`, { method: 'POST', body: '{"messages":[]}' })
  expect(noId.status).toBe(400)
  const badMessages = await fetch(`${url}/api/chat`, {
    method: 'POST',
    body: JSON.stringify({ id: 'c', messages: [{ role: 'robot' }] }),
  })
  expect(badMessages.status).toBe(400)
  const stopNone = await fetch(`${url}/api/chat/no-such-chat/stop`, { method: 'POST' })
  expect(stopNone.status).toBe(404)
  expect(model.doStreamCalls).toHaveLength(0)
}, 30_000)

test('examples/ai-sdk/server.ts answers with its fake model, and replays the answer', async () => {
  const example = await runExample('ai-sdk/server.ts', { env: { WORD_MS: '1' } })
  const events = await readEvents(await postChat(example.url, 'chat-5'), { timeout: 20_000 })
  const text = chunks(events)
    .filter((chunk) => chunk.type === 'text-delta')
    .map((chunk) => chunk.delta)
    .join('')
  expect(text).toMatch(/^Here is a long answer, .* where it was\.$/)
  const replay = await readEvents(`${example.url}/api/chat/chat-5/stream`, { timeout: 20_000 })
  expect(replay).toEqual(events)
}, 90_000)

/**
 * The MCP recipe (examples/mcp-stream) against the official MCP client: `Client` with
 * `StreamableHTTPClientTransport` from `@modelcontextprotocol/sdk`, over real sockets. It
 * initializes, lists the tools, calls a tool whose steps the test releases, and has its
 * connection cut mid-call (the server destroys the socket, as a network drop would): the
 * client resumes on its own with `GET` and `Last-Event-ID`, and receives every progress
 * notification once, in order, and the result.
 */

import type { IncomingHttpHeaders, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { McpError } from '@modelcontextprotocol/sdk/types.js'
import { afterEach, expect, test } from 'vitest'
import {
  createMcpApp,
  FAILED_MESSAGE,
  type Tool,
  type ToolResult,
} from '../../examples/mcp-stream/app.ts'
import { type Channel, createChannel, Runs } from '../../src/node.ts'
import { readEvents } from '../../src/testing.ts'
import { closeAllServers, nodeServer } from '../helpers/servers.ts'
import { waitFor } from '../helpers/wait.ts'
import { runExample, stopAllExamples } from './run-example.ts'

const clients: Client[] = []
const opened: Runs[] = []

afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.close()))
  await closeAllServers()
  await Promise.all(opened.splice(0).map((runs) => runs.close()))
  await stopAllExamples()
})

/** A request as the server saw it, its response, and its socket (to cut it). */
interface Seen {
  method: string
  headers: IncomingHttpHeaders
  res: ServerResponse
  socket: Socket
}

/** Whether the server is answering this request with a stream: begun, not ended. */
const streaming = (entry: Seen) => entry.res.headersSent && !entry.res.writableEnded

/**
 * A tool whose progress steps the test releases through `steps`; closing the channel
 * finishes it. `aborted` tells whether its signal fired.
 */
function scriptedTool(fail?: Error) {
  const steps = createChannel<number>(100)
  const state = { aborted: false, calls: 0 }
  const tool: Tool = {
    description: 'Counts what the test releases.',
    inputSchema: { type: 'object', properties: { to: { type: 'integer' } } },
    async *run(args, signal): AsyncGenerator<{ progress: number; total: number }, ToolResult> {
      state.calls++
      signal.addEventListener('abort', () => {
        state.aborted = true
      })
      for await (const step of steps) yield { progress: step, total: Number(args.to) }
      if (fail) throw fail
      return { content: [{ type: 'text', text: `counted to ${args.to}` }] }
    },
  }
  return { tool, steps, state }
}

async function release(steps: Channel<number>, from: number, to: number) {
  for (let step = from; step <= to; step++) await steps.send(step)
}

/** The app on a real socket; `seen` lists every request with its socket. */
async function serve(tools: Record<string, Tool>) {
  const errors: unknown[] = []
  const runs = new Runs({ onError: (error) => errors.push(error) })
  opened.push(runs)
  const app = createMcpApp({ tools, runs, retry: 20 })
  const seen: Seen[] = []
  const server = await nodeServer((req, res) => {
    seen.push({ method: req.method ?? '', headers: req.headers, res, socket: req.socket })
    app.handler(req, res)
  })
  return { url: `${server.url}/mcp`, seen, runs, errors }
}

/** The official client, connected (initialize, initialized, and its GET that gets 405). */
async function connect(url: string) {
  const errors: Error[] = []
  const transport = new StreamableHTTPClientTransport(new URL(url))
  const client = new Client({ name: 'oven-test', version: '1.0.0' })
  client.onerror = (error) => errors.push(error)
  clients.push(client)
  await client.connect(transport)
  return { client, transport, errors }
}

test('initialize, list the tools, call one that reports progress: the answer is a stream', async () => {
  const { tool, steps } = scriptedTool()
  const hello: Tool = {
    description: 'Says hello.',
    inputSchema: { type: 'object' },
    async *run() {
      yield { progress: 1, total: 1, message: 'saying hello' }
      return { content: [{ type: 'text', text: 'hello' }] }
    },
  }
  const { url, seen } = await serve({ count: tool, hello })
  const { client, transport } = await connect(url)

  expect(transport.sessionId).toMatch(/^[0-9a-f-]{36}$/)
  expect(client.getServerVersion()).toEqual({ name: 'oven-mcp-stream', version: '1.0.0' })
  const { tools } = await client.listTools()
  expect(tools).toEqual([
    {
      name: 'count',
      description: 'Counts what the test releases.',
      inputSchema: { type: 'object', properties: { to: { type: 'integer' } } },
    },
    { name: 'hello', description: 'Says hello.', inputSchema: { type: 'object' } },
  ])

  const progress: number[] = []
  const calling = client.callTool({ name: 'count', arguments: { to: 3 } }, undefined, {
    onprogress: ({ progress: step }) => progress.push(step),
  })
  await release(steps, 1, 3)
  steps.close()
  const result = await calling
  expect(result.content).toEqual([{ type: 'text', text: 'counted to 3' }])
  expect(progress).toEqual([1, 2, 3])

  // Every request after initialize carried the session; the call was answered with a stream.
  const after = seen.slice(1)
  expect(after.every((entry) => entry.headers['mcp-session-id'] === transport.sessionId)).toBe(true)
  const response = await fetch(url, {
    method: 'POST',
    headers: {
      accept: 'application/json, text/event-stream',
      'content-type': 'application/json',
      'mcp-session-id': transport.sessionId as string,
    },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 'by-hand',
      method: 'tools/call',
      params: { name: 'hello', arguments: {}, _meta: { progressToken: 't' } },
    }),
  })
  expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/)
  // First the priming event (an id, no data), then the progress and the response; every id
  // names its request.
  const events = await readEvents(response)
  expect(events.map((event) => event.data)).toEqual([
    '',
    JSON.stringify({
      jsonrpc: '2.0',
      method: 'notifications/progress',
      params: { progressToken: 't', progress: 1, total: 1, message: 'saying hello' },
    }),
    JSON.stringify({
      jsonrpc: '2.0',
      id: 'by-hand',
      result: { content: [{ type: 'text', text: 'hello' }] },
    }),
  ])
  for (const event of events) expect(event.id).toMatch(/^[0-9a-z]+-\d+\/"by-hand"$/)
}, 30_000)

test('a call whose connection is cut twice resumes with GET and Last-Event-ID: every progress notification once, in order, and the result', async () => {
  const { tool, steps, state } = scriptedTool()
  const { url, seen } = await serve({ count: tool })
  const { client, errors } = await connect(url)

  const progress: number[] = []
  const calling = client.callTool({ name: 'count', arguments: { to: 12 } }, undefined, {
    onprogress: ({ progress: step }) => progress.push(step),
  })
  const callStream = (await waitFor('the tools/call POST to stream', () =>
    seen.find((entry) => entry.method === 'POST' && streaming(entry)),
  )) as Seen
  const resumes = () => seen.filter((entry) => entry.headers['last-event-id'] !== undefined)

  await release(steps, 1, 3)
  await waitFor('3 progress notifications', () => progress.length, { until: (n) => n >= 3 })
  callStream.socket.destroy() // the network drops the POST's stream mid-call
  await release(steps, 4, 6) // the tool goes on meanwhile
  const first = (await waitFor('the client to resume with GET', () => resumes()[0])) as Seen
  expect(first.method).toBe('GET')

  await waitFor('6 progress notifications', () => progress.length, { until: (n) => n >= 6 })
  await release(steps, 7, 8)
  await waitFor('8 progress notifications', () => progress.length, { until: (n) => n >= 8 })
  first.socket.destroy() // and the resumed stream too
  await release(steps, 9, 12)
  steps.close()
  const result = await calling

  expect(result.content).toEqual([{ type: 'text', text: 'counted to 12' }])
  expect(progress).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12])
  expect(resumes().map((entry) => entry.method)).toEqual(['GET', 'GET'])
  // The second resume started after an event of the first resumed stream.
  const [one, two] = resumes().map((entry) => entry.headers['last-event-id'] as string)
  expect(one).toMatch(/^[0-9a-z]+-\d+\/\d+$/)
  expect(Number(two?.split(/[-/]/)[1])).toBeGreaterThan(Number(one?.split(/[-/]/)[1]))
  expect(state.calls).toBe(1)
  // The client saw its two cut streams, and nothing else went wrong.
  expect(errors.map((error) => error.message)).toEqual([
    expect.stringMatching(/^SSE stream disconnected/),
    expect.stringMatching(/^SSE stream disconnected/),
  ])
}, 30_000)

test('a tool that throws answers with a JSON-RPC error and no internal text; the error goes to the log', async () => {
  const { tool, steps } = scriptedTool(new Error('vault token s3cr3t rejected'))
  const { url, errors: logged } = await serve({ count: tool })
  const { client } = await connect(url)

  const progress: number[] = []
  const calling = client.callTool({ name: 'count', arguments: { to: 2 } }, undefined, {
    onprogress: ({ progress: step }) => progress.push(step),
  })
  await release(steps, 1, 2)
  steps.close()
  const error = await calling.then(
    () => undefined,
    (reason: unknown) => reason,
  )
  expect(error).toBeInstanceOf(McpError)
  expect((error as McpError).code).toBe(-32603)
  expect((error as McpError).message).toBe(`MCP error -32603: ${FAILED_MESSAGE}`)
  expect(progress).toEqual([1, 2])
  expect(logged.map(String)).toEqual(['Error: vault token s3cr3t rejected'])
}, 30_000)

test('a cancelled call stops its run: the tool sees its signal abort, and the stream ends', async () => {
  const { tool, steps, state } = scriptedTool()
  const { url, runs } = await serve({ count: tool })
  const { client, transport, errors } = await connect(url)

  const cancel = new AbortController()
  const progress: number[] = []
  const calling = client.callTool({ name: 'count', arguments: { to: 5 } }, undefined, {
    signal: cancel.signal,
    onprogress: ({ progress: step }) => progress.push(step),
  })
  await release(steps, 1, 2)
  await waitFor('2 progress notifications', () => progress.length, { until: (n) => n >= 2 })
  cancel.abort('changed my mind')
  await expect(calling).rejects.toThrow(/changed my mind/)
  await waitFor('the tool to be aborted', () => state.aborted)
  // The client numbers its requests from 0: initialize was 0, this call is 1.
  const runId = `${transport.sessionId}:1`
  await waitFor('the run to end', () => runs.status(runId), { until: (s) => s === 'stopped' })
  // The stream still ends with a response, so the client does not reconnect to ask again; it
  // has already given up the call, and reports the response as one for an unknown id.
  await waitFor('the end of the stream to reach the client', () => errors.length)
  expect(errors.map((error) => error.message)).toEqual([
    'Received a response for an unknown message ID: ' +
      JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        error: { code: -32000, message: 'Request stopped' },
      }),
  ])
}, 30_000)

test('the transport rules: session header, Accept, GET without Last-Event-ID, unknown tool, DELETE', async () => {
  const { tool } = scriptedTool()
  const { url } = await serve({ count: tool })
  const { client, transport } = await connect(url)
  const session = transport.sessionId as string
  const post = (headers: Record<string, string>, body: unknown) =>
    fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    })
  const both = 'application/json, text/event-stream'
  const ping = { jsonrpc: '2.0', id: 1, method: 'ping' }

  expect((await post({ accept: both, 'mcp-session-id': session }, ping)).status).toBe(200)
  expect((await post({ accept: both }, ping)).status).toBe(400)
  expect((await post({ accept: both, 'mcp-session-id': 'nope' }, ping)).status).toBe(404)
  expect((await post({ accept: 'application/json', 'mcp-session-id': session }, ping)).status).toBe(
    406,
  )
  const parse = await fetch(url, {
    method: 'POST',
    headers: { accept: both, 'mcp-session-id': session },
    body: '{not json',
  })
  expect(parse.status).toBe(400)
  expect((await parse.json()).error.code).toBe(-32700)
  const get = (lastEventId?: string) =>
    fetch(url, {
      headers: {
        accept: 'text/event-stream',
        'mcp-session-id': session,
        ...(lastEventId === undefined ? {} : { 'last-event-id': lastEventId }),
      },
    })
  expect((await get()).status).toBe(405)
  expect((await get('garbage')).status).toBe(404)
  expect((await get('abc-1/99')).status).toBe(404)

  await expect(client.callTool({ name: 'nope', arguments: {} })).rejects.toThrow(/Unknown tool/)
  await expect(client.callTool({ name: 'toString', arguments: {} })).rejects.toThrow(/Unknown tool/)

  await transport.terminateSession()
  expect((await post({ accept: both, 'mcp-session-id': session }, ping)).status).toBe(404)
}, 30_000)

test('examples/mcp-stream/server.ts counts with progress for the official client', async () => {
  const example = await runExample('mcp-stream/server.ts', { env: { STEP_MS: '1' } })
  const { client } = await connect(`${example.url}/mcp`)
  const progress: number[] = []
  const result = await client.callTool({ name: 'count', arguments: { to: 5 } }, undefined, {
    onprogress: ({ progress: step }) => progress.push(step),
  })
  expect(result.content).toEqual([{ type: 'text', text: 'counted to 5' }])
  expect(progress).toEqual([1, 2, 3, 4, 5])
  const invalid = await client.callTool({ name: 'count', arguments: { to: 0 } })
  expect(invalid.isError).toBe(true)
}, 90_000)

/**
 * An MCP server's Streamable HTTP endpoint written by hand on Oven, whose tool calls answer with
 * a resumable stream (docs/resumable.md, "Recipe: an MCP-style POST endpoint"). One URL, `/mcp`:
 *
 * - `POST /mcp` with one JSON-RPC message. `initialize` creates a session (the
 *   `Mcp-Session-Id` response header; every later request must send it back). `ping` and
 *   `tools/list` are answered with JSON. `tools/call` is answered with `text/event-stream`: the
 *   tool's progress notifications (when the request has a `progressToken`), then the JSON-RPC
 *   response, each an event with an id. Notifications are accepted with 202;
 *   `notifications/cancelled` stops the request's run.
 * - `GET /mcp` with `Last-Event-ID`: the rest of the interrupted stream — the events after that
 *   id, then the live ones until the response (the spec's "resumability and redelivery").
 *   Without `Last-Event-ID`: 405 (this server sends nothing outside a request's stream).
 * - `DELETE /mcp` ends the session.
 *
 * Each `tools/call` runs as a `Runs` run, apart from the connection: a client whose connection
 * is cut reconnects with `GET` and its `Last-Event-ID`, and loses nothing. The run's id is
 * `<session id>:<request id as JSON>` (request ids are unique within a session), so a cancel
 * finds its run without any table. The ids on the wire are `<Oven id>/<request id as JSON>`,
 * so a `Last-Event-ID` alone (with the session header) names both the run and the position in
 * it, on any instance sharing the `Runs`' broker.
 *
 * `createMcpApp` takes the tools, so the test gives scripted ones and `server.ts` a slow count.
 */

import type { IncomingMessage, ServerResponse } from 'node:http'
import {
  END_EVENT,
  isSseError,
  RESET_EVENT,
  type RunEndReason,
  Runs,
  type ServerSentEvent,
  sendEventStream,
} from '../../src/node.ts'

/** One progress step of a tool: `progress` grows at each step; `total` if known. */
export interface Progress {
  progress: number
  total?: number
  message?: string
}

/** What a tool call returns (the MCP `CallToolResult`, text content only). */
export interface ToolResult {
  content: Array<{ type: 'text'; text: string }>
  isError?: boolean
}

/** A tool: its description for `tools/list`, and its work. */
export interface Tool {
  description: string
  /** A JSON Schema of the arguments (type `object`). */
  inputSchema: { type: 'object'; properties?: Record<string, object>; required?: string[] }
  /**
   * Does the work: yields its progress, returns its result. Stops when `signal` aborts (the
   * client cancelled, or the server is shutting down).
   */
  run(args: Record<string, unknown>, signal: AbortSignal): AsyncGenerator<Progress, ToolResult>
}

/** Options of {@link createMcpApp}. */
export interface McpAppOptions {
  /** The tools, by name. */
  tools: Record<string, Tool>
  /** Where the runs live (a `RedisBroker` inside to serve several instances). */
  runs?: Runs
  /** The `retry` hint of each stream: how long a cut client waits before resuming (ms). */
  retry?: number
}

/** The protocol versions this endpoint speaks (Streamable HTTP appeared in 2025-03-26). */
export const PROTOCOL_VERSIONS = ['2025-11-25', '2025-06-18', '2025-03-26']

/** What a client sees when a tool failed: the error itself goes to the server's log only. */
export const FAILED_MESSAGE = 'Internal error'

type RequestId = string | number

interface JsonRpcMessage {
  jsonrpc?: unknown
  id?: unknown
  method?: unknown
  params?: unknown
}

// JSON-RPC and MCP error codes.
const PARSE_ERROR = -32700
const INVALID_REQUEST = -32600
const METHOD_NOT_FOUND = -32601
const INVALID_PARAMS = -32602
const INTERNAL_ERROR = -32603
/** The MCP SDK's `ConnectionClosed`, which it also uses for a cancelled request. */
const STOPPED = -32000

const MAX_BODY = 1_000_000

/** A node:http handler for the MCP endpoint, and the `Runs` behind it (close it on shutdown). */
export function createMcpApp({ tools, runs = new Runs(), retry = 1000 }: McpAppOptions) {
  // Session id → the protocol version agreed at `initialize`. An example's store: keep sessions
  // where every instance sees them (Redis, your database), with an expiry.
  const sessions = new Map<string, string>()

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost')
    if (url.pathname !== '/mcp') return reply(res, 404, 'not found')
    if (req.method === 'POST') return post(req, res)
    if (req.method === 'GET') return resume(req, res)
    if (req.method === 'DELETE') {
      const session = sessionOf(req, res)
      if (session === undefined) return
      sessions.delete(session)
      return reply(res, 200, 'session ended')
    }
    res.setHeader('allow', 'GET, POST, DELETE')
    return reply(res, 405, 'method not allowed')
  }

  async function post(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const accept = req.headers.accept ?? ''
    if (!accept.includes('application/json') || !accept.includes('text/event-stream')) {
      return reply(res, 406, 'Accept must list application/json and text/event-stream')
    }
    let message: JsonRpcMessage
    try {
      message = JSON.parse(await readBody(req))
    } catch {
      return json(res, 400, failure(null, PARSE_ERROR, 'Parse error'))
    }
    if (typeof message !== 'object' || message === null || Array.isArray(message)) {
      return json(res, 400, failure(null, INVALID_REQUEST, 'Expected one JSON-RPC message'))
    }
    if (message.method === 'initialize') return initialize(res, message)
    const session = sessionOf(req, res)
    if (session === undefined) return
    if (typeof message.method !== 'string') {
      // A response to a request of ours: this server sends none.
      return reply(res, 202)
    }
    if (!isRequestId(message.id)) {
      if (message.method === 'notifications/cancelled') await cancel(session, message.params)
      return reply(res, 202)
    }
    const id = message.id
    const params = isObject(message.params) ? message.params : {}
    switch (message.method) {
      case 'ping':
        return json(res, 200, success(id, {}))
      case 'tools/list':
        return json(res, 200, success(id, { tools: listTools() }))
      case 'tools/call':
        return call(req, res, session, id, params)
      default:
        return json(res, 200, failure(id, METHOD_NOT_FOUND, `Method not found: ${message.method}`))
    }
  }

  function initialize(res: ServerResponse, message: JsonRpcMessage): void {
    if (!isRequestId(message.id)) {
      json(res, 400, failure(null, INVALID_REQUEST, 'initialize must be a request'))
      return
    }
    const params = isObject(message.params) ? message.params : {}
    const asked = params.protocolVersion
    const version =
      typeof asked === 'string' && PROTOCOL_VERSIONS.includes(asked) ? asked : PROTOCOL_VERSIONS[0]
    const session = crypto.randomUUID()
    sessions.set(session, version as string)
    res.setHeader('mcp-session-id', session)
    json(
      res,
      200,
      success(message.id, {
        protocolVersion: version,
        capabilities: { tools: {} },
        serverInfo: { name: 'oven-mcp-stream', version: '1.0.0' },
      }),
    )
  }

  /** The session of a request, or `undefined` once it has answered 400 or 404. */
  function sessionOf(req: IncomingMessage, res: ServerResponse): string | undefined {
    const session = req.headers['mcp-session-id']
    if (typeof session !== 'string') {
      reply(res, 400, 'missing Mcp-Session-Id header')
      return undefined
    }
    if (!sessions.has(session)) {
      // 404 tells the client to start a new session with `initialize`.
      reply(res, 404, 'unknown session')
      return undefined
    }
    const version = req.headers['mcp-protocol-version']
    if (typeof version === 'string' && !PROTOCOL_VERSIONS.includes(version)) {
      reply(res, 400, `unsupported MCP-Protocol-Version ${version}`)
      return undefined
    }
    return session
  }

  function listTools() {
    return Object.entries(tools).map(([name, tool]) => ({
      name,
      description: tool.description,
      inputSchema: tool.inputSchema,
    }))
  }

  async function call(
    req: IncomingMessage,
    res: ServerResponse,
    session: string,
    id: RequestId,
    params: Record<string, unknown>,
  ): Promise<void> {
    const name = params.name
    const tool = typeof name === 'string' && Object.hasOwn(tools, name) ? tools[name] : undefined
    if (tool === undefined) {
      return json(res, 200, failure(id, INVALID_PARAMS, `Unknown tool: ${String(params.name)}`))
    }
    const args = isObject(params.arguments) ? params.arguments : {}
    const meta = isObject(params._meta) ? params._meta : {}
    const token = isRequestId(meta.progressToken) ? meta.progressToken : undefined
    const runId = runIdOf(session, id)
    if (runId.length > 256) {
      return json(res, 200, failure(id, INVALID_REQUEST, 'Request id too long'))
    }
    try {
      await runs.start(runId, async function* (signal) {
        // The priming event the spec asks for: an id and no data, so that a client cut
        // before the first progress can already resume.
        yield { data: '' }
        const work = tool.run(args, signal)
        for (;;) {
          const step = await work.next()
          if (step.done) {
            yield { data: JSON.stringify(success(id, step.value)) }
            return
          }
          if (token !== undefined) {
            const progress = { progressToken: token, ...step.value }
            yield { data: JSON.stringify(notification('notifications/progress', progress)) }
          }
        }
      })
    } catch (error) {
      if (isSseError(error) && error.code === 'ERR_SSE_RUN_EXISTS') {
        return json(res, 200, failure(id, INVALID_REQUEST, 'Request id already used'))
      }
      throw error
    }
    await stream(req, res, runId, id, undefined)
  }

  /** GET with `Last-Event-ID`: the rest of an interrupted tool call's stream. */
  async function resume(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!(req.headers.accept ?? '').includes('text/event-stream')) {
      return reply(res, 406, 'Accept must list text/event-stream')
    }
    const session = sessionOf(req, res)
    if (session === undefined) return
    const lastEventId = req.headers['last-event-id']
    if (typeof lastEventId !== 'string') {
      res.setHeader('allow', 'POST, DELETE')
      return reply(res, 405, 'no stream outside a request: resume one with Last-Event-ID')
    }
    const position = parseWireId(lastEventId)
    const runId = position && runIdOf(session, position.request)
    if (!position || !runId || runId.length > 256 || (await runs.status(runId)) === undefined) {
      return reply(res, 404, 'no such stream (unknown or expired)')
    }
    await stream(req, res, runId, position.request, position.event)
  }

  /** A run's events as the client reads them: wire ids, and the run's end as JSON-RPC. */
  function stream(
    req: IncomingMessage,
    res: ServerResponse,
    runId: string,
    id: RequestId,
    after: string | undefined,
  ) {
    return sendEventStream(
      req,
      res,
      (ctx) => inMcpTerms(runs.attach(runId, { signal: ctx.signal, lastEventId: after }), id),
      { retry },
    )
  }

  /** `notifications/cancelled`: stops the request's run, if it is still going. */
  async function cancel(session: string, params: unknown): Promise<void> {
    const requestId = isObject(params) ? params.requestId : undefined
    if (!isRequestId(requestId)) return
    const runId = runIdOf(session, requestId)
    if (runId.length > 256) return
    await runs.stop(runId).catch(() => {}) // unknown or finished: nothing to cancel
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

/**
 * The run's events in MCP terms. Each event's id becomes `<Oven id>/<request id>`, so that a
 * `Last-Event-ID` names its run. An MCP client ignores events with other names than `message`,
 * and reconnects to a stream that ends before the request's response: so the run's end becomes
 * nothing after a response, and an error response after a failure (`Internal error`, whatever
 * the tool threw) or a stop (a cancel, a shutdown). The spec asks a server not to answer a
 * cancelled request; but without an answer the client would reconnect to ask again, and the
 * client, which has already given the call up, only reports it (the official one to `onerror`,
 * as a response for an unknown id). An `oven-reset` (the position is past the history) is
 * dropped: the live events follow, and if the response was among the lost ones, the end
 * brings an error response instead.
 */
export async function* inMcpTerms(events: AsyncIterable<ServerSentEvent>, id: RequestId) {
  // After a reset, the response is lost if the end comes with nothing before it (a finished
  // run's last event before its end is always its response).
  let lost = false
  for await (const event of events) {
    if (event.event === RESET_EVENT) {
      lost = true
      continue
    }
    const wireId = event.id === undefined ? undefined : `${event.id}/${JSON.stringify(id)}`
    if (event.event !== END_EVENT) {
      lost = false
      yield { data: event.data ?? '', id: wireId }
      continue
    }
    const { reason } = JSON.parse(event.data ?? '{}') as { reason: RunEndReason }
    const error =
      reason === 'failed'
        ? failure(id, INTERNAL_ERROR, FAILED_MESSAGE)
        : reason === 'stopped'
          ? failure(id, STOPPED, 'Request stopped')
          : reason === 'unknown' || lost
            ? failure(id, INTERNAL_ERROR, 'The result is no longer available')
            : undefined
    if (error !== undefined) yield { data: JSON.stringify(error), id: wireId }
    return
  }
}

/** The run of request `id` in `session`. */
const runIdOf = (session: string, id: RequestId) => `${session}:${JSON.stringify(id)}`

/** `<Oven id>/<request id as JSON>` → its parts; `undefined` if it is not one of ours. */
function parseWireId(wireId: string): { event: string; request: RequestId } | undefined {
  const slash = wireId.indexOf('/')
  if (slash <= 0) return undefined
  try {
    const request: unknown = JSON.parse(wireId.slice(slash + 1))
    return isRequestId(request) ? { event: wireId.slice(0, slash), request } : undefined
  } catch {
    return undefined
  }
}

const isRequestId = (value: unknown): value is RequestId =>
  typeof value === 'string' || (typeof value === 'number' && Number.isInteger(value))

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value)

const success = (id: RequestId, result: unknown) => ({ jsonrpc: '2.0', id, result })

const failure = (id: RequestId | null, code: number, message: string) => ({
  jsonrpc: '2.0',
  id,
  error: { code, message },
})

const notification = (method: string, params: unknown) => ({ jsonrpc: '2.0', method, params })

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body))
}

function reply(res: ServerResponse, status: number, text = ''): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' }).end(text)
}

async function readBody(req: IncomingMessage): Promise<string> {
  let body = ''
  for await (const chunk of req) {
    body += chunk
    if (body.length > MAX_BODY) throw new Error('body too large')
  }
  return body
}

/**
 * Helpers for your own tests: read what an event stream sends, as parsed events.
 *
 * Parsing is done by `eventsource-parser` (an optional peer dependency: install it to use this
 * entry point), so a test checks the wire format with the same rules a browser applies.
 *
 * @module
 */

import { createParser, type EventSourceMessage } from 'eventsource-parser'
import { checkOptionNames, describe, invalidOption, SseError } from '../errors.ts'
import { setDeadline } from '../util/deadline.ts'
import { checkDelay } from '../util/delay.ts'

/** One dispatched event, as a client sees it. */
export type SseEvent = EventSourceMessage

/** Anything on the wire: an event, a comment (such as a ping) or a `retry` hint. */
export type SseMessage =
  | ({ type: 'event' } & SseEvent)
  | { type: 'comment'; comment: string }
  | { type: 'retry'; retry: number }

/** Options of the reading helpers. */
export interface ReadOptions {
  /** Stop after this many items (events for `readEvents`, messages for `readMessages`). */
  count?: number | undefined
  /**
   * Give up after this many ms, rejecting with `ERR_SSE_TIMEOUT` (its `partial` property holds
   * what had arrived). Without `count`, the helpers read until the stream ends.
   * @defaultValue `5000`
   */
  timeout?: number | undefined
  /** Stops reading when aborted. */
  signal?: AbortSignal | undefined
  /** Extra request headers, when reading from a URL. */
  headers?: Record<string, string> | undefined
  /** Sent as `Last-Event-ID`, when reading from a URL. */
  lastEventId?: string | undefined
}

/** The options of the reading helpers ({@link ReadOptions}). */
const OPTIONS = ['count', 'timeout', 'signal', 'headers', 'lastEventId']

/** A `ERR_SSE_TIMEOUT` error from the reading helpers, with what had arrived. */
export interface ReadTimeoutError<T> extends SseError {
  partial: T[]
}

async function open(source: Response | string | URL, options: ReadOptions, signal: AbortSignal) {
  let response: Response
  if (source instanceof Response) {
    response = source
  } else {
    const headers: Record<string, string> = { accept: 'text/event-stream', ...options.headers }
    if (options.lastEventId !== undefined) headers['last-event-id'] = options.lastEventId
    response = await fetch(source, { headers, signal })
  }
  const type = response.headers.get('content-type') ?? ''
  if (!response.ok || !type.startsWith('text/event-stream') || !response.body) {
    await response.body?.cancel().catch(() => {})
    throw new SseError(
      'ERR_SSE_RESPONSE',
      `Expected a 2xx text/event-stream response, received status ${response.status} with ` +
        `content-type ${describe(type)}.`,
    )
  }
  return response.body
}

/**
 * Reads every message (events, comments, `retry` hints) of a stream as it arrives.
 *
 * @param source - a `Response` (for example an `EventSourceResponse`, or what `fetch` returned)
 *   or a URL to fetch with `Accept: text/event-stream`.
 */
export async function* iterateMessages(
  source: Response | string | URL,
  options: ReadOptions = {},
): AsyncGenerator<SseMessage, void, undefined> {
  checkOptionNames('the reading helpers', options, OPTIONS)
  const timeout = checkDelay('timeout', options.timeout ?? 5000)
  const controller = new AbortController()
  const abort = () => controller.abort(options.signal?.reason)
  options.signal?.addEventListener('abort', abort, { once: true })
  const queue: SseMessage[] = []
  const parser = createParser({
    onEvent: (event) => queue.push({ type: 'event', ...event }),
    onComment: (comment) => queue.push({ type: 'comment', comment }),
    onRetry: (retry) => queue.push({ type: 'retry', retry }),
  })
  const decoder = new TextDecoder()
  let timer: ReturnType<typeof setTimeout> | undefined
  const expired = new Promise<'timeout'>((resolve) => {
    // Judged after the data already received (util/deadline.ts).
    timer = setDeadline(resolve, timeout, 'timeout')
  })
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined
  const aborted = new Promise<'aborted'>((resolve) => {
    controller.signal.addEventListener('abort', () => resolve('aborted'), { once: true })
  })
  try {
    const body = await Promise.race([open(source, options, controller.signal), expired, aborted])
    if (body === 'aborted') return
    if (body === 'timeout') throw timeoutError([], timeout)
    reader = body.getReader()
    for (;;) {
      const result = await Promise.race([reader.read(), expired, aborted])
      if (result === 'aborted') return
      if (result === 'timeout') throw timeoutError([], timeout)
      if (result.done) {
        parser.feed(decoder.decode())
        yield* queue.splice(0)
        return
      }
      parser.feed(decoder.decode(result.value, { stream: true }))
      while (queue.length > 0) yield queue.shift() as SseMessage
    }
  } catch (error) {
    // Stopped by the caller's signal: a normal end, whatever the fetch machinery threw.
    if (options.signal?.aborted) return
    throw error
  } finally {
    clearTimeout(timer)
    options.signal?.removeEventListener('abort', abort)
    controller.abort()
    await reader?.cancel().catch(() => {})
  }
}

/** Reads dispatched events only; see {@link iterateMessages}. */
export async function* iterateEvents(
  source: Response | string | URL,
  options: ReadOptions = {},
): AsyncGenerator<SseEvent, void, undefined> {
  for await (const message of iterateMessages(source, options)) {
    if (message.type !== 'event') continue
    const { type: _type, ...event } = message
    yield event
  }
}

function timeoutError<T>(partial: T[], timeout: number): ReadTimeoutError<T> {
  const error = new SseError(
    'ERR_SSE_TIMEOUT',
    `Timed out after ${timeout} ms with ${partial.length} item(s) read.`,
  ) as ReadTimeoutError<T>
  error.partial = partial
  return error
}

async function collect<T>(items: AsyncGenerator<T>, options: ReadOptions): Promise<T[]> {
  const out: T[] = []
  if (options.count !== undefined && !(Number.isSafeInteger(options.count) && options.count >= 0)) {
    invalidOption('count', 'a non-negative integer', options.count)
  }
  const count = options.count ?? Number.POSITIVE_INFINITY
  if (count <= 0) return out
  try {
    for await (const item of items) {
      out.push(item)
      if (out.length >= count) break
    }
  } catch (error) {
    if ((error as ReadTimeoutError<T>).code === 'ERR_SSE_TIMEOUT') {
      ;(error as ReadTimeoutError<T>).partial = out
      ;(error as Error).message =
        `Timed out after ${options.timeout ?? 5000} ms with ${out.length} item(s) read` +
        (options.count === undefined ? ' (the stream did not end).' : ` of ${options.count}.`)
    }
    throw error
  }
  return out
}

/**
 * Reads the events of a stream into an array: `count` of them, or all until the stream ends.
 *
 * @example
 * ```ts
 * const events = await readEvents(`http://127.0.0.1:${port}/events`, { count: 3 })
 * expect(events.map((e) => e.data)).toEqual(['a', 'b', 'c'])
 * ```
 */
export function readEvents(
  source: Response | string | URL,
  options: ReadOptions = {},
): Promise<SseEvent[]> {
  return collect(iterateEvents(source, options), options)
}

/** Reads messages (events, comments, `retry` hints) into an array; see {@link readEvents}. */
export function readMessages(
  source: Response | string | URL,
  options: ReadOptions = {},
): Promise<SseMessage[]> {
  return collect(iterateMessages(source, options), options)
}

/**
 * One connection attempt: build the request, fetch, check the response, read the body through
 * `eventsource-parser`, and say how it ended. The reconnect loop (`event-stream.ts`) decides
 * what happens next; nothing here retries or waits.
 *
 * Two guarantees live here:
 *
 * - **No half event.** Each attempt has its own parser and its own `TextDecoder`; neither is
 *   flushed when the body ends or breaks, so an event cut off before its blank line is dropped
 *   (HTML spec: "if the file ends in the middle of an event, … the event is not dispatched")
 *   and the reconnect resumes after the last *complete* event's id.
 * - **Nothing hangs.** The idle timer runs from the request on: a server that never answers,
 *   or answers and then sends nothing (not even a comment) for `idleTimeout` ms, ends the
 *   attempt. It is one timer re-armed from a timestamp, not a timer per chunk.
 *
 * @module
 */

import { createParser, type EventSourceMessage } from 'eventsource-parser'
import { describe, SseError } from '../errors.ts'
import type { ClientSettings, ConnectInfo } from './options.ts'
import type { ClientEvent, FailureKind } from './types.ts'

/** What an attempt reports to the loop. @internal */
export type AttemptOutcome =
  /** The stream was stopped (closed, aborted, ended by an end event) while this attempt ran. */
  | { readonly type: 'stopped' }
  /** `204 No Content`: the server says "do not reconnect". */
  | { readonly type: 'no-content' }
  | AttemptFailure

/** A failed attempt. @internal */
export interface AttemptFailure {
  readonly type: 'failure'
  readonly kind: FailureKind | 'request'
  readonly error: SseError
  readonly response: Response | undefined
  /** Whether at least one event was delivered: a connection that made progress resets the backoff. */
  readonly progressed: boolean
}

/** What an attempt needs from its stream. @internal */
export interface AttemptHost {
  /** Aborted when the stream ends for good; the attempt then stops at once. */
  readonly stopSignal: AbortSignal
  /** The position to resume from, read when the request is built. */
  readonly lastEventId: string
  /** A connection is open. */
  opened(response: Response): void
  /** A complete event arrived. */
  deliver(message: EventSourceMessage): void
  /** A `retry:` field with a valid value arrived. */
  setRetry(ms: number): void
  /** A comment line arrived. */
  comment(text: string): void
  /** A promise while the reader of the events is behind (the loop pauses), else `undefined`. */
  room(): Promise<void> | undefined
}

/** `text/event-stream`, with or without parameters, in any case. */
function isEventStream(response: Response): boolean {
  const type = response.headers.get('content-type') ?? ''
  return /^text\/event-stream\s*(;|$)/i.test(type)
}

async function requestHeaders<E extends ClientEvent<unknown>>(
  settings: ClientSettings<E>,
  info: ConnectInfo,
): Promise<Headers> {
  const given =
    typeof settings.headers === 'function' ? await settings.headers(info) : settings.headers
  const headers = new Headers(given)
  if (!headers.has('accept')) headers.set('accept', 'text/event-stream')
  // The position is the client's own: a stale Last-Event-ID from the caller would undo a resume.
  headers.delete('last-event-id')
  if (info.lastEventId !== '') headers.set('last-event-id', info.lastEventId)
  return headers
}

function failure(
  kind: AttemptFailure['kind'],
  error: SseError,
  progressed: boolean,
  response?: Response,
): AttemptFailure {
  return { type: 'failure', kind, error, response, progressed }
}

async function discard(response: Response): Promise<void> {
  await response.body?.cancel().catch(() => {})
}

/**
 * Runs one connection until it ends, fails, or the stream stops.
 *
 * @param attempt - 0 for the first connection of the stream, then 1, 2…
 * @internal
 */
export async function runAttempt<E extends ClientEvent<unknown>>(
  settings: ClientSettings<E>,
  host: AttemptHost,
  attempt: number,
): Promise<AttemptOutcome> {
  const { stopSignal } = host
  if (stopSignal.aborted) return { type: 'stopped' }
  const info: ConnectInfo = { attempt, lastEventId: host.lastEventId }
  let headers: Headers
  let body: BodyInit | undefined
  try {
    headers = await requestHeaders(settings, info)
    body = (typeof settings.body === 'function' ? await settings.body(info) : settings.body) as
      | BodyInit
      | undefined
  } catch (cause) {
    if (stopSignal.aborted) return { type: 'stopped' }
    const which = typeof settings.headers === 'function' ? 'headers or body' : 'body'
    return failure(
      'request',
      new SseError('ERR_SSE_CONNECTION', `The ${which} function failed: ${message(cause)}`, {
        cause,
      }),
      false,
    )
  }
  if (stopSignal.aborted) return { type: 'stopped' }

  const controller = new AbortController()
  const stop = () => controller.abort(stopSignal.reason)
  stopSignal.addEventListener('abort', stop, { once: true })
  // The idle timer: `last` moves on with every chunk; the timer re-arms itself from it.
  const idle = settings.idleTimeout
  let last = Date.now()
  let paused = false
  let idled = false
  let timer: ReturnType<typeof setTimeout> | undefined
  const check = () => {
    const left = paused ? idle : last + idle - Date.now()
    if (left > 0) {
      timer = setTimeout(check, left)
      return
    }
    idled = true
    controller.abort(new SseError('ERR_SSE_TIMEOUT', 'idle'))
  }
  if (idle > 0) timer = setTimeout(check, idle)
  const idleFailure = (progressed: boolean) =>
    failure(
      'idle',
      new SseError(
        'ERR_SSE_TIMEOUT',
        `Nothing arrived from ${settings.url.href} for ${idle} ms (option "idleTimeout"): ` +
          `not an event, not a comment.`,
      ),
      progressed,
    )

  let progressed = false
  try {
    let response: Response
    try {
      // Called as a plain function: a browser's fetch throws "Illegal invocation" when called
      // as a method of another object (`settings.fetch(…)`).
      const request = settings.fetch
      response = await request(settings.url, {
        // As `EventSource`: never answered from a cache (`init.cache` may say otherwise).
        cache: 'no-store',
        ...settings.init,
        method: settings.method,
        headers,
        ...(body === undefined ? {} : { body }),
        signal: controller.signal,
      })
    } catch (cause) {
      if (stopSignal.aborted) return { type: 'stopped' }
      if (idled) return idleFailure(false)
      return failure(
        'network',
        new SseError(
          'ERR_SSE_CONNECTION',
          `Could not connect to ${settings.url.href}: ${message(cause)}`,
          { cause },
        ),
        false,
      )
    }
    last = Date.now()

    // HTML spec: a 204 means "stop reconnecting", the one way a server can end an EventSource.
    if (response.status === 204) {
      await discard(response)
      return { type: 'no-content' }
    }
    if (!response.ok) {
      await discard(response)
      return failure(
        'status',
        new SseError(
          'ERR_SSE_RESPONSE',
          `${settings.url.href} answered status ${response.status}` +
            `${response.statusText ? ` ${response.statusText}` : ''}, expected 200.`,
        ),
        false,
        response,
      )
    }
    if (!isEventStream(response)) {
      await discard(response)
      return failure(
        'content-type',
        new SseError(
          'ERR_SSE_RESPONSE',
          `${settings.url.href} answered ${response.status} with content-type ` +
            `${describe(response.headers.get('content-type'))}, expected "text/event-stream": ` +
            `not an event stream (a login page, a proxy's error page, a wrong URL?); not retried.`,
        ),
        false,
        response,
      )
    }
    if (!response.body) {
      return failure(
        'ended',
        new SseError('ERR_SSE_CONNECTION', `${settings.url.href} answered without a body.`),
        false,
      )
    }

    host.opened(response)
    if (stopSignal.aborted) return { type: 'stopped' }

    let tooLarge = false
    const parser = createParser({
      onEvent: (event) => {
        progressed = true
        host.deliver(event)
      },
      onRetry: (ms) => host.setRetry(ms),
      onComment: (text) => host.comment(text),
      // A garbage `retry:` or an unknown field is ignored, as the HTML spec says; only an
      // event too large to hold ends the attempt.
      onError: (error) => {
        if (error.type === 'max-buffer-size-exceeded') tooLarge = true
      },
      maxBufferSize: settings.maxEventSize,
    })
    const decoder = new TextDecoder()
    const reader = response.body.getReader()
    try {
      for (;;) {
        let chunk: ReadableStreamReadResult<Uint8Array>
        try {
          chunk = await reader.read()
        } catch (cause) {
          if (stopSignal.aborted) return { type: 'stopped' }
          if (idled) return idleFailure(progressed)
          return failure(
            'network',
            new SseError(
              'ERR_SSE_CONNECTION',
              `The connection to ${settings.url.href} broke: ${message(cause)}`,
              { cause },
            ),
            progressed,
          )
        }
        if (chunk.done) {
          // What is left in the parser or the decoder is an unfinished event: dropped.
          return failure(
            'ended',
            new SseError('ERR_SSE_CONNECTION', `${settings.url.href} ended the stream.`),
            progressed,
          )
        }
        last = Date.now()
        parser.feed(decoder.decode(chunk.value, { stream: true }))
        if (stopSignal.aborted) return { type: 'stopped' }
        if (tooLarge) {
          return failure(
            'too-large',
            new SseError(
              'ERR_SSE_RESPONSE',
              `An event from ${settings.url.href} exceeded ${settings.maxEventSize} characters ` +
                `(option "maxEventSize"); not retried.`,
            ),
            progressed,
          )
        }
        const room = host.room()
        if (room) {
          // The application reads slower than events arrive: stop reading (TCP pushes back on
          // the server), and do not count the pause as the server's silence.
          paused = true
          await room
          paused = false
          last = Date.now()
          if (stopSignal.aborted) return { type: 'stopped' }
        }
      }
    } finally {
      reader.cancel().catch(() => {})
    }
  } finally {
    clearTimeout(timer)
    stopSignal.removeEventListener('abort', stop)
    controller.abort()
  }
}

function message(error: unknown): string {
  if (error instanceof Error) {
    const cause = error.cause instanceof Error ? ` (${error.cause.message})` : ''
    return `${error.message}${cause}`
  }
  return String(error)
}

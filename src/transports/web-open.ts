/**
 * `openEventSourceResponse`: the web `Response`, made only once the content is ready.
 *
 * A handler's `Response` is sent as soon as it is returned, so a content function that throws
 * inside an `EventSourceResponse` can only end a stream whose `200` head is already out. This
 * helper runs the content function first: if it throws, the returned promise rejects and the
 * server's (or framework's) own error handling answers — Bun's `error`, Deno's `onError`,
 * Hono's `onError`. Web-standard APIs only.
 *
 * @module
 */

import { SseError } from '../errors.ts'
import { readLastEventId } from '../stream/headers.ts'
import { resolveOptions } from '../stream/options.ts'
import { isThenable } from '../stream/source.ts'
import type { CloseReason, Content, ContentSource, StreamContext } from '../stream/types.ts'
import { EventSourceResponse, type EventSourceResponseOptions } from './web.ts'

/**
 * Like `new EventSourceResponse(content, options)`, but a content *function* runs before the
 * response is made: when it throws or rejects, so does the returned promise, and nothing has
 * been sent. Use it where a failed authorisation or lookup inside the content function should
 * produce the server's usual error response instead of an empty stream.
 *
 * The context the function receives behaves as in `EventSourceResponse`: `ctx.signal` aborts
 * with the same reason at the same moment (disconnect, shutdown, timeout, error, done).
 *
 * @example
 * ```ts
 * Deno.serve((request) =>
 *   openEventSourceResponse(
 *     async ({ signal }) => {
 *       const feed = await openFeed(request) // throws -> Deno answers 500
 *       return feed.events(signal)
 *     },
 *     { request },
 *   ),
 * )
 * ```
 */
export async function openEventSourceResponse(
  content: Content<Request | undefined>,
  options: EventSourceResponseOptions = {},
): Promise<EventSourceResponse> {
  if (typeof content !== 'function') return new EventSourceResponse(content, options)
  // Misuse (a bad option) is reported before user code runs, as on every other path.
  const { limit } = resolveOptions(options, ['request'])
  const request = options.request
  // Past a connection limit the answer is a 503 and the content function must not run: the
  // response made here takes no slot, answers 503 and never calls it.
  if (typeof limit?.admits === 'function' && !limit.admits(request)) {
    return new EventSourceResponse(content, options)
  }
  const controller = new AbortController()
  const onRequestAbort = () => controller.abort('disconnect')
  const requestSignal = request?.signal
  if (requestSignal?.aborted) controller.abort('disconnect')
  else requestSignal?.addEventListener('abort', onRequestAbort, { once: true })
  const release = () => requestSignal?.removeEventListener('abort', onRequestAbort)
  // The source keeps this context; the hooks below make it mirror the stream's own.
  const ctx: StreamContext<Request | undefined> = {
    signal: controller.signal,
    lastEventId: request
      ? readLastEventId(request.headers.get('last-event-id'), request.url)
      : undefined,
    request,
  }
  let source: unknown
  try {
    source = content(ctx)
    if (isThenable(source)) source = await source
    // A function here would be taken for a content function and called a second time.
    if (typeof source === 'function') {
      throw new SseError(
        'ERR_SSE_INVALID_CONTENT',
        'Invalid content: a content function returned a function; return the source itself.',
      )
    }
    const { onClose, onShutdown } = options
    return new EventSourceResponse(source as ContentSource, {
      ...options,
      onShutdown: () => {
        // The stream's own signal aborts with `shutdown` now; so must the one the source holds.
        controller.abort('shutdown')
        onShutdown?.()
      },
      onClose: (reason: CloseReason) => {
        release()
        controller.abort(reason)
        // The limit filled up while the content function ran: the stream never read the
        // source it returned, so stop that here (a generator's finally, a stream's cancel).
        if (reason === 'rejected') stopUnread(source)
        onClose?.(reason)
      },
    })
  } catch (error) {
    release()
    controller.abort('error')
    throw error
  }
}

/** Stops a source no stream will read. Errors are the source's own business: it was never used. */
function stopUnread(source: unknown): void {
  try {
    if (typeof (source as ReadableStream).cancel === 'function') {
      ;(source as ReadableStream).cancel().catch(() => {})
    } else if (source !== null && typeof source === 'object' && Symbol.asyncIterator in source) {
      const iterator = (source as AsyncIterable<unknown>)[Symbol.asyncIterator]()
      void Promise.resolve(iterator.return?.()).catch(() => {})
    } else if (source !== null && typeof source === 'object' && Symbol.iterator in source) {
      ;(source as Iterable<unknown>)[Symbol.iterator]().return?.()
    }
  } catch {
    // Nothing to do: the source was never read and is dropped.
  }
}

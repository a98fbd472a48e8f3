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

import { refusalStatus } from '../limits/refusal.ts'
import type { Content } from '../stream/types.ts'
import { EventSourceResponse, type EventSourceResponseOptions, PreparedStream } from './web.ts'

/**
 * Like `new EventSourceResponse(content, options)`, but a content *function* runs before the
 * response is made: when it throws or rejects, so does the returned promise, and nothing has
 * been sent. Use it where a failed authorisation or lookup inside the content function should
 * produce the server's usual error response instead of an empty stream. A refusal of a
 * Broadcaster's `authorize` hook (`ERR_SSE_UNAUTHORIZED`, `ERR_SSE_FORBIDDEN`) is answered
 * here, as a `401` or `403` response, the way a connection limit's `503` is.
 *
 * The function receives the stream's own context: `ctx.signal` aborts with the stream's close
 * reason (disconnect, shutdown, timeout, error, done), and with `disconnect` when the client
 * leaves while the function still runs. When the function throws, the stream ends with reason
 * `error` (`onClose` is called) and nothing is sent.
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
  // Content that is ready needs no waiting, unless for the limiter.
  if (typeof content !== 'function' && !waitsForSlot(options.limit)) {
    return new EventSourceResponse(content, options)
  }
  // The stream exists before its response: the function gets the stream's own context, and a
  // bad option is reported before user code runs, as on every other path.
  const stream = PreparedStream.make(content, options)
  const { pump, request } = stream
  // Past a connection limit the answer is a 503 and the content function must not run.
  const limit = stream.options.limit
  // Asked below, once a client leaving is noticed.
  const waitForSlot = waitsForSlot(limit)
  let admitted: boolean
  try {
    admitted = typeof limit?.admits !== 'function' || limit.admits(request)
  } catch (error) {
    // The limiter's key function failed: the server's error handling answers.
    pump.close('error')
    throw error
  }
  if (!admitted) return new EventSourceResponse(stream)
  // Until the response exists, the request's signal is the only news of a client leaving.
  const requestSignal = request?.signal
  const onRequestAbort = () => pump.disconnect()
  if (requestSignal?.aborted) pump.disconnect()
  else requestSignal?.addEventListener('abort', onRequestAbort, { once: true })
  try {
    if (waitForSlot && !(await takeSlot(stream))) return new EventSourceResponse(stream)
    await pump.open()
  } catch (error) {
    if (pump.ended) {
      // Shut down (or left) while the function ran: an empty stream that ends at once, and the
      // failure is reported unless it is the abort itself.
      pump.failOpen(error)
      return new EventSourceResponse(stream)
    }
    const status = refusalStatus(error)
    if (status !== undefined) {
      // Refused by an `authorize` hook: the response is the 401 or 403 itself.
      pump.close('rejected')
      stream.refused = status
      return new EventSourceResponse(stream)
    }
    pump.close('error')
    throw error
  } finally {
    requestSignal?.removeEventListener('abort', onRequestAbort)
  }
  // Takes a slot of the limit, or answers 503 and stops the source it no longer needs.
  return new EventSourceResponse(stream)
}

/**
 * Whether `limit` is one to wait for before the content runs: a limiter without `admits` (such
 * as Redis's), whose `acquire` may answer with a promise.
 */
function waitsForSlot(limit: unknown): boolean {
  return (
    typeof limit === 'object' &&
    limit !== null &&
    typeof (limit as { admits?: unknown }).admits !== 'function'
  )
}

/**
 * Waits for the limiter's `acquire` and gives the slot to the stream's pump (back at once if the
 * client left meanwhile); the response then does not ask again. Whether a slot was granted.
 */
async function takeSlot(stream: PreparedStream): Promise<boolean> {
  const release = await stream.options.limit?.acquire(stream.request)
  stream.admitted = release !== undefined
  if (release) stream.pump.releaseOnEnd(release)
  return stream.admitted
}

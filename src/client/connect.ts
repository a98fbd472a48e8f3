/**
 * `connect()`: the client's entry point.
 *
 * @module
 */

import { EventStream } from './event-stream.ts'
import type { ConnectOptions } from './options.ts'
import type { ClientEvent } from './types.ts'

const asIs = (event: ClientEvent) => event

/**
 * Opens a server-sent event stream with `fetch` and keeps it open: any method, body and headers;
 * reconnects with backoff after a failure, sending `Last-Event-ID` so the server resumes after
 * the last event received; ends for good on `close()`, the `signal`, a `204`, an event named in
 * `endEvents` (Oven's `oven-end` by default), or a failure it does not retry.
 *
 * Web APIs only: browsers, Node 20+, Bun, Deno, Cloudflare Workers.
 *
 * @param url - an absolute URL, or (in a page) a path resolved against it.
 * @throws `SseError` with code `ERR_SSE_INVALID_OPTION` for an invalid URL or option.
 *
 * @example
 * ```ts
 * import { connect } from 'oven-sse/client'
 *
 * const stream = connect('/chat', {
 *   method: 'POST',
 *   body: JSON.stringify({ prompt }),
 *   headers: async () => ({ authorization: `Bearer ${await getToken()}` }),
 *   lastEventId: sessionStorage.getItem('chat-position') ?? '',
 * })
 * for await (const event of stream) {
 *   render(event)
 *   sessionStorage.setItem('chat-position', event.lastEventId)
 * }
 * ```
 */
export function connect(url: string | URL, options: ConnectOptions = {}): EventStream {
  return new EventStream(url, options, asIs)
}

/**
 * `connect()`: the client's entry point.
 *
 * @module
 */

import type { AnyContract } from '../contracts/contract.ts'
import { EventStream } from './event-stream.ts'
import type { ConnectOptions } from './options.ts'
import { contractMapper, type TypedClientEvent } from './typed.ts'
import type { ClientEvent } from './types.ts'

const asIs = (event: ClientEvent) => event

/** Options of {@link connect} with a contract: events come out typed, their data parsed. */
export interface TypedConnectOptions<C extends AnyContract>
  extends ConnectOptions<TypedClientEvent<C>> {
  /**
   * The stream's contract (`defineContract`, shared with the server): each event's data is
   * parsed from JSON and, unless the contract says `validate: false`, checked by its schema.
   * An event not in the contract, or data that fails, ends the stream with `ERR_SSE_INVALID_EVENT`
   * or `ERR_SSE_INVALID_DATA` (not retried: the server would send it again); the position stays
   * before it. Oven's `oven-end` and `oven-reset` pass through, typed.
   */
  contract: C
}

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
export function connect<C extends AnyContract>(
  url: string | URL,
  options: TypedConnectOptions<C>,
): EventStream<TypedClientEvent<C>>
export function connect(url: string | URL, options?: ConnectOptions): EventStream
export function connect(
  url: string | URL,
  options: ConnectOptions | TypedConnectOptions<AnyContract> = {},
): EventStream<ClientEvent> | EventStream<TypedClientEvent<AnyContract>> {
  const contract = (options as { contract?: unknown }).contract
  if (contract === undefined) return new EventStream(url, options as ConnectOptions, asIs)
  return new EventStream(
    url,
    options as TypedConnectOptions<AnyContract>,
    contractMapper(contract as AnyContract),
  )
}

/**
 * The one error class Oven throws or reports.
 *
 * @module
 */

/**
 * What went wrong, as a stable string you can switch on.
 *
 * - `ERR_SSE_INVALID_FIELD` — an event field (`event`, `id`, `retry`, `comment`, `data`) has a
 *   value the wire format cannot carry safely.
 * - `ERR_SSE_INVALID_EVENT` — a content item is not a string, event object, `ServerSentEvent` or
 *   `Uint8Array`, or an event object has an unknown key, or its event name is not in the
 *   stream's contract.
 * - `ERR_SSE_INVALID_DATA` — an event's data does not pass its contract's schema (the message
 *   lists the schema's issues; `cause` is the schema's own result), or JSON cannot carry it.
 * - `ERR_SSE_SERIALIZE` — the serializer threw or did not return a string.
 * - `ERR_SSE_INVALID_OPTION` — an option has the wrong type or range.
 * - `ERR_SSE_INVALID_CONTENT` — the content is not something Oven can stream.
 * - `ERR_SSE_HEADERS_SENT` — the response head was already sent by someone else.
 * - `ERR_SSE_CHANNEL_CLOSED` — a channel was closed, or its reader went away, before a send.
 * - `ERR_SSE_TIMEOUT` — a testing helper waited longer than its `timeout`, or the client heard
 *   nothing for its `idleTimeout`.
 * - `ERR_SSE_BROKER` — a broker (for example Redis) could not take or deliver an event.
 * - `ERR_SSE_RESPONSE` — a testing helper or the client got a response that is not an event
 *   stream (a status other than 2xx, another content type, an event too large).
 * - `ERR_SSE_RUN_NOT_FOUND` — no run has this id (never started, or expired): answer 404.
 * - `ERR_SSE_RUN_EXISTS` — a run with this id is running or has not expired yet: answer 409.
 * - `ERR_SSE_RUN_ABANDONED` — reported to a `Runs`' `onError`: a run's producing instance stopped
 *   renewing its lease (it died), so the run was ended as failed.
 * - `ERR_SSE_PRESENCE_FULL` — a `Presence` refused a join: this process already holds its
 *   `maxConnections` joined connections.
 * - `ERR_SSE_CONNECTION` — the client (`oven-sse/client`) could not reach the server, or lost
 *   the connection, or its `headers`/`body` function failed.
 * - `ERR_SSE_UNAUTHORIZED` — a Broadcaster's `authorize` hook refused with 401 (no valid
 *   credentials): a transport answers `401` before the head.
 * - `ERR_SSE_FORBIDDEN` — a Broadcaster's `authorize` hook refused with 403, or granted none of
 *   the requested topics: a transport answers `403` before the head.
 */
export type SseErrorCode =
  | 'ERR_SSE_INVALID_FIELD'
  | 'ERR_SSE_INVALID_EVENT'
  | 'ERR_SSE_INVALID_DATA'
  | 'ERR_SSE_SERIALIZE'
  | 'ERR_SSE_INVALID_OPTION'
  | 'ERR_SSE_INVALID_CONTENT'
  | 'ERR_SSE_HEADERS_SENT'
  | 'ERR_SSE_CHANNEL_CLOSED'
  | 'ERR_SSE_TIMEOUT'
  | 'ERR_SSE_BROKER'
  | 'ERR_SSE_RESPONSE'
  | 'ERR_SSE_RUN_NOT_FOUND'
  | 'ERR_SSE_RUN_EXISTS'
  | 'ERR_SSE_RUN_ABANDONED'
  | 'ERR_SSE_PRESENCE_FULL'
  | 'ERR_SSE_CONNECTION'
  | 'ERR_SSE_UNAUTHORIZED'
  | 'ERR_SSE_FORBIDDEN'

// A registered symbol, so two installed copies of Oven recognise each other's errors.
const brand = Symbol.for('oven-sse.SseError')

/**
 * An error raised by Oven. Programmer errors (bad options, bad event fields) are thrown at once;
 * problems on one live stream end that stream and reach its `onError`.
 *
 * @example
 * ```ts
 * try {
 *   encodeEvent({ event: 'a\nb' })
 * } catch (error) {
 *   if (isSseError(error) && error.code === 'ERR_SSE_INVALID_FIELD') console.log(error.message)
 * }
 * ```
 */
export class SseError extends Error {
  /** What went wrong; see {@link SseErrorCode}. */
  readonly code: SseErrorCode
  override readonly name = 'SseError'

  constructor(code: SseErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
    Object.defineProperty(this, brand, { value: true })
  }
}

/**
 * Whether `value` is an {@link SseError}, also when it comes from another installed copy of Oven
 * (where `instanceof` would answer `false`).
 */
export function isSseError(value: unknown): value is SseError {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value instanceof SseError || (value as Record<symbol, unknown>)[brand] === true)
  )
}

/**
 * Describes a received value for an error message: its type and a short, printable form.
 *
 * @internal
 */
export function describe(value: unknown): string {
  if (value === null) return 'null'
  if (value === undefined) return 'undefined'
  if (typeof value === 'string') {
    const shown = value.length > 60 ? `${value.slice(0, 57)}...` : value
    return `string ${JSON.stringify(shown)}`
  }
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') {
    return `${typeof value} ${String(value)}`
  }
  if (typeof value === 'function') return 'a function'
  if (Array.isArray(value)) return 'an array'
  // A Promise where a value belongs is nearly always a forgotten `await`: say so.
  if (typeof (value as { then?: unknown }).then === 'function') {
    return `${value instanceof Promise ? 'a Promise' : 'a thenable'} (did you forget await?)`
  }
  const name = (value as object).constructor?.name
  return name && name !== 'Object' ? `an instance of ${name}` : 'an object'
}

/**
 * Throws `ERR_SSE_INVALID_OPTION` naming the option, the expected form and what was received.
 *
 * @internal
 */
export function invalidOption(name: string, expected: string, received: unknown): never {
  throw new SseError(
    'ERR_SSE_INVALID_OPTION',
    `Invalid option "${name}": expected ${expected}, received ${describe(received)}.`,
  )
}

/**
 * Checks an options object: throws `ERR_SSE_INVALID_OPTION` unless `options` is an object whose
 * names are all in `known`, so that a typo (`sendTimout`) is refused instead of doing nothing.
 * Every options object Oven takes is checked here, against one table per class, so every such
 * error reads the same.
 *
 * @param owner - what takes the options, as the caller knows it: `"Broadcaster"`, `"a stream"`.
 * @param known - the option names `owner` understands.
 * @internal
 */
export function checkOptionNames(
  owner: string,
  options: unknown,
  known: readonly string[],
): asserts options is object {
  if (typeof options !== 'object' || options === null) {
    throw new SseError(
      'ERR_SSE_INVALID_OPTION',
      `Invalid options for ${owner}: expected an object, received ${describe(options)}.`,
    )
  }
  for (const name of Object.keys(options)) {
    if (!known.includes(name)) {
      throw new SseError(
        'ERR_SSE_INVALID_OPTION',
        `Unknown option "${name}" for ${owner}; the options are: ${known.join(', ')}.`,
      )
    }
  }
}

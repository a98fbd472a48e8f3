/**
 * Accept negotiation: did the request ask for an event stream? Lets one route answer an
 * `EventSource` with a stream and everything else with JSON.
 *
 * Web-standard only: the Node wrapper lives in `oven-sse/node`.
 *
 * @module
 */

const EVENT_STREAM = 'text/event-stream'

/**
 * The quality (`q`) of one media range (RFC 9110 §12.5.1), or `undefined` when the range is
 * malformed. A missing `q` is 1; a `q` outside 0..1 or not a number makes the range invalid
 * (it is then ignored, as RFC 9110 lets a recipient do with what it cannot parse).
 */
function quality(params: readonly string[]): number | undefined {
  for (const param of params) {
    const eq = param.indexOf('=')
    if (eq < 0 || param.slice(0, eq).trim().toLowerCase() !== 'q') continue
    const value = Number(param.slice(eq + 1).trim())
    return Number.isFinite(value) && value >= 0 && value <= 1 ? value : undefined
  }
  return 1
}

/**
 * Whether an `Accept` header value asks for `text/event-stream`.
 *
 * True when the header names `text/event-stream` explicitly with a quality above 0 and no other
 * media range has a higher quality. Wildcards (`*` followed by `/*`, `text/*`) do not count as
 * asking: they are what `fetch`, curl and browsers send by default, and those clients expect the
 * route's ordinary (say JSON) answer. A tie counts as asking, so
 * `application/json, text/event-stream` (sent by clients that take either) gets the stream.
 * Media type parameters (`charset`) are ignored; names are case-insensitive.
 *
 * @param accept - the `Accept` header value; `null`/`undefined` (no header) answers `false`.
 *
 * @example
 * ```ts
 * acceptsEventStream('text/event-stream')                   // true (what EventSource sends)
 * acceptsEventStream('application/json, text/event-stream') // true
 * acceptsEventStream('text/event-stream;q=0.5, application/json') // false: JSON preferred
 * acceptsEventStream('*' + '/*')                               // false
 * ```
 */
export function acceptsEventStream(accept: string | null | undefined): boolean {
  if (!accept) return false
  let streamQ = 0
  let otherQ = 0
  for (const range of accept.split(',')) {
    const [type = '', ...params] = range.split(';')
    const name = type.trim().toLowerCase()
    if (name === '') continue
    const q = quality(params)
    if (q === undefined) continue
    if (name === EVENT_STREAM) streamQ = Math.max(streamQ, q)
    else otherQ = Math.max(otherQ, q)
  }
  return streamQ > 0 && streamQ >= otherQ
}

/**
 * Whether a web `Request` asks for `text/event-stream`; see {@link acceptsEventStream}.
 *
 * @example
 * ```ts
 * app.get('/prices', (c) =>
 *   requestAcceptsEventStream(c.req.raw) ? sse(c, prices()) : c.json(latestPrices()),
 * )
 * ```
 */
export function requestAcceptsEventStream(request: Request): boolean {
  return acceptsEventStream(request.headers.get('accept'))
}

/**
 * An `EventSource` that recovers by itself, for the browser (an ES module, no dependencies).
 *
 * The browser's `EventSource` reconnects after a dropped connection, but at a fixed interval
 * and only while the server answers 200: after any other answer — a 503 from an overloaded
 * server or a `ConnectionLimiter`, a 502 from a proxy while the server restarts — it closes
 * for good. And when a finite stream ends, it reconnects and starts the stream over.
 *
 * `openEventStream` handles the three cases:
 * - on any error it closes the `EventSource` and opens a new one after a backoff that doubles
 *   up to `maxDelay` (with jitter, so clients dropped together do not return together), and
 *   resets once a connection opens;
 * - the new connection asks to resume after the last event id received (the `lastEventId`
 *   query parameter, which Oven reads into `ctx.lastEventId` like the `Last-Event-ID` header);
 * - an event named `endEvent` (default `end`) means "this stream is complete": it closes the
 *   connection and never reconnects.
 *
 * Tested in headless Chromium by test/browser/reconnect.test.ts.
 *
 * @param {string} url
 * @param {{
 *   on?: Record<string, (event: MessageEvent) => void>,
 *   onStatus?: (status: 'open' | 'retrying' | 'ended' | 'closed', detail: { attempt: number, delay: number }) => void,
 *   endEvent?: string,
 *   initialDelay?: number,
 *   maxDelay?: number,
 * }} [options] `on` maps event names (`message` for unnamed events) to handlers
 * @returns {{ close(): void }} `close()` stops for good
 */
export function openEventStream(url, options = {}) {
  const { on = {}, onStatus = () => {}, endEvent = 'end' } = options
  const { initialDelay = 1000, maxDelay = 30_000 } = options
  let source
  let timer
  let attempt = 0
  let lastEventId = ''
  let stopped = false

  function connect() {
    const target = new URL(url, location.href)
    if (lastEventId) target.searchParams.set('lastEventId', lastEventId)
    source = new EventSource(target)
    source.onopen = () => {
      attempt = 0
      onStatus('open', { attempt, delay: 0 })
    }
    for (const [name, handler] of Object.entries(on)) {
      source.addEventListener(name, (event) => {
        if (event.lastEventId) lastEventId = event.lastEventId
        handler(event)
      })
    }
    source.addEventListener(endEvent, () => stop('ended'))
    source.onerror = () => {
      // Closed by the browser (a non-200 answer) or about to retry on its own (a dropped
      // connection): either way, take over, so every retry backs off and resumes.
      source.close()
      const delay = Math.min(maxDelay, initialDelay * 2 ** attempt) * (0.5 + Math.random() / 2)
      attempt++
      onStatus('retrying', { attempt, delay })
      timer = setTimeout(connect, delay)
    }
  }

  function stop(status) {
    if (stopped) return
    stopped = true
    clearTimeout(timer)
    source.close()
    onStatus(status, { attempt, delay: 0 })
  }

  connect()
  return { close: () => stop('closed') }
}

import { setTimeout as sleep } from 'node:timers/promises'
import type { StreamContext } from 'oven-sse'

/** Milliseconds between ticks (`TICK_MS`, default 1000), read when a stream starts. */
const every = () => Number(process.env.TICK_MS ?? 1000)

/**
 * `tick <n>` as event `n`, every {@link every} ms, numbered on from the id the client saw last
 * (`Last-Event-ID` on a reconnect). Logs how it ended: `disconnect` when the client left,
 * `shutdown` on SIGTERM (see instrumentation.ts).
 */
export async function* ticks({
  signal,
  lastEventId,
}: StreamContext<unknown>): AsyncGenerator<{ id: string; data: string }> {
  let id = Number(lastEventId ?? 0)
  try {
    while (!signal.aborted) {
      id++
      yield { id: String(id), data: `tick ${id}` }
      // ctx.signal aborts the moment the client leaves: the sleep ends at once.
      await sleep(every(), undefined, { signal })
    }
  } finally {
    console.log(`stream ended after id ${id} (${String(signal.reason)})`)
  }
}

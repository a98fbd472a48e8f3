/**
 * One client library in a process of its own, for bench/client.ts: `parse` reads N events and
 * checks each payload; `memory` opens clients on an idle stream and reports the memory they hold.
 */

import { fetchEventSource } from '@microsoft/fetch-event-source'
import { EventSource } from 'eventsource'
import { connect } from '../src/client.ts'
import type { ClientId } from './client.ts'
import { answer } from './lib/ipc.ts'
import { INDEX_DIGITS } from './lib/payload.ts'

// fetch-event-source is written for browsers: it calls window.setTimeout and window.fetch, and
// removes a document visibility listener when it stops (even with openWhenHidden).
;(globalThis as { window?: unknown }).window ??= globalThis
;(globalThis as { document?: unknown }).document ??= {
  hidden: false,
  addEventListener() {},
  removeEventListener() {},
}

/** An open client: `close()` ends it. */
interface Opened {
  close(): void
}

/**
 * Opens `client` on `url`; `onData` gets each event's data, `onOpen` fires once connected.
 * Every client is told not to reconnect on its own where it can be.
 */
function open(
  client: ClientId,
  url: string,
  onData: (data: string) => void,
  onOpen: () => void,
): Opened {
  if (client === 'oven') {
    const stream = connect(url, { onEvent: (event) => onData(event.data), onOpen, maxRetries: 0 })
    return stream
  }
  if (client === 'eventsource') {
    const source = new EventSource(url)
    source.onopen = onOpen
    source.onmessage = (event) => onData(event.data)
    return source
  }
  const controller = new AbortController()
  void fetchEventSource(url, {
    signal: controller.signal,
    openWhenHidden: true,
    onopen: async () => onOpen(),
    onmessage: (message) => onData(message.data),
    onerror: (error) => {
      throw error // no retry
    },
  }).catch(() => {})
  return { close: () => controller.abort() }
}

const gc = (globalThis as { gc?: () => void }).gc

async function settledMemory() {
  if (!gc) throw new Error('bench: client workers must run with --expose-gc')
  for (let i = 0; i < 4; i++) {
    gc()
    await new Promise((resolve) => setImmediate(resolve))
  }
  return process.memoryUsage()
}

answer({
  parse: ({ client, port, n, size }: { client: ClientId; port: number; n: number; size: number }) =>
    new Promise((resolve) => {
      let count = 0
      let error: string | undefined
      const started = performance.now()
      const opened = open(
        client,
        `http://127.0.0.1:${port}/stream?n=${n}&size=${size}`,
        (data) => {
          if (
            error === undefined &&
            (data.length !== size || Number(data.slice(0, INDEX_DIGITS)) !== count)
          ) {
            error = `event ${count}: expected index ${count} and ${size} B, received ${data.slice(0, INDEX_DIGITS)} and ${data.length} B`
          }
          if (++count === n) {
            const ms = performance.now() - started
            clearTimeout(timer)
            opened.close()
            resolve({ ms, error })
          }
        },
        () => {},
      )
      const timer = setTimeout(() => {
        opened.close()
        resolve({
          ms: performance.now() - started,
          error: `timed out with ${count} of ${n} events`,
        })
      }, 100_000)
    }),

  memory: async ({ client, port, count }: { client: ClientId; port: number; count: number }) => {
    const base = await settledMemory()
    const clients: Opened[] = []
    let opened = 0
    const all = new Promise<void>((resolve) => {
      for (let i = 0; i < count; i++) {
        clients.push(
          open(
            client,
            `http://127.0.0.1:${port}/idle`,
            () => {},
            () => {
              if (++opened === count) resolve()
            },
          ),
        )
      }
    })
    let error: string | undefined
    let timer: ReturnType<typeof setTimeout> | undefined
    await Promise.race([
      all,
      new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          error = `only ${opened} of ${count} clients opened in 60 s`
          resolve()
        }, 60_000)
      }),
    ])
    clearTimeout(timer)
    const after = await settledMemory()
    for (const c of clients) c.close()
    return {
      heapKiB: (after.heapUsed - base.heapUsed) / count / 1024,
      rssKiB: (after.rss - base.rss) / count / 1024,
      error,
    }
  },
})

/**
 * Demonstration — memory channels vs generators.
 *
 * A generator is the simplest source: the stream pulls, the generator computes the next item.
 * A channel turns it around: one or more producers *push* into a bounded buffer, and the
 * stream reads from it. Use a channel when items come from callbacks, from several producers
 * at once, or from code that should not know about HTTP. Producers run as the stream's
 * `dataSender`, so they are aborted with the stream; `send` waits while the buffer is full, so
 * a slow client slows the producers down instead of filling memory.
 *
 * Run:  npx tsx examples/demonstrations/advanced_patterns/memory_channels.ts
 * Then: curl -N http://127.0.0.1:8000/memory-channel
 *
 * Endpoints:
 *   /generator        the same 9 items as /memory-channel, from a plain generator
 *   /memory-channel   one producer, 9 `production_data` events, then `producer_complete`
 *   /multi-producer   three producers merged into one stream, then three `producer_complete`
 *   /backpressure     20 `fast_data` events through a 2-slot channel to a stream that passes
 *                     on one event per PACE_MS: the producer waits for room, and a final
 *                     `backpressure_summary` event says how often and how long
 *
 * Environment: PORT (default 8000), TICK_MS (default 1000), PACE_MS (default TICK_MS / 10).
 */

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import {
  type Channel,
  createChannel,
  type EventInit,
  type StreamContext,
  sendEventStream,
} from '../../../src/node.ts'

const tick = Number(process.env.TICK_MS ?? 1000)
const pace = Number(process.env.PACE_MS ?? tick / 10)
let producers = 0

/** The generator way: the stream asks for each item in turn. */
async function* generator({ signal }: StreamContext) {
  for (let i = 1; i <= 9; i++) {
    yield { id: `gen-${i}`, event: 'production_data', data: `Data from generator, item ${i}` }
    await sleep(tick, undefined, { signal })
  }
}

/**
 * The channel way: a producer pushes into the channel. It knows nothing about HTTP: it could
 * be fed by a queue consumer, a file watcher or a database change feed.
 */
async function produce(channel: Channel<EventInit>, name: string, signal: AbortSignal) {
  console.log(`producer ${name}: started`)
  try {
    for (let i = 1; i <= 9; i++) {
      await channel.send({
        id: `${name}-${i}`,
        event: 'production_data',
        data: `Data from producer ${name}, item ${i}`,
      })
      await sleep(tick, undefined, { signal })
    }
    await channel.send({ event: 'producer_complete', data: `Producer ${name} finished` })
    console.log(`producer ${name}: finished`)
  } catch (error) {
    // The client went away: `signal` aborted the sleep, or `send` was refused because the
    // stream stopped reading the channel (ERR_SSE_CHANNEL_CLOSED).
    console.log(
      `producer ${name}: stopped (${(error as Error).name === 'AbortError' ? 'aborted' : (error as Error).message})`,
    )
  }
}

function memoryChannel(req: IncomingMessage, res: ServerResponse, count: number): void {
  const channel = createChannel<EventInit>(10)
  void sendEventStream(req, res, channel, {
    ping: 5000,
    async dataSender({ signal }) {
      const names = Array.from({ length: count }, () => `prod-${++producers}`)
      await Promise.all(names.map((name) => produce(channel, name, signal)))
      // Closing the channel ends the stream once it has sent what is queued.
      channel.close()
    },
  })
}

/**
 * A consumer slower than its producer: the stream passes on one event every `pace` ms — a
 * stand-in for a slow client or a rate limit — while the producer could make all 20 at once.
 */
async function* paced<T>(source: AsyncIterable<T>, signal: AbortSignal) {
  for await (const item of source) {
    yield item
    await sleep(pace, undefined, { signal })
  }
}

function backpressure(req: IncomingMessage, res: ServerResponse): void {
  // Two slots: the producer is far faster than the stream, so it spends its time waiting, and
  // memory holds at most two queued events however large the difference in speed.
  const channel = createChannel<EventInit>(2)
  void sendEventStream(req, res, ({ signal }) => paced(channel, signal), {
    async dataSender() {
      let waits = 0
      let waited = 0
      try {
        for (let i = 0; i < 20; i++) {
          // `send` waits exactly when the channel is full, until the stream has taken an item.
          const full = channel.size >= channel.capacity
          const start = performance.now()
          await channel.send({ event: 'fast_data', id: String(i), data: String(i) })
          if (full) {
            waits++
            waited += performance.now() - start
          }
        }
        const summary = {
          sent: 20,
          capacity: channel.capacity,
          waits,
          waitedMs: Math.round(waited),
        }
        await channel.send({ event: 'backpressure_summary', data: summary })
        channel.close()
        console.log(
          `backpressure: producer sent 20 items and waited for room ${waits} times, ${summary.waitedMs} ms in all (buffer of ${channel.capacity})`,
        )
      } catch (error) {
        // The client went away: the stream stopped reading, so `send` was refused.
        console.log(`backpressure: producer stopped (${(error as Error).message})`)
      }
    },
  })
}

const server = createServer((req, res) => {
  switch (new URL(req.url ?? '/', 'http://localhost').pathname) {
    case '/generator':
      void sendEventStream(req, res, generator)
      return
    case '/memory-channel':
      memoryChannel(req, res, 1)
      return
    case '/multi-producer':
      memoryChannel(req, res, 3)
      return
    case '/backpressure':
      backpressure(req, res)
      return
    default:
      res.writeHead(404, { 'content-type': 'text/plain' })
      res.end('try /generator, /memory-channel, /multi-producer or /backpressure\n')
  }
})

server.listen(Number(process.env.PORT ?? 8000), '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo
  console.log(`listening on http://127.0.0.1:${port}`)
  console.log(`  curl -N http://127.0.0.1:${port}/memory-channel`)
})

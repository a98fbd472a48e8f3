/**
 * Oven's side of every Oven contestant: the content for each route and the broadcast hub.
 * Imported from the source (../../src), types stripped by lib/ts-hooks.mjs: no build needed.
 */

import {
  Broadcaster,
  type Content,
  type ContentItem,
  createChannel,
  type StreamOptions,
} from '../../src/index.ts'
import { DEFAULT_TOPIC, type Route } from './contestant.ts'
import { payloads } from './payload.ts'

/**
 * Options of every Oven stream here: the defaults, except `sep: '\n'` so that every contestant
 * sends the same bytes as the plain loop (Oven's default CRLF adds 2 bytes per line).
 */
export const OPTIONS = { sep: '\n' } as const satisfies StreamOptions

function* events(n: number, size: number): Generator<string> {
  const payload = payloads(size)
  for (let i = 0; i < n; i++) yield payload(i)
}

/** Broadcast: Oven's `Broadcaster` with its defaults (history, queue, overflow policy). */
const hub = new Broadcaster()

/** The content for a route (not `none`). */
export function content<Req>(r: Route): Content<Req> {
  if (r.kind === 'stream') return events(r.n, r.size)
  if (r.kind === 'sub') return (ctx) => hub.subscribe(r.topic, ctx)
  // An idle stream: a channel nobody sends to, as an app holds one per client to push later.
  return createChannel<ContentItem>(1)
}

/** Sends one event to every subscriber of `topic`. */
export function publish(data: string, topic: string = DEFAULT_TOPIC): Promise<string> {
  return hub.publish(topic, data)
}

/** How many subscribers are connected. */
export function subscriberCount(): number {
  return hub.subscribers()
}
